// credbroker_bench's streams scenario: daemon memory per agent session with a
// pending need against the baseline's per idle stream, and one event to M
// watchers against the baseline's broadcast to M streams.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/internal/convert.h"
#include "credbroker/bench/v1/echo.grpc.pb.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "tests/bench/bench_calls.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_scenarios.h"

namespace credbroker {
namespace benchmark {

namespace {

// Arrival times of fan-out events, per watcher and sequence number.
// Arrival times of each trigger's event at each watcher, and a count of the
// watchers that have heard of its cancellation.
class Arrivals {
 public:
  Arrivals(int watchers, int events)
      : watchers_(watchers),
        at_(watchers * events, 0),
        count_(events, 0),
        cancelled_(events, 0) {}
  void Record(int watcher, int seq, bool cancelled) {
    if (seq < 0 || seq >= static_cast<int>(count_.size())) return;
    int64_t now = NowNs();
    absl::MutexLock lock(&mu_);
    if (cancelled) {
      ++cancelled_[seq];
      return;
    }
    int64_t& slot = at_[seq * watchers_ + watcher];
    if (slot != 0) return;
    slot = now;
    ++count_[seq];
  }
  // Waits until every watcher has `seq` (or its cancellation); false after
  // `timeout`.
  bool WaitAll(int seq, absl::Duration timeout, bool cancelled = false) {
    absl::MutexLock lock(&mu_);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return (cancelled ? cancelled_ : count_)[seq] >= watchers_;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
  // Latest and earliest arrival of `seq`.
  std::pair<int64_t, int64_t> Span(int seq) {
    absl::MutexLock lock(&mu_);
    int64_t lo = INT64_MAX, hi = 0;
    for (int w = 0; w < watchers_; ++w) {
      lo = std::min(lo, at_[seq * watchers_ + w]);
      hi = std::max(hi, at_[seq * watchers_ + w]);
    }
    return {lo, hi};
  }

 private:
  const int watchers_;
  absl::Mutex mu_;
  std::vector<int64_t> at_ ABSL_GUARDED_BY(mu_);
  std::vector<int> count_ ABSL_GUARDED_BY(mu_);
  std::vector<int> cancelled_ ABSL_GUARDED_BY(mu_);
};

// Counts streams that reached their first message, and streams ended.
struct StreamCounters {
  std::atomic<int> started{0};
  std::atomic<int> ended{0};
  absl::Mutex mu;
  std::string first_error ABSL_GUARDED_BY(mu);  // Of a stream the server ended.
  // Waits until `n` streams started; false when one ended first, or after
  // `timeout`.
  bool WaitStarted(int n, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (started.load() < n && ended.load() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return started.load() >= n;
  }
  std::string Error() {
    absl::MutexLock lock(&mu);
    return first_error;
  }
  // A stream's end (from OnDone).
  void End(const grpc::Status& s) {
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      absl::MutexLock lock(&mu);
      if (first_error.empty()) {
        first_error = absl::StrCat(static_cast<int>(s.error_code()), ": ",
                                   s.error_message());
      }
    }
    ended++;
  }
  bool WaitEnded(int n, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (ended.load() < n && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    return ended.load() >= n;
  }
};

// A baseline Watch stream.
class EchoWatch : public grpc::ClientReadReactor<EchoMessage> {
 public:
  EchoWatch(Echo::Stub* stub, const Target& t, bool idle, int index,
            Arrivals* arrivals, StreamCounters* counters)
      : index_(index), arrivals_(arrivals), counters_(counters) {
    t.Prepare(ctx_);
    ctx_.set_deadline(std::chrono::system_clock::time_point::max());
    req_.set_idle(idle);
    stub->async()->Watch(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (msg_.seq() < 0) {
      counters_->started++;
    } else if (arrivals_ != nullptr) {
      arrivals_->Record(index_, static_cast<int>(msg_.seq()),
                        /*cancelled=*/false);
    }
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status& s) override { counters_->End(s); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  echo::WatchRequest req_;
  EchoMessage msg_;
  int index_;
  Arrivals* arrivals_;
  StreamCounters* counters_;
};

// An agent session with one need, counted once the broker says it is pending.
class SessionStream
    : public grpc::ClientBidiReactor<credbroker::v1::SessionRequest,
                                     credbroker::v1::NeedUpdate> {
 public:
  SessionStream(credbroker::v1::CredentialBroker::Stub* stub,
                const std::string& token, int index, StreamCounters* counters)
      : counters_(counters) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    hello_.mutable_hello()->set_session_key(
        absl::StrCat("bench-session-", index));
    client::internal::ToProto(Need("n", absl::StrCat("stream ", index)),
                              need_.mutable_need());
    stub->async()->Session(&ctx_, this);
    StartWrite(&hello_);
    StartRead(&update_);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok && !need_sent_) {
      need_sent_ = true;
      StartWrite(&need_);
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!counted_) {  // PENDING_APPROVAL (NEEDS_INPUT without a stored
                      // credential).
      counted_ = true;
      counters_->started++;
    }
    StartRead(&update_);
  }
  void OnDone(const grpc::Status& s) override { counters_->End(s); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  credbroker::v1::SessionRequest hello_, need_;
  credbroker::v1::NeedUpdate update_;
  bool need_sent_ = false;
  bool counted_ = false;
  StreamCounters* counters_;
};

// An approver's WatchRequests stream; "f<seq>" needs are fan-out events.
class ApprovalWatch
    : public grpc::ClientReadReactor<credbroker::v1::ApprovalEvent> {
 public:
  ApprovalWatch(credbroker::v1::ApprovalService::Stub* stub, const Target& t,
                int index, Arrivals* arrivals, StreamCounters* counters)
      : index_(index), arrivals_(arrivals), counters_(counters) {
    ctx_.AddMetadata("authorization", "Bearer " + t.token);
    stub->async()->WatchRequests(&ctx_, &req_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (event_.kind() == credbroker::v1::ApprovalEvent::KIND_SNAPSHOT_DONE) {
      counters_->started++;
    } else if (event_.kind() == credbroker::v1::ApprovalEvent::KIND_ADDED ||
               event_.kind() == credbroker::v1::ApprovalEvent::KIND_CANCELLED) {
      const std::string& id = event_.request().need().need_id();
      int seq = -1;
      if (id.size() > 1 && id[0] == 'f' &&
          absl::SimpleAtoi(id.substr(1), &seq)) {
        arrivals_->Record(
            index_, seq,
            event_.kind() == credbroker::v1::ApprovalEvent::KIND_CANCELLED);
      }
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& s) override { counters_->End(s); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  credbroker::v1::WatchRequestsRequest req_;
  credbroker::v1::ApprovalEvent event_;
  int index_;
  Arrivals* arrivals_;
  StreamCounters* counters_;
};

constexpr int kStreamsPerChannel = 100;
// Fan-out events sent before the measured ones, on both servers: the first
// few after the watchers start still meet the end of the start-up (the
// broker's watchers have just been sent their snapshot of every pending
// request: at 10,000 sessions and 100 watchers, a million messages).
constexpr int kWarmupEvents = 20;

// Runs a function when the scope ends (streams must be ended before their
// reactors are destroyed, on every return path).
class AtExit {
 public:
  explicit AtExit(std::function<void()> f) : f_(std::move(f)) {}
  ~AtExit() { f_(); }

 private:
  std::function<void()> f_;
};

template <typename T>
void CancelAll(std::vector<std::unique_ptr<T>>& streams,
               StreamCounters& counters) {
  for (auto& s : streams) s->Cancel();
  counters.WaitEnded(static_cast<int>(streams.size()), absl::Seconds(60));
}

}  // namespace

absl::Status StreamsScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const int n = absl::GetFlag(FLAGS_sessions);
  const int m = absl::GetFlag(FLAGS_watchers);
  const int k = absl::GetFlag(FLAGS_events);
  const int nch = (n + kStreamsPerChannel - 1) / kStreamsPerChannel;
  const absl::Duration settle = absl::Milliseconds(500);
  Table mem("Streams: daemon RSS (VmRSS before/after opening the streams)",
            {"server", "streams", "RSS before", "RSS after", "per stream",
             "vs baseline"});
  Table fan(
      "Fan-out: one event to every watcher (time from the trigger call to the "
      "last "
      "watcher; spread = first to last watcher)",
      {"server", "watchers", "events", "p50", "p99", "spread p50", "spread p99",
       "p99 vs baseline"});

  // Baseline: idle streams, then M watchers and broadcasts.
  double base_per_stream = 0;
  Stats base_fan, base_spread;
  {
    servers.echo_target.Connect(nch);
    std::vector<std::unique_ptr<Echo::Stub>> stubs;
    for (auto& ch : servers.echo_target.channels)
      stubs.push_back(Echo::NewStub(ch));
    StreamCounters idle_counters;
    absl::SleepFor(settle);
    int64_t before = RssKb(servers.echo_pid());
    std::vector<std::unique_ptr<EchoWatch>> idle;
    for (int i = 0; i < n; ++i) {
      idle.push_back(std::make_unique<EchoWatch>(
          stubs[i / kStreamsPerChannel].get(), servers.echo_target, true, i,
          nullptr, &idle_counters));
    }
    if (!idle_counters.WaitStarted(n, absl::Minutes(2))) {
      CancelAll(idle, idle_counters);
      return absl::DeadlineExceededError("baseline streams did not start: " +
                                         idle_counters.Error());
    }
    absl::SleepFor(settle);
    int64_t after = RssKb(servers.echo_pid());
    base_per_stream = (after - before) * 1024.0 / n;
    mem.Add({"echo (bare server streams)", absl::StrCat(n),
             absl::StrCat(before / 1024, " MiB"),
             absl::StrCat(after / 1024, " MiB"),
             Fmt(base_per_stream / 1024, 1) + " KiB", "1.00×"});

    Arrivals arrivals(m, kWarmupEvents + k);
    StreamCounters fan_counters;
    std::vector<std::unique_ptr<EchoWatch>> watchers;
    AtExit end_streams([&] {
      CancelAll(watchers, fan_counters);
      CancelAll(idle, idle_counters);
    });
    for (int i = 0; i < m; ++i) {
      watchers.push_back(std::make_unique<EchoWatch>(
          stubs[i % stubs.size()].get(), servers.echo_target, false, i,
          &arrivals, &fan_counters));
    }
    if (!fan_counters.WaitStarted(m, absl::Seconds(60))) {
      CancelAll(watchers, fan_counters);
      CancelAll(idle, idle_counters);
      return absl::DeadlineExceededError("baseline watchers did not start: " +
                                         fan_counters.Error());
    }
    auto trigger = Echo::NewStub(NewChannel(servers.echo_target.address));
    std::vector<int64_t> total, spread;
    for (int seq = 0; seq < kWarmupEvents + k; ++seq) {
      grpc::ClientContext ctx;
      servers.echo_target.Prepare(ctx);
      EchoMessage msg;
      msg.set_seq(seq);
      echo::BroadcastResponse resp;
      const int64_t t0 = NowNs();
      grpc::Status s = trigger->Broadcast(&ctx, msg, &resp);
      if (!s.ok())
        return absl::InternalError("Broadcast: " + s.error_message());
      if (!arrivals.WaitAll(seq, absl::Seconds(30))) {
        return absl::DeadlineExceededError(
            "a broadcast did not reach every watcher");
      }
      auto [lo, hi] = arrivals.Span(seq);
      if (seq >= kWarmupEvents) {
        total.push_back(hi - t0);
        spread.push_back(hi - lo);
      }
    }
    base_fan = FromSamples("", total);
    base_spread = FromSamples("", spread);
    fan.Add({"echo (Broadcast to M streams)", absl::StrCat(m), absl::StrCat(k),
             Us(base_fan.PercentileUs(0.5)), Us(base_fan.PercentileUs(0.99)),
             Us(base_spread.PercentileUs(0.5)),
             Us(base_spread.PercentileUs(0.99)), "1.00×"});
    CancelAll(watchers, fan_counters);
    CancelAll(idle, idle_counters);
  }

  // The broker: N sessions each with a pending need, then M watchers (each
  // first receives the N pending requests as its snapshot).
  {
    servers.broker_target.Connect(nch);
    {
      BrokerCalls calls(servers.broker_target);
      if (absl::Status s = PutDefault(calls); !s.ok()) return s;
    }
    std::vector<std::unique_ptr<credbroker::v1::CredentialBroker::Stub>> stubs;
    for (auto& ch : servers.broker_target.channels) {
      stubs.push_back(credbroker::v1::CredentialBroker::NewStub(ch));
    }
    StreamCounters session_counters;
    absl::SleepFor(settle);
    int64_t before = RssKb(servers.broker_pid());
    std::vector<std::unique_ptr<SessionStream>> sessions;
    const int64_t open_start = NowNs();
    for (int i = 0; i < n; ++i) {
      sessions.push_back(std::make_unique<SessionStream>(
          stubs[i / kStreamsPerChannel].get(), servers.agent_token, i,
          &session_counters));
    }
    if (!session_counters.WaitStarted(n, absl::Minutes(5))) {
      const std::string why = session_counters.Error();
      const int pending = session_counters.started.load();
      CancelAll(sessions, session_counters);
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", pending, " of ", n, " needs became pending; ", why));
    }
    const double open_secs = (NowNs() - open_start) / 1e9;
    absl::SleepFor(settle);
    int64_t after = RssKb(servers.broker_pid());
    double per = (after - before) * 1024.0 / n;
    mem.Add({absl::StrFormat(
                 "credbrokerd (sessions with a pending need; opened in %.1f s)",
                 open_secs),
             absl::StrCat(n), absl::StrCat(before / 1024, " MiB"),
             absl::StrCat(after / 1024, " MiB"), Fmt(per / 1024, 1) + " KiB",
             Ratio(per, base_per_stream)});

    Arrivals arrivals(m, kWarmupEvents + k);
    StreamCounters watch_counters;
    std::vector<std::unique_ptr<ApprovalWatch>> watchers;
    std::vector<std::shared_ptr<grpc::Channel>> wch;
    std::vector<std::unique_ptr<credbroker::v1::ApprovalService::Stub>> wstubs;
    for (int i = 0; i < std::min(m, 10); ++i) {
      wch.push_back(NewChannel(servers.broker_target.address));
      wstubs.push_back(credbroker::v1::ApprovalService::NewStub(wch.back()));
    }
    AtExit end_streams([&] {
      CancelAll(watchers, watch_counters);
      CancelAll(sessions, session_counters);
    });
    for (int i = 0; i < m; ++i) {
      watchers.push_back(std::make_unique<ApprovalWatch>(
          wstubs[i % wstubs.size()].get(), servers.broker_target, i, &arrivals,
          &watch_counters));
    }
    if (!watch_counters.WaitStarted(m, absl::Minutes(5))) {
      mem.Print();  // Measured already.
      const std::string why = watch_counters.Error();
      CancelAll(watchers, watch_counters);
      CancelAll(sessions, session_counters);
      return absl::DeadlineExceededError(absl::StrCat(
          watch_counters.started.load(), " of ", m,
          " approval watchers got their snapshot of ", n,
          " pending requests; the broker ended ", watch_counters.ended.load(),
          " streams first", why.empty() ? "" : absl::StrCat(" (", why, ")")));
    }
    auto trigger = client::AgentSession::Connect(
        servers.ClientOptions(servers.agent_token), "bench-trigger");
    if (!trigger.ok()) return trigger.status();
    std::vector<int64_t> total, spread;
    for (int seq = 0; seq < kWarmupEvents + k; ++seq) {
      const int64_t t0 = NowNs();
      if (absl::Status s =
              (*trigger)->SendNeed(Need(absl::StrCat("f", seq), "fan-out"));
          !s.ok()) {
        return s;
      }
      if (!arrivals.WaitAll(seq, absl::Seconds(30))) {
        return absl::DeadlineExceededError(
            absl::StrCat("an event did not reach every watcher; ",
                         watch_counters.ended.load(), " watch streams ended (",
                         watch_counters.Error(), ")"));
      }
      auto [lo, hi] = arrivals.Span(seq);
      if (seq >= kWarmupEvents) {
        total.push_back(hi - t0);
        spread.push_back(hi - lo);
      }
      // A session may hold only so many open needs. The cancellation is
      // itself an event to every watcher: wait for it, untimed, so that the
      // next trigger's time is that of one event only.
      (*trigger)->Cancel(absl::StrCat("f", seq)).IgnoreError();
      if (!arrivals.WaitAll(seq, absl::Seconds(30), /*cancelled=*/true)) {
        return absl::DeadlineExceededError(
            "a cancellation did not reach every watcher");
      }
    }
    Stats bf = FromSamples("", total), bs = FromSamples("", spread);
    fan.Add({"credbrokerd (need ADDED to M WatchRequests)", absl::StrCat(m),
             absl::StrCat(k), Us(bf.PercentileUs(0.5)),
             Us(bf.PercentileUs(0.99)), Us(bs.PercentileUs(0.5)),
             Us(bs.PercentileUs(0.99)),
             Ratio(bf.PercentileUs(0.99), base_fan.PercentileUs(0.99))});
    (*trigger)->Abort();
    CancelAll(watchers, watch_counters);
    CancelAll(sessions, session_counters);
  }
  mem.Print();
  fan.Print();
  return absl::OkStatus();
}

}  // namespace benchmark
}  // namespace credbroker
