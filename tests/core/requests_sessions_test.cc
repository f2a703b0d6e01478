// RequestManager: agent sessions: grace, re-attach, who counts as the agent.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/core/requests_fixture.h"

namespace credbroker {
namespace {

TEST_F(RequestManagerTest, PendingRequestsExpire) {
  StoreAws();
  WatchAll();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  now_ += absl::Minutes(9);
  requests_->Tick();
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(2);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_EQ(updates_["s1"].back().state, RequestState::kExpired);
  EXPECT_TRUE(HasEvent(WatchEventKind::kExpired, pending.request_id));
  ApproveInput in;
  in.request_id = pending.request_id;
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RequestManagerTest, DisconnectedAgentIsCancelledAfterTheGracePeriod) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  EXPECT_TRUE(HasEvent(WatchEventKind::kAgentDisconnected, pending.request_id));
  EXPECT_FALSE(requests_->PendingRequests()[0].agent_connected);
  now_ += absl::Seconds(59);
  requests_->Tick();
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Seconds(2);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_TRUE(HasEvent(WatchEventKind::kCancelled, pending.request_id));
}

TEST_F(RequestManagerTest, GraceCountsFromTheLatestDisconnect) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  now_ += absl::Seconds(40);
  a = Attach("s1");
  now_ += absl::Seconds(10);
  requests_->DetachSession("s1", a);
  // 70 s after the first disconnect, 20 s after the second: still waiting.
  now_ += absl::Seconds(20);
  requests_->Tick();
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  // 61 s after the second disconnect the need is cancelled; a need of a
  // connected session is left alone until it expires.
  Attach("s2");
  NeedUpdate other = *requests_->SubmitNeed("s2", agent_, AwsNeed("n2"));
  now_ += absl::Seconds(41);
  requests_->Tick();
  EXPECT_TRUE(HasEvent(WatchEventKind::kCancelled, pending.request_id));
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(10);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_TRUE(HasEvent(WatchEventKind::kExpired, other.request_id));
  EXPECT_FALSE(HasEvent(WatchEventKind::kCancelled, other.request_id));
}

TEST_F(RequestManagerTest, ReattachWithinGraceGetsTheDecisionMadeMeanwhile) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  now_ += absl::Seconds(30);
  updates_.clear();
  Attach("s1");
  absl::StatusOr<NeedUpdate> again =
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->request_id, pending.request_id);
  EXPECT_EQ(again->state, RequestState::kGranted);
  ASSERT_TRUE(again->grant.has_value());
  EXPECT_TRUE(again->grant->values.at("access_key_id").Reveal() == kKeyId);
  ASSERT_EQ(updates_["s1"].size(), 1u);  // The listener heard it too.
}

TEST_F(RequestManagerTest, ReattachWhilePendingKeepsTheSameRequest) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  Attach("s1");
  EXPECT_TRUE(HasEvent(WatchEventKind::kAgentReconnected, pending.request_id));
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(again.request_id, pending.request_id);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(5);
  requests_->Tick();  // Connected again: no cancellation.
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
}

TEST_F(RequestManagerTest, SessionScopeGrantsLaterNeedsOfTheSameSession) {
  StoreAws();
  Attach("s1");
  Attach("s2");
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = first.request_id;
  in.scope = Scope::kSession;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  NeedUpdate second =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "anything else"));
  EXPECT_EQ(second.state, RequestState::kGranted);
  ASSERT_TRUE(second.grant.has_value());
  EXPECT_EQ(second.grant->record.scope, static_cast<int>(Scope::kSession));
  NeedUpdate other = *requests_->SubmitNeed("s2", agent_, AwsNeed("n1"));
  EXPECT_EQ(other.state, RequestState::kPendingApproval);
}

// Another process with the agent token and the session key cannot take a
// live session over, and one that takes over a session left behind is
// asked again for what the first process was allowed for the session.
TEST_F(RequestManagerTest, ASessionIsNotABearerCapability) {
  StoreAws();
  WatchAll();
  int64_t first = Attach("s1");
  Caller other = MakeCaller("agent", "python, pid 500", 500);
  absl::StatusOr<int64_t> taken =
      requests_->AttachSession("s1", other, [](const NeedUpdate&) {});
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists)
      << taken.status();
  EXPECT_EQ(CountAudit("session.attach_refused"), 1);

  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = asked.request_id;
  in.scope = Scope::kSession;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  // The session approval covers the process that was approved.
  EXPECT_EQ(
      requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "anything"))->state,
      RequestState::kGranted);
  Need staging = AwsNeed("n-open", "deploy to staging");
  staging.profile =
      "staging";  // Not stored: stays open while the agent is away.
  ASSERT_EQ(requests_->SubmitNeed("s1", agent_, staging)->state,
            RequestState::kNeedsInput);
  requests_->DetachSession("s1", first);
  ASSERT_TRUE(
      requests_->AttachSession("s1", other, [](const NeedUpdate&) {}).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s1", other, AwsNeed("n3", "anything else"))->state,
      RequestState::kPendingApproval);
  bool shown = false;
  for (const WatchEvent& e : events_) {
    if (e.kind == WatchEventKind::kAgentReconnected &&
        absl::StrContains(e.message, "another process: python, pid 500")) {
      shown = true;
    }
  }
  EXPECT_TRUE(shown) << "approvers were not told another process re-attached";
}

TEST_F(RequestManagerTest, TheAgentCannotApproveOrDenyItsOwnRequest) {
  StoreAws();
  Caller agent = MakeCaller("agent", "node, pid 200, /usr/bin/node", 200);
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  // The agent itself, and a shell it started (pid 300).
  for (int64_t pid : {200, 300}) {
    Caller self = MakeCaller("approver", "sh", pid);
    self.start_time = pid == 200 ? agent.start_time : 1300;
    absl::StatusOr<ApproveResult> r = requests_->Approve(in, self);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << pid;
    EXPECT_EQ(requests_->Deny(pending.request_id, "x", self).code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "request.approve_refused"),
            kinds.end());
  // Another process may decide.
  EXPECT_TRUE(requests_->Approve(in, MakeCaller("approver", "ide", 400)).ok());
}

// `agent & credctl approve`: the approver is no descendant of the agent but
// runs in its terminal session, or in its process group.
TEST_F(RequestManagerTest,
       AnApproverInTheAgentsSessionOrProcessGroupIsRefused) {
  StoreAws();
  Caller agent = MakeCaller("agent", "agent", 200);
  agent.session_id = 150;
  agent.process_group = 160;
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  Caller sibling = MakeCaller("approver", "credctl, pid 500", 500);
  sibling.session_id = 150;
  sibling.process_group = 510;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, sibling);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "agent's session (sid 150"))
      << r.status();
  Caller same_group = MakeCaller("approver", "credctl, pid 501", 501);
  same_group.session_id = 170;
  same_group.process_group = 160;
  r = requests_->Approve(in, same_group);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "process group (160"))
      << r.status();
  EXPECT_EQ(requests_->Deny(pending.request_id, "x", sibling).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  Caller ide = MakeCaller("approver", "ide", 400);
  ide.session_id = 390;
  ide.process_group = 390;
  EXPECT_TRUE(requests_->Approve(in, ide).ok());
}

// An IDE's extension host that started the agent (an MCP server, say)
// shares its session and process group, and is its parent: it may decide.
TEST_F(RequestManagerTest, TheProcessTheAgentRunsUnderMayDecide) {
  StoreAws();
  Caller agent = MakeCaller("agent", "mcp server", 300);  // Runs under 200.
  agent.session_id = 150;
  agent.process_group = 160;
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  Caller host = MakeCaller("approver", "extension host", 200);
  host.session_id = 150;
  host.process_group = 160;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, host);
  EXPECT_TRUE(r.ok()) << r.status();
}

// An agent that re-attached its session from a new process has not shed its
// first one: a shell the first process started still counts as the agent.
TEST_F(RequestManagerTest, EveryProcessRecordedForTheSessionCountsAsTheAgent) {
  StoreAws();
  Caller first = MakeCaller("agent", "agent", 200);
  int64_t a = *requests_->AttachSession("s1", first, [](const NeedUpdate&) {});
  requests_->DetachSession("s1", a);
  Caller second = MakeCaller("agent", "agent again", 600);
  ASSERT_TRUE(
      requests_->AttachSession("s1", second, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", second, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  // pid 300 runs under pid 200, the session's first process.
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(in, MakeCaller("approver", "sh", 300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied)
      << r.status();
  EXPECT_TRUE(requests_->Approve(in, MakeCaller("approver", "ide", 400)).ok());
}

TEST_F(RequestManagerTest, WatchEventsShowTheStoredCredentialsReadiness) {
  WatchAll();
  const int64_t a = Attach("s1");
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_EQ(u.state, RequestState::kNeedsInput);
  ASSERT_EQ(events_.back().kind, WatchEventKind::kAdded);
  EXPECT_FALSE(events_.back().request.credential_readiness.has_value());

  StoreAws();
  requests_->DetachSession("s1", a);
  ASSERT_EQ(events_.back().kind, WatchEventKind::kAgentDisconnected);
  EXPECT_FALSE(events_.back().request.agent_connected);
  ASSERT_TRUE(events_.back().request.credential_readiness.has_value());
  EXPECT_EQ(*events_.back().request.credential_readiness, Readiness::kReady);
}

TEST_F(RequestManagerTest, AnUnwatchedWatcherHearsNothingMore) {
  std::vector<WatchEvent> heard;
  const int64_t watcher =
      requests_->Watch([&heard](const WatchEvent& e) { heard.push_back(e); });
  ASSERT_EQ(heard.size(), 1u);  // The (empty) snapshot's end.
  EXPECT_EQ(heard[0].kind, WatchEventKind::kSnapshotDone);
  requests_->Unwatch(watcher);

  StoreAws();
  Attach("s1");
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  EXPECT_EQ(heard.size(), 1u);
}

}  // namespace
}  // namespace credbroker
