// Watchers and processes in the approval flow on the real credbrokerd: a
// slow watcher, the agent's process as the kernel reports it, self-approval,
// grants bound to their process, another user at the door, shutdown and a
// large snapshot. Secret values are compared, never printed.
#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/integration/flow_fixture.h"

namespace credbroker {
namespace testing {
namespace {

// A watcher that never reads is ended with RESOURCE_EXHAUSTED; another
// watcher keeps receiving every event.
TEST_F(FlowTest, SlowWatcherIsEndedOthersKeepReceiving) {
  auto approver = Approver();
  EventLog fast_log;
  auto fast = Watch(*approver, fast_log);
  absl::Notification release;
  std::atomic<int> slow_events{0};
  EventLog slow_log;
  auto slow = approver->Watch(
      [&](const client::ApprovalEvent&) {
        if (slow_events.fetch_add(1) == 0) {
          // Stops reading after its first event, until the test ends.
          release.WaitForNotificationWithTimeout(absl::Seconds(60));
        }
      },
      [&](const absl::Status& s) { slow_log.End(s); });
  ASSERT_TRUE(slow.ok());
  // Each need is an ADDED and then a CANCELLED event of about 30 KB (a
  // large context): 10 sessions x 60 needs x 2 = 1200 events, 36 MB, past
  // the stream's queue of 256 and the transport's flow-control windows.
  constexpr int kSessions = 10, kNeeds = 60;
  std::vector<std::unique_ptr<client::AgentSession>> agents;
  for (int s = 0; s < kSessions; ++s) {
    agents.push_back(LocalAgent(absl::StrCat("s-flood-", s)));
    ASSERT_NE(agents.back(), nullptr);
    for (int n = 0; n < kNeeds; ++n) {
      client::CredentialNeeded need =
          Need(absl::StrCat("n", n), "github", "deploy");
      for (int k = 0; k < 30; ++k) {
        need.context[absl::StrCat("k", k)] = RandomString(1000);
      }
      ASSERT_TRUE(agents.back()->SendNeed(need).ok());
    }
  }
  for (auto& a : agents) {
    for (int n = 0; n < kNeeds; ++n) {
      ASSERT_TRUE(a->WaitForState(absl::StrCat("n", n),
                                  client::RequestState::kNeedsInput, kWait)
                      .ok());
      ASSERT_TRUE(a->Cancel(absl::StrCat("n", n)).ok());
    }
  }
  for (auto& a : agents) {
    ASSERT_TRUE(a->WaitFor(absl::StrCat("n", kNeeds - 1), kWait).ok());
  }
  // The broker dropped the slow watcher's queue when it overflowed; the
  // status follows the messages already in the transport, so the watcher
  // sees it once it reads again.
  release.Notify();
  std::optional<absl::Status> slow_end = (*slow)->WaitForEnd(absl::Seconds(20));
  ASSERT_TRUE(slow_end.has_value()) << "the slow watcher was not ended";
  EXPECT_TRUE(absl::IsResourceExhausted(*slow_end)) << *slow_end;
  EXPECT_LT(slow_events.load(), 2 * kSessions * kNeeds);
  // The fast watcher saw every ADDED and CANCELLED.
  int added = 0, cancelled = 0;
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    added = cancelled = 0;
    for (const auto& e : fast_log.Events()) {
      added += e.kind == client::ApprovalEvent::Kind::kAdded;
      cancelled += e.kind == client::ApprovalEvent::Kind::kCancelled;
    }
    if (cancelled == kSessions * kNeeds) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(added, kSessions * kNeeds);
  EXPECT_EQ(cancelled, kSessions * kNeeds);
  for (auto& a : agents) a->Close().IgnoreError();
}

// The approver sees who asked, as the kernel says: the agent's pid and
// executable, not anything the agent claims.
TEST_F(FlowTest, ApproversSeeTheAgentProcessFromTheKernel) {
  PutAws();
  auto agent = Agent("s-peer");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  const std::string& peer = (*pending)[0].agent_peer;
  EXPECT_TRUE(absl::StrContains(peer, absl::StrCat("pid ", agent->pid())))
      << peer;
  EXPECT_TRUE(absl::StrContains(peer, "flow_agent")) << peer;
  // Audit events carry the same identity.
  client::AuditQuery query;
  query.kind = "request.created";
  auto events = client_->ListAuditEvents(query);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_TRUE(absl::StrContains(events->events[0].peer,
                                absl::StrCat("pid ", agent->pid())));
}

// An agent that can run commands must not approve its own request: the
// agent's process (here: this test process) and anything it starts are
// refused, and the refusal is audited.
TEST_F(FlowTest, TheRequestingProcessCannotApproveItself) {
  PutAws();
  auto agent = LocalAgent("s-self");
  ASSERT_NE(agent, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  auto approver = Approver();
  auto approved = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsPermissionDenied(approved.status())) << approved.status();
  EXPECT_TRUE(
      absl::StrContains(approved.status().message(), "requesting agent"));
  EXPECT_TRUE(absl::IsPermissionDenied(approver->Deny(id, "no")));
  // credctl started by the agent's process is a descendant: refused too.
  Subprocess::Options o;
  o.argv = {CredctlPath(), "--data_dir", broker_->data_dir(), "approve", id};
  o.stdin_path = "/dev/null";
  auto credctl = Subprocess::Spawn(o);
  ASSERT_TRUE(credctl.ok()) << credctl.status();
  absl::StatusOr<int> code = (*credctl)->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(
      absl::StrContains((*credctl)->stderr_text(), "PERMISSION_DENIED"));
  auto still = approver->ListPending();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->size(), 1u);
  ExpectAudit({"request.approve_refused", "request.deny_refused"});
}

// A grant is bound to the process it was released to.
TEST_F(FlowTest, OnlyTheReceivingProcessCanReleaseItsGrant) {
  PutAws();
  auto agent = Agent("s-bound");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());
  // This process holds the agent token too, but is not the grant's holder.
  auto other = LocalAgent("s-thief");
  ASSERT_NE(other, nullptr);
  absl::Status stolen = other->ReleaseGrant(approved->grant_id);
  EXPECT_TRUE(absl::IsPermissionDenied(stolen)) << stolen;
  EXPECT_TRUE(absl::StrContains(agent->ReleaseGrant(approved->grant_id), "OK"));
}

// Another user's process is refused at the door, even when the socket's mode
// would let it connect.
TEST_F(FlowTest, ConnectionsFromAnotherUserAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  // A directory another user can traverse (the test's own is 0700).
  char tmpl[] = "/tmp/cbopen.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string open_dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::system(("rm -rf " + dir).c_str()); }
  } cleanup{open_dir};
  ASSERT_EQ(chmod(open_dir.c_str(), 0755), 0);
  std::string sock = open_dir + "/b.sock";
  RestartWith({"--listen", absl::StrCat("unix:", broker_->data_dir(),
                                        "/broker.sock,unix:", sock)});
  ASSERT_EQ(chmod(sock.c_str(), 0666), 0);
  std::string token = open_dir + "/approver.token";
  { std::ofstream(token) << broker_->approver_token() << "\n"; }
  ASSERT_EQ(chmod(token.c_str(), 0644), 0);
  Subprocess::Options o;
  o.argv = {"/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            CredctlPath(),
            "--broker",
            "unix:" + sock,
            "--token_file",
            token,
            "--timeout",
            "5",
            "list"};
  o.stdin_path = "/dev/null";
  auto credctl = Subprocess::Spawn(o);
  ASSERT_TRUE(credctl.ok()) << credctl.status();
  absl::StatusOr<int> code = (*credctl)->WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(absl::StrContains((*credctl)->stderr_text(), "UNAVAILABLE"))
      << (*credctl)->stderr_text();
  absl::Time deadline = absl::Now() + kWait;
  while (!absl::StrContains(broker_->stderr_text(),
                            "refused a connection from uid 65534") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "refused a connection from uid 65534"))
      << broker_->stderr_text();
  // The owner still gets in on the same socket.
  client::Options own = ApproverOptions();
  own.address = "unix:" + sock;
  auto c = client::CredentialClient::Connect(own);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->ListProviders().ok());
}

// SIGTERM ends every open stream with UNAVAILABLE before the broker exits 0.
TEST_F(FlowTest, ShutdownEndsOpenStreamsWithUnavailable) {
  PutAws();
  auto agent = LocalAgent("s-shutdown");
  ASSERT_NE(agent, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  ASSERT_NE(watcher, nullptr);
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  std::optional<absl::Status> watch_end = watcher->WaitForEnd(kWait);
  ASSERT_TRUE(watch_end.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*watch_end)) << *watch_end;
  absl::Time deadline = absl::Now() + kWait;
  while (!agent->EndStatus().has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(agent->EndStatus().has_value());
  EXPECT_TRUE(absl::IsUnavailable(*agent->EndStatus())) << *agent->EndStatus();
  // Channels to the stopped broker go first: gRPC shares their (dead)
  // connection with new channels to the same address.
  watcher.reset();
  approver.reset();
  agent.reset();
  // The pending need survives for the next start.
  ASSERT_TRUE(broker_->Start().ok());
  client_ = broker_->Client();
  auto again = Approver();
  ASSERT_NE(again, nullptr);
  auto pending = again->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, id);
}

// A snapshot larger than a stream's queue bound is delivered whole: only
// live events a slow reader lets pile up count toward the bound.
TEST_F(FlowTest, AWatcherGetsASnapshotLargerThanTheQueueBound) {
  constexpr int kSessions = 5;
  constexpr int kNeeds = 60;  // 300 pending, more than the bound of 256.
  std::vector<std::unique_ptr<client::AgentSession>> agents;
  for (int s = 0; s < kSessions; ++s) {
    agents.push_back(LocalAgent(absl::StrCat("s-big-", s)));
    ASSERT_NE(agents.back(), nullptr);
    for (int n = 0; n < kNeeds; ++n) {
      Ask(*agents.back(), Need(absl::StrCat("n", n)),
          client::RequestState::kNeedsInput);
    }
  }
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  ASSERT_NE(watcher, nullptr);
  int snapshot = 0;
  for (const auto& e : log.Events())
    snapshot += e.kind == client::ApprovalEvent::Kind::kSnapshot;
  EXPECT_EQ(snapshot, kSessions * kNeeds);
  // Still live afterwards.
  auto extra = LocalAgent("s-big-extra");
  ASSERT_NE(extra, nullptr);
  std::string id = Ask(*extra, Need("late"), client::RequestState::kNeedsInput);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kAdded, id));
  EXPECT_FALSE(watcher->WaitForEnd(absl::Milliseconds(100)).has_value());
  for (auto& a : agents) a->Close().IgnoreError();
  extra->Close().IgnoreError();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
