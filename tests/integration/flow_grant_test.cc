// Grants past the first need on the real credbrokerd: session and standing
// scopes, pending requests across a restart, the role matrix, revocation and
// the agent's cancel. Secret values are compared, never printed.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/integration/flow_fixture.h"

namespace credbroker {
namespace testing {
namespace {

TEST_F(FlowTest, SessionScopeGrantsLaterNeedsWithoutAsking) {
  PutAws();
  auto agent = Agent("s-session");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_TRUE(approver->Approve(ApproveReq(id, client::Scope::kSession)).ok());
  auto first = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->grant->scope, client::Scope::kSession);
  // The watcher hears of the decision asynchronously: count from after it.
  ASSERT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kResolved, id));
  size_t events_before = log.Count();

  ASSERT_TRUE(agent->SendNeed(Need("n2", "aws", "create a VPC")).ok());
  auto second = agent->WaitFor("n2", kWait);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state, client::RequestState::kGranted);
  EXPECT_EQ(second->grant->scope, client::Scope::kSession);
  EXPECT_TRUE(HasAwsValues(second->grant)) << "grant values differ";
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  EXPECT_EQ(log.Count(), events_before);  // No approver was asked.

  // Another session is not covered.
  auto other = Agent("s-session-other");
  Ask(*other, Need("n1"));
}

TEST_F(FlowTest, StandingApprovalGrantsUntilRevoked) {
  PutAws();
  auto approver = Approver();
  auto agent = Agent("s-standing-1");
  std::string id = Ask(*agent, Need("n1", "aws", "deploy to AWS in us-east-1"));
  client::Approval req = ApproveReq(id, client::Scope::kStanding);
  req.action_pattern = "deploy *";
  req.ttl = absl::Seconds(3600);
  auto approved = approver->Approve(req);
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_FALSE(approved->standing_approval_id.empty());
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());

  auto fresh = Agent("s-standing-2");
  ASSERT_TRUE(fresh->SendNeed(Need("n1", "aws", "deploy to eu-west-1")).ok());
  auto auto_granted = fresh->WaitFor("n1", kWait);
  ASSERT_TRUE(auto_granted.ok()) << auto_granted.status();
  EXPECT_EQ(auto_granted->state, client::RequestState::kGranted);
  EXPECT_EQ(auto_granted->grant->scope, client::Scope::kStanding);

  // Outside the pattern: asks.
  Ask(*fresh, Need("n2", "aws", "delete the production database"));

  auto listed = client_->ListStandingApprovals(/*include_ended=*/false);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, approved->standing_approval_id);
  EXPECT_EQ((*listed)[0].action_pattern, "deploy *");

  ASSERT_TRUE(
      client_->RevokeStandingApproval(approved->standing_approval_id).ok());
  auto after = Agent("s-standing-3");
  Ask(*after, Need("n1", "aws", "deploy to eu-west-1"));
  ExpectAudit({"standing.created", "grant.created", "standing.revoked"});
}

TEST_F(FlowTest, StandingApprovalLongerThan90DaysIsRefused) {
  PutAws();
  auto approver = Approver();
  auto agent = Agent("s-standing-long");
  std::string id = Ask(*agent, Need("n1"));
  client::Approval req = ApproveReq(id, client::Scope::kStanding);
  req.ttl = absl::Hours(91 * 24);
  auto refused = approver->Approve(req);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_TRUE(HasViolation(refused.status(), "ttl"))
      << ViolationFields(refused.status());
}

TEST_F(FlowTest, PendingRequestsSurviveARestart) {
  PutAws();
  std::string id;
  {
    auto agent = Agent("s-restart");
    id = Ask(*agent, Need("n1"));
    ASSERT_FALSE(id.empty());
    agent->Close().IgnoreError();
  }
  Restart();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kSnapshot, id));
  // The agent comes back within the grace period and is granted.
  auto agent = Agent("s-restart");
  ASSERT_TRUE(agent->SendNeed(Need("n1")).ok());
  auto again =
      agent->WaitForState("n1", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->request_id, id);
  ASSERT_TRUE(approver->Approve(ApproveReq(id)).ok());
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  watcher.reset();
}

TEST_F(FlowTest, RoleMatrix) {
  // The agent token on the approver's services.
  auto as_agent = client::ApprovalClient::Connect(AgentOptions());
  ASSERT_TRUE(as_agent.ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->ListPending().status()))
      << (*as_agent)->ListPending().status();
  client::FormQuery fr;
  fr.provider = "aws";
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->GetForm(fr).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      (*as_agent)->Approve(ApproveReq("r-x")).status()));
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->Deny("r-x", "")));
  auto agent_credentials = broker_->ClientWithToken(broker_->agent_token());
  ASSERT_NE(agent_credentials, nullptr);
  EXPECT_TRUE(
      absl::IsPermissionDenied(agent_credentials->ListProviders().status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      agent_credentials->ListGrants(client::GrantQuery()).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      agent_credentials->ListAuditEvents(client::AuditQuery()).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(agent_credentials->RevokeGrant("", "")));

  // The approver token on the agent's service.
  auto rc_status = client::RequestCredential(ApproverOptions(), Need("n1"), "",
                                             absl::Seconds(10))
                       .status();
  EXPECT_TRUE(absl::IsPermissionDenied(rc_status)) << rc_status;
  auto session =
      client::AgentSession::Connect(ApproverOptions(), "s-wrong-role");
  if (session.ok()) {
    (*session)->SendNeed(Need("n1")).IgnoreError();
    auto u = (*session)->WaitFor("n1", kWait);
    EXPECT_FALSE(u.ok());
    auto end = (*session)->EndStatus();
    ASSERT_TRUE(end.has_value());
    EXPECT_TRUE(absl::IsPermissionDenied(*end)) << *end;
  } else {
    EXPECT_TRUE(absl::IsPermissionDenied(session.status())) << session.status();
  }
  // No token at all.
  auto anonymous = client::ApprovalClient::Connect(OptionsWith(""));
  ASSERT_TRUE(anonymous.ok());
  EXPECT_TRUE(absl::IsUnauthenticated((*anonymous)->ListPending().status()));
  // Refused calls are audited.
  std::multiset<std::string> kinds = AuditKinds();
  EXPECT_FALSE(kinds.empty());
}

TEST_F(FlowTest, RevokeGrantReachesTheAgent) {
  PutAws();
  auto agent = Agent("s-revoke");
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok());
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());
  ASSERT_TRUE(client_->RevokeGrant(approved->grant_id, "key rotated").ok());
  auto revoked = agent->WaitFor("n1", kWait);  // The next decided update.
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->state, client::RequestState::kRevoked);
  EXPECT_TRUE(absl::StrContains(revoked->reason, "key rotated"))
      << revoked->reason;
  EXPECT_FALSE(revoked->grant.has_value());
  absl::Status twice = client_->RevokeGrant(approved->grant_id, "key rotated");
  EXPECT_TRUE(absl::IsFailedPrecondition(twice)) << twice;
  client::GrantQuery lg;
  lg.include_ended = true;
  auto grants = client_->ListGrants(lg);
  ASSERT_TRUE(grants.ok());
  ASSERT_EQ(grants->grants.size(), 1u);
  EXPECT_TRUE(grants->grants[0].revoked);
  // Re-sending the need never hands the revoked grant out again.
  ASSERT_TRUE(agent->SendNeed(Need("n1")).ok());
  auto resent = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_NE(resent->state, client::RequestState::kGranted);
  ExpectAudit({"grant.revoked"});
}

TEST_F(FlowTest, AgentCancelsANeed) {
  PutAws();
  auto agent = Agent("s-cancel");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_TRUE(agent->Cancel("n1").ok());
  auto cancelled = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, client::RequestState::kCancelled);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kCancelled, id));
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
