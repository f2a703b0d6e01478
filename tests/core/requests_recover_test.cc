// RequestManager: restarts and the spill: what survives, what is refused.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/core/requests_fixture.h"

namespace credbroker {
namespace {

// An agent that can write the database (it runs as the user) adds a
// standing approval for itself, widens a real one and rewrites the action
// of an open request while the broker is stopped: none of it is acted on.
TEST_F(RequestManagerTest, RowsWrittenBehindTheBrokersBackAreRefusedAtLoad) {
  StoreAws();
  Attach("s1");
  NeedUpdate first =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n1", "deploy web"));
  ASSERT_TRUE(ApproveStanding(first.request_id, "deploy *").ok());
  NeedUpdate pending =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "rotate keys"));
  ASSERT_EQ(pending.state, RequestState::kPendingApproval);

  absl::StatusOr<std::vector<StandingRecord>> standing = store_->ListStanding();
  ASSERT_TRUE(standing.ok() && standing->size() == 1u);
  StandingRecord widened = (*standing)[0];
  widened.action_pattern = "*";  // The old MAC kept.
  StandingRecord planted = (*standing)[0];
  planted.id = "st-planted";
  planted.mac.clear();
  absl::StatusOr<std::vector<RequestRecord>> open =
      store_->ListRequests(/*open_only=*/true);
  ASSERT_TRUE(open.ok() && open->size() == 1u);
  RequestRecord rewritten = (*open)[0];
  rewritten.action = "rotate keys (harmless)";
  FlowWrite write;
  write.standing = {widened, planted};
  write.requests = {rewritten};
  ASSERT_TRUE(store_->WriteFlow(write, audit_->HashFn()).ok());

  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  EXPECT_TRUE(requests_->ListStanding()->empty());
  Attach("s2");
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("x", "exfiltrate"))->state,
      RequestState::kPendingApproval);
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("y", "deploy api"))->state,
      RequestState::kPendingApproval);
  ApproveInput late;
  late.request_id = rewritten.request_id;
  EXPECT_FALSE(requests_->Approve(late, approver_).ok());
  EXPECT_EQ(CountAudit("row.refused"), 3);
}

TEST_F(RequestManagerTest, PendingRequestsSurviveARestart) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  std::vector<RequestView> open = requests_->PendingRequests();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].record.request_id, pending.request_id);
  EXPECT_EQ(open[0].record.context.size(), 1u);
  // The agent comes back with the same need and the same session.
  Attach("s1");
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, AwsNeed("n1"))->request_id,
            pending.request_id);
}

// Restart keeps the broker's word: a denied need stays denied under its
// id, and a grant approved while the agent was away reaches it after the
// restart instead of a second request.
TEST_F(RequestManagerTest, DecisionsSurviveARestart) {
  StoreAws();
  int64_t a = Attach("s1");
  NeedUpdate denied = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(requests_->Deny(denied.request_id, "not today", approver_).ok());
  NeedUpdate approved = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  requests_->DetachSession("s1", a);
  ApproveInput in;
  in.request_id = approved.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  Attach("s1");
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(again.state, RequestState::kDenied);
  EXPECT_EQ(again.request_id, denied.request_id);
  EXPECT_TRUE(absl::StrContains(again.reason, "not today")) << again.reason;
  NeedUpdate delivered = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  EXPECT_EQ(delivered.state, RequestState::kGranted);
  EXPECT_TRUE(delivered.grant.has_value());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

TEST_F(RequestManagerTest, ReleaseFailsClosedWhenTheDecisionCannotBeRecorded) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  store_->fail_flow = true;
  ApproveInput in;
  in.request_id = pending.request_id;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, approver_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "nothing was released"));
  ASSERT_EQ(updates_["s1"].size(), 1u);  // No grant reached the agent.
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  store_->fail_flow = false;
  EXPECT_TRUE(requests_->Approve(in, approver_).ok());
}

TEST_F(RequestManagerTest, ApprovalsGoOnInTheSpillWhileTheStoreRefusesWrites) {
  StartSpilling();
  WatchAll();
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(first.state, RequestState::kPendingApproval);
  EXPECT_TRUE(SpillExists());
  ApproveInput in;
  in.request_id = first.request_id;
  absl::StatusOr<ApproveResult> approved = requests_->Approve(in, approver_);
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_EQ(updates_["s1"].back().state, RequestState::kGranted);
  EXPECT_TRUE(
      updates_["s1"].back().grant->values.at("secret_access_key").Reveal() ==
      kSecret);
  NeedUpdate second = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  // Reads see the spilled rows: the grant in the history, the decision of
  // the first request.
  ListGrantsOptions history;
  history.include_ended = true;
  history.now = now_;
  absl::StatusOr<std::vector<GrantRecord>> grants =
      requests_->ListGrants(history);
  ASSERT_TRUE(grants.ok()) << grants.status();
  ASSERT_EQ(grants->size(), 1u);
  EXPECT_EQ((*grants)[0].grant_id, approved->grant_id);
  absl::Status again = requests_->Deny(first.request_id, "", approver_);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  const int64_t created_before = CountAudit("request.created");

  // A restart while the store still refuses writes: the spill is laid over
  // what the store has.
  OpenAll();
  store_->fail_flow = true;
  ASSERT_TRUE(Start().ok());
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].record.request_id, second.request_id);
  EXPECT_TRUE(requests_->ReleaseGrant(approved->grant_id, agent_).ok());
  // Ended in the spill: no longer listed as active, though the store still
  // has it active.
  ListGrantsOptions active;
  active.now = now_;
  absl::StatusOr<std::vector<GrantRecord>> listed =
      requests_->ListGrants(active);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());

  // The store writes again: the next tick copies the spill in, once.
  store_->fail_flow = false;
  Tick();
  EXPECT_FALSE(SpillExists());
  absl::StatusOr<RequestRecord> decided = store_->GetRequest(first.request_id);
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_NE(decided->decided_at, absl::InfinitePast());
  absl::StatusOr<GrantRecord> released = store_->GetGrant(approved->grant_id);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_NE(released->ended_at, absl::InfiniteFuture());
  EXPECT_EQ(CountAudit("request.created"), created_before + 2);
  EXPECT_EQ(CountAudit("audit.spill_chain_broken"), 0);
  absl::StatusOr<AuditLog::Verification> chain = audit_->VerifyChain();
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(chain->intact()) << chain->problem;
}

TEST_F(RequestManagerTest, AGrantEndedInTheSpillLeavesTheActivePageFull) {
  EnableSpill();
  OpenAll();
  StoreAws();
  Attach("s1");
  std::vector<std::string> grants;
  for (const char* need : {"n1", "n2"}) {
    ApproveInput in;
    in.request_id =
        requests_->SubmitNeed("s1", agent_, AwsNeed(need))->request_id;
    absl::StatusOr<ApproveResult> approved = requests_->Approve(in, approver_);
    ASSERT_TRUE(approved.ok()) << approved.status();
    grants.push_back(approved->grant_id);
    now_ += absl::Seconds(1);
  }
  store_->fail_flow = true;
  ASSERT_TRUE(
      requests_->ReleaseGrant(grants[0], agent_).ok());  // In the spill.
  ListGrantsOptions page;
  page.now = now_;
  page.limit = 1;
  absl::StatusOr<std::vector<GrantRecord>> listed = requests_->ListGrants(page);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].grant_id, grants[1]);
}

TEST_F(RequestManagerTest, ASpillTakenBackBeforeACrashIsNotCopiedTwice) {
  StartSpilling();
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  store_->fail_flow = false;
  const int64_t before = CountAudit("request.created");
  keep_spill_files_ = true;  // As if the broker died before removing them.
  Tick();
  EXPECT_EQ(CountAudit("request.created"), before + 1);
  ASSERT_TRUE(SpillExists());
  keep_spill_files_ = false;
  // The store refuses writes again: the files left are not reused (their
  // rows are older than the store's), a new spill is.
  store_->fail_flow = true;
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n2")).ok());
  store_->fail_flow = false;
  now_ += absl::Seconds(1);  // Past the back-off of the failed removal.
  Tick();
  EXPECT_FALSE(SpillExists());
  EXPECT_EQ(CountAudit("request.created"), before + 2);
  // A restart finds nothing more to copy.
  OpenAll();
  ASSERT_TRUE(Start().ok());
  EXPECT_EQ(CountAudit("request.created"), before + 2);
  EXPECT_EQ(requests_->PendingRequests().size(), 2u);
}

TEST_F(RequestManagerTest, LeftoverSpillFilesAreNotReadAgainAtStart) {
  StartSpilling();
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  store_->fail_flow = false;
  keep_spill_files_ = true;
  Tick();
  keep_spill_files_ = false;
  ASSERT_TRUE(SpillExists());
  // Decided in the store after the take-back; the stale spill still says
  // pending.
  ASSERT_TRUE(requests_->Deny(pending.request_id, "no", approver_).ok());
  OpenAll();
  store_->fail_flow = true;  // Even while the store refuses writes again.
  ASSERT_TRUE(Start().ok());
  EXPECT_FALSE(SpillExists());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

TEST_F(RequestManagerTest, AnEditedSpillIsTakenBackWithARecordOfTheBreak) {
  StartSpilling();
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  // Reopened (as after a restart) with its first audit event edited.
  edit_spill_audit_ = true;
  OpenAll();
  ASSERT_TRUE(Start().ok());
  EXPECT_EQ(CountAudit("audit.spill_chain_broken"), 1);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_FALSE(SpillExists());
}

}  // namespace
}  // namespace credbroker
