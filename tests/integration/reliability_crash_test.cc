// Reliability of the real credbrokerd: SIGKILL at random moments under
// writes and approvals loses nothing a client was told. Bounded in time, on a
// Unix socket in a temporary directory; the daemon runs with
// --allow_self_approval because the agent and the scripted approvers share
// the test process.
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/integration/reliability_support.h"

namespace credbroker {
namespace testing {
namespace {

// What the clients were told, and so what must survive a SIGKILL.
struct Acknowledged {
  absl::Mutex mu;
  std::map<std::string, std::string> fingerprints
      ABSL_GUARDED_BY(mu);                            // profile ->
  std::set<std::string> pending ABSL_GUARDED_BY(mu);  // request ids
  std::map<std::string, std::string> granted
      ABSL_GUARDED_BY(mu);  // request -> grant
  std::set<std::string> denied ABSL_GUARDED_BY(mu);
};

void VerifyAfterRestart(const BrokerProcess& broker, Acknowledged& ack,
                        int round) {
  SCOPED_TRACE(absl::StrCat("after restart ", round));
  auto client = broker.Client();
  ASSERT_NE(client, nullptr);
  absl::MutexLock lock(&ack.mu);
  for (const auto& [profile, fingerprint] : ack.fingerprints) {
    auto got = client->GetCredential("aws", profile);  // Decrypts the values.
    ASSERT_TRUE(got.ok()) << profile << ": " << got.status();
    EXPECT_EQ(got->fingerprint, fingerprint) << profile;
  }
  auto approver = client::ApprovalClient::Connect(
      OptionsFor(broker, broker.approver_token()));
  ASSERT_TRUE(approver.ok()) << approver.status();
  auto pending = (*approver)->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::set<std::string> now_pending;
  for (const client::ApprovalRequest& r : *pending)
    now_pending.insert(r.request_id);
  for (const std::string& id : ack.pending) {
    EXPECT_TRUE(now_pending.count(id))
        << "pending request " << id << " was lost";
  }
  std::set<std::string> grants;
  client::GrantQuery lg;
  lg.include_ended = true;
  lg.page_size = 1000;
  while (true) {
    auto r = client->ListGrants(lg);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const client::GrantInfo& g : r->grants) grants.insert(g.grant_id);
    if (r->next_page_token.empty()) break;
    lg.page_token = r->next_page_token;
  }
  for (const auto& [request, grant] : ack.granted) {
    EXPECT_FALSE(now_pending.count(request))
        << "granted " << request << " is pending again";
    EXPECT_TRUE(grants.count(grant)) << "grant " << grant << " was lost";
  }
  for (const std::string& id : ack.denied) {
    EXPECT_FALSE(now_pending.count(id))
        << "denied " << id << " is pending again";
    client::Approval again;
    again.request_id = id;
    again.scope = client::Scope::kOnce;
    auto r = (*approver)->Approve(again);
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status()))
        << id << ": " << r.status();
  }
}

TEST(CrashTest, SigkillDuringWritesAndApprovalsLosesNothingAcknowledged) {
  TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  BrokerProcess broker(tmp.path() + "/data", tmp.path());
  const std::vector<std::string> flags = {
      "--allow_self_approval", "--grace_period=1h", "--pending_timeout=1h"};
  const unsigned seed = static_cast<unsigned>(absl::ToUnixMicros(absl::Now()));
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  Acknowledged ack;
  constexpr int kRounds = 22;
  for (int round = 0; round < kRounds; ++round) {
    absl::Status started = broker.Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    VerifyAfterRestart(broker, ack, round);
    if (::testing::Test::HasFatalFailure()) return;
    if (round == 0) {
      auto r = broker.Client()->PutCredential(AwsPut("default"));
      ASSERT_TRUE(r.ok()) << r.status();
      absl::MutexLock lock(&ack.mu);
      ack.fingerprints["default"] = r->credential.fingerprint;
    }
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      auto client = broker.Client();
      for (int i = 0; !stop.load(); ++i) {
        const std::string profile = absl::StrCat("r", round, "-", i);
        auto r = client->PutCredential(AwsPut(profile));
        if (!r.ok()) break;
        absl::MutexLock lock(&ack.mu);
        ack.fingerprints[profile] = r->credential.fingerprint;
      }
    });
    std::thread flow([&] {
      auto agent = client::AgentSession::Connect(
          OptionsFor(broker, broker.agent_token()),
          absl::StrCat("crash-", round));
      auto approver = client::ApprovalClient::Connect(
          OptionsFor(broker, broker.approver_token()));
      if (!agent.ok() || !approver.ok()) return;
      for (int i = 0; !stop.load(); ++i) {
        const std::string need_id = absl::StrCat("n", i);
        if (!(*agent)->SendNeed(AwsNeed(need_id)).ok()) break;
        auto u = (*agent)->WaitForState(
            need_id, client::RequestState::kPendingApproval, absl::Seconds(3));
        if (!u.ok()) break;
        const std::string id = u->request_id;
        {
          absl::MutexLock lock(&ack.mu);
          ack.pending.insert(id);
        }
        // Every 8th stays pending (few enough that ListPending's snapshot,
        // which the broker ends past 256 queued events, stays small).
        if (i % 8 == 0) continue;
        {
          // In flight: the decision is unknown until acknowledged.
          absl::MutexLock lock(&ack.mu);
          ack.pending.erase(id);
        }
        if (i % 2 == 1) {
          client::Approval req;
          req.request_id = id;
          req.scope = client::Scope::kOnce;
          auto r = (*approver)->Approve(req);
          if (!r.ok()) break;
          absl::MutexLock lock(&ack.mu);
          ack.granted[id] = r->grant_id;
        } else {
          if (!(*approver)->Deny(id, "crash test").ok()) break;
          absl::MutexLock lock(&ack.mu);
          ack.denied.insert(id);
        }
      }
      (*agent)->Abort();
    });
    absl::SleepFor(
        absl::Milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    broker.Kill();
    stop.store(true);
    writer.join();
    flow.join();
    EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok")
        << "round " << round;
  }
  {
    absl::MutexLock lock(&ack.mu);
    // The run did something worth checking.
    EXPECT_GT(ack.fingerprints.size(), 2u * kRounds / 3);
    EXPECT_GT(ack.granted.size() + ack.denied.size(), 0u);
    std::cout << "crash test: " << kRounds << " SIGKILLs; "
              << ack.fingerprints.size() << " acknowledged writes, "
              << ack.pending.size() << " pending, " << ack.granted.size()
              << " granted, " << ack.denied.size() << " denied\n";
  }
  ASSERT_TRUE(broker.Start(flags).ok());
  VerifyAfterRestart(broker, ack, kRounds);
  auto code = broker.Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
