// credbroker_bench's approval scenario: need -> approver event -> Approve
// -> GRANTED with a scripted approver, and need -> GRANTED under a standing
// approval.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "tests/bench/bench_calls.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_scenarios.h"

namespace credbroker {
namespace benchmark {

namespace {

// Request ids of ADDED events, by need id, for the scripted approver.
class AddedQueue {
 public:
  void Add(const client::ApprovalEvent& e) {
    if (e.kind != client::ApprovalEvent::Kind::kAdded) return;
    absl::MutexLock lock(&mu_);
    ids_[e.request->need.need_id] = e.request->request_id;
  }
  // The request id of `need_id`'s ADDED event; empty after `timeout`.
  std::string Take(const std::string& need_id, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ids_.count(need_id) > 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has), timeout)) return "";
    std::string id = ids_[need_id];
    ids_.erase(need_id);
    return id;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status ApprovalScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  servers.broker_target.Connect(1);
  servers.echo_target.Connect(1);
  BrokerCalls broker(servers.broker_target);
  if (absl::Status s = PutDefault(broker); !s.ok()) return s;
  EchoCalls echo(servers.echo_target);
  Stats base = echo.Run(1, absl::GetFlag(FLAGS_duration));

  auto approver = client::ApprovalClient::Connect(
      servers.ClientOptions(servers.broker_target.token));
  if (!approver.ok()) return approver.status();
  AddedQueue added;
  absl::Notification watching;
  auto watcher = (*approver)->Watch([&](const client::ApprovalEvent& e) {
    if (e.kind == client::ApprovalEvent::Kind::kSnapshotDone &&
        !watching.HasBeenNotified()) {
      watching.Notify();
    }
    added.Add(e);
  });
  if (!watcher.ok()) return watcher.status();
  // A need sent before the watch is registered would arrive in its snapshot,
  // not as ADDED.
  if (!watching.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    return absl::DeadlineExceededError("the approval watch did not start");
  }
  auto agent = client::AgentSession::Connect(
      servers.ClientOptions(servers.agent_token), "bench");
  if (!agent.ok()) return agent.status();

  const int k = absl::GetFlag(FLAGS_round_trips);
  std::vector<int64_t> scripted, standing;
  for (int i = 0; i < k; ++i) {
    const std::string id = absl::StrCat("a", i);
    const int64_t t0 = NowNs();
    if (absl::Status s =
            (*agent)->SendNeed(Need(id, absl::StrCat("scripted ", i)));
        !s.ok())
      return s;
    std::string request_id = added.Take(id, absl::Seconds(30));
    if (request_id.empty())
      return absl::DeadlineExceededError("no ADDED event for " + id);
    client::Approval req;
    req.request_id = request_id;
    req.scope = client::Scope::kOnce;
    if (auto r = (*approver)->Approve(req); !r.ok()) return r.status();
    auto u = (*agent)->WaitFor(id, absl::Seconds(30));
    if (!u.ok()) return u.status();
    if (u->state != client::RequestState::kGranted)
      return absl::InternalError("not granted");
    scripted.push_back(NowNs() - t0);
    (*agent)->ReleaseGrant(u->grant->grant_id).IgnoreError();
  }
  {
    // The standing approval.
    if (absl::Status s =
            (*agent)->SendNeed(Need("seed", "bench standing seed"));
        !s.ok())
      return s;
    std::string request_id = added.Take("seed", absl::Seconds(30));
    client::Approval req;
    req.request_id = request_id;
    req.scope = client::Scope::kStanding;
    req.action_pattern = "bench standing *";
    req.ttl = absl::Seconds(3600);
    if (auto r = (*approver)->Approve(req); !r.ok()) return r.status();
    if (auto u = (*agent)->WaitFor("seed", absl::Seconds(30)); !u.ok())
      return u.status();
  }
  for (int i = 0; i < k; ++i) {
    const std::string id = absl::StrCat("s", i);
    const int64_t t0 = NowNs();
    if (absl::Status s =
            (*agent)->SendNeed(Need(id, absl::StrCat("bench standing ", i)));
        !s.ok()) {
      return s;
    }
    auto u = (*agent)->WaitFor(id, absl::Seconds(30));
    if (!u.ok()) return u.status();
    if (u->state != client::RequestState::kGranted) {
      return absl::InternalError(
          "a need under the standing approval was not granted");
    }
    standing.push_back(NowNs() - t0);
    (*agent)->ReleaseGrant(u->grant->grant_id).IgnoreError();
  }
  (*agent)->Close().IgnoreError();
  (*watcher)->Cancel();

  Table table(
      "Approval round trip (one agent session, sequential; the daemon runs "
      "with "
      "--allow_self_approval)",
      {"round trip", "n", "p50", "p99", "p99.9", "p50 vs echo p50 (c=1)"});
  table.Add({"Echo unary (baseline, c=1)", absl::StrCat(base.ops),
             Us(base.PercentileUs(0.5)), Us(base.PercentileUs(0.99)),
             Us(base.PercentileUs(0.999)), "1.00×"});
  const std::vector<std::pair<std::string, const std::vector<int64_t>*>> kinds =
      {{"need → ADDED → Approve → GRANTED (scripted approver)", &scripted},
       {"need → GRANTED (standing approval)", &standing}};
  for (const auto& [name, lat] : kinds) {
    Stats st = FromSamples(name, *lat);
    table.Add({name, absl::StrCat(st.ops), Us(st.PercentileUs(0.5)),
               Us(st.PercentileUs(0.99)), Us(st.PercentileUs(0.999)),
               Ratio(st.PercentileUs(0.5), base.PercentileUs(0.5))});
  }
  table.Print();
  return absl::OkStatus();
}

}  // namespace benchmark
}  // namespace credbroker
