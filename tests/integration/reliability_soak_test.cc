// Reliability of the real credbrokerd: a soak of hundreds of agent sessions
// with several approvers, watching descriptors and memory. Bounded in time,
// on a Unix socket in a temporary directory; the daemon runs with
// --allow_self_approval because the agent and the scripted approvers share
// the test process. (The slow watcher is
// FlowTest.SlowWatcherIsEndedOthersKeepReceiving.)
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
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

TEST(SoakTest, HundredsOfSessionsAndSeveralApprovers) {
  TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  BrokerProcess broker(tmp.path() + "/data", tmp.path());
  ASSERT_TRUE(broker
                  .Start({"--allow_self_approval", "--pending_timeout=3s",
                          "--grace_period=2s"})
                  .ok());
  ASSERT_TRUE(broker.Client()->PutCredential(AwsPut("default")).ok());
  constexpr int kSessions = 200, kApprovers = 4, kDrivers = 4;
  const absl::Duration kRun = absl::Seconds(10);

  std::vector<std::unique_ptr<client::AgentSession>> sessions;
  for (int i = 0; i < kSessions; ++i) {
    auto s = client::AgentSession::Connect(
        OptionsFor(broker, broker.agent_token()), absl::StrCat("soak-", i));
    ASSERT_TRUE(s.ok()) << s.status();
    sessions.push_back(std::move(*s));
  }
  const int fds_start = OpenFds(broker.pid());
  const int64_t rss_start = RssKb(broker.pid());

  // Decisions acknowledged to the approvers, per request id.
  absl::Mutex mu;
  std::map<std::string, int> decisions ABSL_GUARDED_BY(mu);
  std::vector<std::string> unexpected ABSL_GUARDED_BY(mu);
  std::atomic<bool> stop_approvers{false};
  std::vector<std::thread> approvers;
  for (int a = 0; a < kApprovers; ++a) {
    approvers.emplace_back([&, a] {
      auto approver = client::ApprovalClient::Connect(
          OptionsFor(broker, broker.approver_token()));
      if (!approver.ok()) return;
      absl::Mutex qmu;
      std::deque<std::string> queue ABSL_GUARDED_BY(qmu);
      auto watcher = (*approver)->Watch([&](const client::ApprovalEvent& e) {
        if (e.kind != client::ApprovalEvent::Kind::kAdded) return;
        absl::MutexLock lock(&qmu);
        queue.push_back(e.request->request_id);
      });
      if (!watcher.ok()) return;
      std::mt19937 rng(a);
      while (!stop_approvers.load()) {
        std::string id;
        {
          absl::MutexLock lock(&qmu);
          auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(qmu) {
            return !queue.empty();
          };
          if (!qmu.AwaitWithTimeout(absl::Condition(&ready),
                                    absl::Milliseconds(100)))
            continue;
          id = queue.front();
          queue.pop_front();
        }
        const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
        absl::Status s;
        if (roll < 45) {
          client::Approval req;
          req.request_id = id;
          req.scope = client::Scope::kOnce;
          s = (*approver)->Approve(req).status();
        } else if (roll < 80) {
          s = (*approver)->Deny(id, "soak");
        } else {
          continue;  // Left to expire (or to another approver).
        }
        absl::MutexLock lock(&mu);
        if (s.ok()) {
          ++decisions[id];
        } else if (!absl::IsFailedPrecondition(s)) {
          unexpected.push_back(s.ToString());
        }
      }
      (*watcher)->Cancel();
    });
  }

  // Agents: needs on random sessions; some cancelled.
  std::vector<std::vector<std::string>> needs(kSessions);
  absl::Mutex needs_mu;
  std::atomic<int> sent{0};
  std::vector<std::thread> drivers;
  const absl::Time end = absl::Now() + kRun;
  for (int d = 0; d < kDrivers; ++d) {
    drivers.emplace_back([&, d] {
      std::mt19937 rng(100 + d);
      for (int i = 0; absl::Now() < end; ++i) {
        const int s = std::uniform_int_distribution<int>(0, kSessions - 1)(rng);
        const std::string need_id = absl::StrCat("d", d, "-", i);
        if (!sessions[s]->SendNeed(AwsNeed(need_id)).ok()) continue;
        {
          absl::MutexLock lock(&needs_mu);
          needs[s].push_back(need_id);
        }
        sent++;
        if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
          sessions[s]->Cancel(need_id).IgnoreError();
        }
        absl::SleepFor(absl::Milliseconds(15));
      }
    });
  }
  int fds_max = fds_start;
  int64_t rss_max = rss_start;
  while (absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(250));
    fds_max = std::max(fds_max, OpenFds(broker.pid()));
    rss_max = std::max(rss_max, RssKb(broker.pid()));
  }
  for (auto& t : drivers) t.join();

  // Every need ends (expiry is 3 s), each in exactly one terminal state.
  std::set<std::string> grant_ids;
  int granted = 0, denied = 0, expired = 0, cancelled = 0;
  for (int s = 0; s < kSessions; ++s) {
    for (const std::string& need_id : needs[s]) {
      auto decided = sessions[s]->WaitFor(need_id, absl::Seconds(15));
      ASSERT_TRUE(decided.ok()) << need_id << ": " << decided.status();
      int terminal = 0;
      for (const client::NeedUpdate& u : sessions[s]->Updates(need_id)) {
        if (!IsTerminal(u.state)) continue;
        ++terminal;
        switch (u.state) {
          case client::RequestState::kGranted:
            ++granted;
            EXPECT_TRUE(grant_ids.insert(u.grant->grant_id).second)
                << "grant " << u.grant->grant_id << " handed out twice";
            break;
          case client::RequestState::kDenied:
            ++denied;
            break;
          case client::RequestState::kExpired:
            ++expired;
            break;
          default:
            ++cancelled;
            break;
        }
      }
      EXPECT_EQ(terminal, 1) << need_id << " ended " << terminal << " times";
    }
  }
  stop_approvers.store(true);
  for (auto& t : approvers) t.join();
  {
    absl::MutexLock lock(&mu);
    for (const auto& [id, n] : decisions)
      EXPECT_EQ(n, 1) << id << " decided " << n << " times";
    EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  }
  fds_max = std::max(fds_max, OpenFds(broker.pid()));
  rss_max = std::max(rss_max, RssKb(broker.pid()));
  std::cout << "soak: " << sent.load() << " needs on " << kSessions
            << " sessions: " << granted << " granted, " << denied << " denied, "
            << expired << " expired, " << cancelled << " cancelled; fds "
            << fds_start << " -> max " << fds_max << ", RSS "
            << rss_start / 1024 << " MiB -> max " << rss_max / 1024 << " MiB\n";
  EXPECT_GT(sent.load(), 200);
  EXPECT_GT(granted, 0);
  EXPECT_GT(denied, 0);
  EXPECT_GT(expired, 0);
  EXPECT_LE(fds_max, fds_start + 32);
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
  // default) before it is reused, so RSS measures the quarantine; leaks are
  // LeakSanitizer's job there.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int64_t kRssGrowthKb = (96 + 384) * 1024;
#else
  constexpr int64_t kRssGrowthKb = 96 * 1024;
#endif
  EXPECT_LE(rss_max, rss_start + kRssGrowthKb);
  for (auto& s : sessions) s->Close().IgnoreError();
  ASSERT_TRUE(broker.Stop().ok());
  EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
