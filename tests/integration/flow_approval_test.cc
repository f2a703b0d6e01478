// The approval flow on the real credbrokerd: approve, deny, refuse a
// misleading need, expiry, the grace period and its reattach, and two
// approvers racing. Secret values are compared, never printed.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "common/secret.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/flow_fixture.h"

namespace credbroker {
namespace testing {
namespace {

TEST_F(FlowTest, ApproveWithNewValues) {
  auto agent = Agent("s-new-values");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  ASSERT_NE(approver, nullptr);
  std::string id = Ask(*agent, Need("n1"), client::RequestState::kNeedsInput);
  ASSERT_FALSE(id.empty());
  std::vector<client::NeedUpdate> updates = agent->Updates("n1");
  ASSERT_FALSE(updates.empty());
  EXPECT_FALSE(updates[0].missing_fields.empty());

  // Bad values: field violations, and the request stays pending.
  client::Approval bad = ApproveReq(id);
  bad.values["access_key_id"] = SecretBytes("not-a-key");
  bad.values["secret_access_key"] = SecretBytes(secret_);
  auto refused = approver->Approve(bad);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status()))
      << refused.status().code();
  EXPECT_TRUE(HasViolation(refused.status(), "access_key_id"))
      << ViolationFields(refused.status());
  EXPECT_FALSE(absl::StrContains(refused.status().ToString(), secret_));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, id);

  // The form names the fields; nothing is stored yet.
  client::FormQuery fr;
  fr.request_id = id;
  auto form = approver->GetForm(fr);
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->provider, "aws");
  EXPECT_EQ(form->request->request_id, id);
  bool secret_field = false;
  for (const auto& f : form->fields) {
    if (f.spec.name == "secret_access_key") {
      secret_field = f.spec.sensitive;
      EXPECT_FALSE(f.is_set);
    }
  }
  EXPECT_TRUE(secret_field);

  client::Approval good = ApproveReq(id);
  good.values["access_key_id"] = SecretBytes(key_id_);
  good.values["secret_access_key"] = SecretBytes(secret_);
  auto approved = approver->Approve(good);
  ASSERT_TRUE(approved.ok()) << approved.status();
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_EQ(granted->request_id, id);
  EXPECT_EQ(granted->grant->grant_id, approved->grant_id);
  EXPECT_EQ(granted->grant->scope, client::Scope::kOnce);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";
  EXPECT_GT(granted->grant->expires_at, absl::Now());

  // The values are stored now, and the form shows the secret only as set.
  auto stored = Get("aws", "");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version, 1);
  ExpectAudit({"request.created", "credential.put", "request.approved",
               "grant.created"});
}

TEST_F(FlowTest, ApproveStoredCredentialWithoutValues) {
  PutAws();
  auto agent = Agent("s-stored");
  auto approver = Approver();
  ASSERT_NE(agent, nullptr);
  ASSERT_NE(approver, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok()) << approved.status();
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";
  EXPECT_EQ(granted->grant->credential_version, 1);

  auto grants = client_->ListGrants(client::GrantQuery());
  ASSERT_TRUE(grants.ok()) << grants.status();
  ASSERT_EQ(grants->grants.size(), 1u);
  EXPECT_EQ(grants->grants[0].grant_id, approved->grant_id);
  EXPECT_EQ(grants->grants[0].request_id, id);

  // Released by the agent: ended, and a second release is refused.
  EXPECT_EQ(agent->ReleaseGrant(approved->grant_id), "OK");
  std::string again = agent->ReleaseGrant(approved->grant_id);
  EXPECT_TRUE(absl::StartsWith(again, "FAILED_PRECONDITION")) << again;
  ExpectAudit({"request.created", "request.approved", "grant.created",
               "grant.released"});
  EXPECT_TRUE(agent->Close().ok());
}

TEST_F(FlowTest, DenyTellsTheAgentWhy) {
  PutAws();
  auto agent = Agent("s-deny");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(approver->Deny(id, "use the staging account").ok());
  auto denied = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->state, client::RequestState::kDenied);
  EXPECT_EQ(denied->reason, "use the staging account");
  EXPECT_FALSE(denied->grant.has_value());
  // The session's callback saw both updates, in order.
  std::vector<client::NeedUpdate> seen = agent->Updates("n1");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].state, client::RequestState::kPendingApproval);
  EXPECT_EQ(seen[1].state, client::RequestState::kDenied);
  // A later approval names the decision.
  auto late = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << late.status();
  EXPECT_TRUE(absl::StrContains(late.status().message(), "denied"))
      << late.status();
  ExpectAudit({"request.created", "request.denied"});
}

// What the person reads is what the agent sent: an action or context that
// could redraw, hide or reorder the approval prompt is refused, that need
// alone, and the session goes on.
TEST_F(FlowTest, AMisleadingNeedIsRejectedAloneAndTheSessionGoesOn) {
  PutAws();
  auto agent = LocalAgent("s-text");
  ASSERT_NE(agent, nullptr);
  client::CredentialNeeded bad = Need("n-bad");
  bad.action = "read logs\x1b[1A\x1b[2K\rdeploy to staging";
  bad.context["region"] = "us-east-1\xE2\x80\xAE";
  ASSERT_TRUE(agent->SendNeed(bad).ok());
  auto rejected = agent->WaitFor("n-bad", kWait);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state, client::RequestState::kRejected);
  EXPECT_EQ(rejected->error_code, "INVALID_ARGUMENT");
  std::vector<std::string> fields;
  for (const client::Finding& f : rejected->field_errors)
    fields.push_back(f.field);
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("need.action",
                                                      "need.context.region"));
  EXPECT_TRUE(absl::StrContains(rejected->field_errors[0].message, "U+001B"))
      << rejected->field_errors[0].message;

  client::CredentialNeeded blank = Need("n-blank");
  blank.action = " \t ";
  ASSERT_TRUE(agent->SendNeed(blank).ok());
  auto refused = agent->WaitFor("n-blank", kWait);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->state, client::RequestState::kRejected);

  // The same stream still carries needs; nothing bad became a request.
  ASSERT_TRUE(agent->SendNeed(Need("n-good")).ok());
  auto pending = agent->WaitForState(
      "n-good", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_FALSE(agent->EndStatus().has_value());
  auto approver = Approver();
  auto listed = approver->ListPending();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].need.need_id, "n-good");
}

TEST_F(FlowTest, PendingRequestExpires) {
  RestartWith({"--pending_timeout=2s"});
  PutAws();
  auto agent = Agent("s-expire");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  auto expired = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->state, client::RequestState::kExpired);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kExpired, id));
  auto late = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << late.status();
  ExpectAudit({"request.created", "request.expired"});
}

TEST_F(FlowTest, CancelledAfterGracePeriod) {
  RestartWith({"--grace_period=1s"});
  PutAws();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  auto agent = Agent("s-gone");
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  agent->Abort();  // The agent crashes.
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kAgentDisconnected, id));
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kCancelled, id));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_TRUE(pending->empty());
  ExpectAudit({"request.created", "request.cancelled"});
}

TEST_F(FlowTest, ReattachWithinGracePeriod) {
  RestartWith({"--grace_period=30s"});
  PutAws();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  auto first = Agent("s-reattach");
  std::string decided_id = Ask(*first, Need("n1"));
  std::string open_id = Ask(*first, Need("n2"));
  ASSERT_FALSE(decided_id.empty());
  ASSERT_FALSE(open_id.empty());
  ASSERT_TRUE(first->Close().ok());
  EXPECT_TRUE(
      log.WaitFor(client::ApprovalEvent::Kind::kAgentDisconnected, open_id));

  // Decided while the agent is away.
  ASSERT_TRUE(approver->Approve(ApproveReq(decided_id)).ok());

  auto second = Agent("s-reattach");
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->SendNeed(Need("n1")).ok());
  auto granted = second->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_EQ(granted->request_id, decided_id);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";

  ASSERT_TRUE(second->SendNeed(Need("n2")).ok());
  auto still =
      second->WaitForState("n2", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->request_id, open_id);  // Nothing asked twice.
  EXPECT_TRUE(
      log.WaitFor(client::ApprovalEvent::Kind::kAgentReconnected, open_id));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, open_id);
  EXPECT_TRUE((*pending)[0].agent_connected);

  ASSERT_TRUE(approver->Deny(open_id, "no").ok());
  auto denied = second->WaitFor("n2", kWait);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->state, client::RequestState::kDenied);
}

TEST_F(FlowTest, TwoApproversRaceAndTheFirstDecisionWins) {
  PutAws();
  auto agent = Agent("s-race");
  auto a = Approver();
  auto b = Approver();
  for (int round = 0; round < 5; ++round) {
    std::string need_id = absl::StrCat("n", round);
    std::string id = Ask(*agent, Need(need_id));
    ASSERT_FALSE(id.empty());
    absl::Notification go;
    absl::Status approve_status, deny_status;
    std::thread t1([&] {
      go.WaitForNotification();
      approve_status = a->Approve(ApproveReq(id)).status();
    });
    std::thread t2([&] {
      go.WaitForNotification();
      deny_status = b->Deny(id, "raced");
    });
    go.Notify();
    t1.join();
    t2.join();
    EXPECT_NE(approve_status.ok(), deny_status.ok())
        << approve_status << " / " << deny_status;
    const absl::Status& loser =
        approve_status.ok() ? deny_status : approve_status;
    EXPECT_TRUE(absl::IsFailedPrecondition(loser)) << loser;
    EXPECT_TRUE(absl::StrContains(loser.message(),
                                  approve_status.ok() ? "approved" : "denied"))
        << loser;
    auto decided = agent->WaitFor(need_id, kWait);
    ASSERT_TRUE(decided.ok()) << decided.status();
    EXPECT_EQ(decided->state, approve_status.ok()
                                  ? client::RequestState::kGranted
                                  : client::RequestState::kDenied);
  }
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
