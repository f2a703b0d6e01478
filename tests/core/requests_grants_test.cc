// RequestManager: grants and standing approvals: hand-over, release, revoke,
// expiry.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/core/requests_fixture.h"

namespace credbroker {
namespace {

// A ONCE grant's values reach one process: a third process that re-sends
// the need id gets a refusal, not the values.
TEST_F(RequestManagerTest, AGrantIsHandedToOneProcessOnly) {
  StoreAws();
  int64_t first = Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = asked.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  ASSERT_TRUE(updates_["s1"].back().grant.has_value());
  // The same process asking again gets it again.
  EXPECT_TRUE(
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"))->grant.has_value());
  requests_->DetachSession("s1", first);
  Caller third = MakeCaller("agent", "curl, pid 600", 600);
  ASSERT_TRUE(
      requests_->AttachSession("s1", third, [](const NeedUpdate&) {}).ok());
  NeedUpdate resent = *requests_->SubmitNeed("s1", third, AwsNeed("n1"));
  EXPECT_FALSE(resent.grant.has_value());
  EXPECT_EQ(resent.state, RequestState::kCancelled);
  EXPECT_TRUE(absl::StrContains(resent.reason, "was handed to another process"))
      << resent.reason;
  EXPECT_EQ(CountAudit("grant.handover_refused"), 1);
}

// A grant decided while no process was attached goes to the first process
// of the session that asks again, and to no other.
TEST_F(RequestManagerTest, AGrantDecidedWhileAwayGoesToTheFirstToAskAgain) {
  StoreAws();
  int64_t first = Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", first);
  ApproveInput in;
  in.request_id = asked.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  Caller back = MakeCaller("agent", "agent again, pid 700", 700);
  int64_t again =
      *requests_->AttachSession("s1", back, [](const NeedUpdate&) {});
  EXPECT_TRUE(
      requests_->SubmitNeed("s1", back, AwsNeed("n1"))->grant.has_value());
  requests_->DetachSession("s1", again);
  Caller late = MakeCaller("agent", "late, pid 800", 800);
  ASSERT_TRUE(
      requests_->AttachSession("s1", late, [](const NeedUpdate&) {}).ok());
  EXPECT_FALSE(
      requests_->SubmitNeed("s1", late, AwsNeed("n1"))->grant.has_value());
}

// Not knowing which process calls (loopback TCP) is not "someone else".
TEST_F(RequestManagerTest, AnUnidentifiedCallerCannotDecideOrRelease) {
  StoreAws();
  Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  Caller tcp = MakeCaller("approver", "ipv4:127.0.0.1:5555");
  ApproveInput in;
  in.request_id = asked.request_id;
  EXPECT_EQ(requests_->Approve(in, tcp).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(requests_->Deny(asked.request_id, "no", tcp).code(),
            absl::StatusCode::kPermissionDenied);
  Caller with_cert = tcp;
  with_cert.client_certificate = true;
  ApproveResult r = *requests_->Approve(in, with_cert);
  Caller tcp_agent = MakeCaller("agent", "ipv4:127.0.0.1:5556");
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, tcp_agent).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(requests_->ReleaseGrant(r.grant_id, agent_).ok());
}

TEST_F(RequestManagerTest, StandingApprovalGrantsMatchingActionsUntilRevoked) {
  StoreAws();
  Attach("s1");
  NeedUpdate first =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n1", "deploy web"));
  absl::StatusOr<ApproveResult> r =
      ApproveStanding(first.request_id, "deploy *");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->standing_id.empty());

  Attach("s2");
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("a", "deploy api"))->state,
      RequestState::kGranted);
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("b", "destroy everything"))
          ->state,
      RequestState::kPendingApproval);
  ASSERT_TRUE(requests_->RevokeStanding(r->standing_id, approver_).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("c", "deploy db"))->state,
      RequestState::kPendingApproval);
  EXPECT_EQ(requests_->RevokeStanding(r->standing_id, approver_).code(),
            absl::StatusCode::kFailedPrecondition);

  // Longer than 90 days is refused.
  NeedUpdate next =
      *requests_->SubmitNeed("s2", agent_, AwsNeed("d", "deploy x"));
  ApproveInput long_in;
  long_in.request_id = next.request_id;
  long_in.scope = Scope::kStanding;
  long_in.ttl = absl::Hours(24 * 91);
  EXPECT_EQ(requests_->Approve(long_in, approver_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestManagerTest, StandingApprovalEndsAtItsExpiry) {
  StoreAws();
  Attach("s1");
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = first.request_id;
  in.scope = Scope::kStanding;
  in.ttl = absl::Hours(1);
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  Attach("s2");
  EXPECT_EQ(requests_->SubmitNeed("s2", agent_, AwsNeed("a"))->state,
            RequestState::kGranted);
  now_ += absl::Hours(2);
  EXPECT_EQ(requests_->SubmitNeed("s2", agent_, AwsNeed("b"))->state,
            RequestState::kPendingApproval);
}

TEST_F(RequestManagerTest, AnExpiredGrantIsNeverHandedOutAgain) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  now_ += absl::Minutes(16);
  requests_->Tick();
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_NE(again.state, RequestState::kGranted);
  EXPECT_FALSE(again.grant.has_value());
}

TEST_F(RequestManagerTest, RevokeReachesTheAgentAndEndsTheGrant) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, approver_);
  ASSERT_TRUE(requests_->RevokeGrant(r.grant_id, "key leaked", approver_).ok());
  EXPECT_EQ(updates_["s1"].back().state, RequestState::kRevoked);
  EXPECT_EQ(updates_["s1"].back().need_id, "n1");
  EXPECT_EQ(requests_->RevokeGrant(r.grant_id, "", approver_).code(),
            absl::StatusCode::kFailedPrecondition);
  ListGrantsOptions active;
  active.now = now_;
  EXPECT_TRUE(requests_->ListGrants(active)->empty());
  ListGrantsOptions all = active;
  all.include_ended = true;
  ASSERT_EQ(requests_->ListGrants(all)->size(), 1u);
  EXPECT_EQ((*requests_->ListGrants(all))[0].end_reason, "revoked: key leaked");
}

TEST_F(RequestManagerTest, ReleaseEndsAGrant) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, approver_);
  ASSERT_TRUE(requests_->ReleaseGrant(r.grant_id, agent_).ok());
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, agent_).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(requests_->ReleaseGrant("g-unknown", agent_).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RequestManagerTest, OnlyTheProcessThatReceivedAGrantMayReleaseIt) {
  StoreAws();
  Caller agent = MakeCaller("agent", "agent", 200);
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, MakeCaller("approver", "ide", 400));
  EXPECT_EQ(
      requests_->ReleaseGrant(r.grant_id, MakeCaller("agent", "other", 500))
          .code(),
      absl::StatusCode::kPermissionDenied);
  Caller recycled = agent;  // Same pid, another process (pid reused).
  recycled.start_time += 1;
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, recycled).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(requests_->ReleaseGrant(r.grant_id, agent).ok());
}

TEST(ActionMatchesTest, Globs) {
  EXPECT_TRUE(ActionMatches("deploy *", "deploy web"));
  EXPECT_TRUE(ActionMatches("DEPLOY *", "deploy web"));
  EXPECT_TRUE(ActionMatches("deploy to AWS in us-east-?",
                            "deploy to AWS in us-east-1"));
  EXPECT_TRUE(ActionMatches("*", "anything"));
  EXPECT_FALSE(ActionMatches("deploy *", "destroy web"));
  EXPECT_FALSE(ActionMatches("deploy", "deploy web"));
  EXPECT_TRUE(ActionMatches("*web*", "deploy web now"));
}

}  // namespace
}  // namespace credbroker
