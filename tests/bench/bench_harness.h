// The harness of credbroker_bench: clients and targets, latency statistics,
// the broker and baseline processes under test, the output tables and the
// alternating measurement of a baseline/broker pair.
#ifndef CREDBROKER_TESTS_BENCH_BENCH_HARNESS_H_
#define CREDBROKER_TESTS_BENCH_BENCH_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "credbroker/bench/v1/echo.grpc.pb.h"
#include "tests/bench/bench_flags.h"
#include "tests/integration/broker_process.h"
#include "tests/integration/subprocess.h"

namespace credbroker {
namespace benchmark {

namespace echo = ::credbroker::bench::v1;
using echo::Echo;
using echo::EchoMessage;
using testing::BrokerProcess;
using testing::RandomString;
using testing::Subprocess;
using testing::TempDir;

inline int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

// Whether the call `name` ("GetCredential", "ListCredentials (100)") is
// in the comma-separated `calls` ("get,list").
inline bool Wanted(absl::string_view calls, absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view c :
       absl::StrSplit(calls, ',', absl::SkipWhitespace())) {
    if (absl::StartsWith(lower, c)) return true;
  }
  return false;
}

inline std::vector<int> ParseInts(const std::string& csv) {
  std::vector<int> out;
  for (absl::string_view s : absl::StrSplit(csv, ',', absl::SkipWhitespace())) {
    int v = 0;
    if (absl::SimpleAtoi(s, &v) && v > 0) out.push_back(v);
  }
  return out;
}

// CPU time (user + system, all threads) `pid` has used, in seconds; -1
// when it cannot be read.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces), from field 3.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
  int64_t utime = 0;
  int64_t stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// VmRSS of `pid` in KiB, or -1.
inline int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kb = -1;
      absl::SimpleAtoi(
          absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kb);
      return kb;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Clients.

inline std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // A connection of its own per channel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(16 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

// One server under test: its address, token and a set of connections.
struct Target {
  std::string address;
  std::string token;
  std::vector<std::shared_ptr<grpc::Channel>> channels;

  void Connect(int n) {
    channels.clear();
    for (int i = 0; i < n; ++i) {
      channels.push_back(NewChannel(address));
      channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(10));
    }
  }
  void Prepare(grpc::ClientContext& ctx) const {
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
  }
};

using Done = std::function<void(const grpc::Status&)>;
// Starts one call for `worker`, which calls `done` once; false: no more work.
using Issue = std::function<bool(int worker, Done done)>;

// Starts an async unary call through `start(ctx, req, resp, callback)`.
template <typename Req, typename Resp, typename Start>
void Unary(const Target& t, const Req& req, Start start, Done done) {
  struct State {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };
  auto* st = new State;
  st->req = req;
  t.Prepare(st->ctx);
  start(&st->ctx, &st->req, &st->resp,
        [st, done = std::move(done)](grpc::Status s) {
          // The state (its ClientContext holds a reference to the channel) goes
          // before the caller hears of the end: the last call of a figure must
          // not drop a channel on gRPC's callback thread after the figure has
          // moved on (an ASan smoke run once saw a double free in the callback
          // queue's shutdown there).
          delete st;
          done(s);
        });
}

struct Stats {
  std::string name;
  int concurrency = 0;
  int64_t ops = 0;
  int64_t errors = 0;
  double seconds = 0;
  std::string first_error;
  std::vector<int64_t> lat_ns;  // Sorted.
  // CPU time the server used per call during the figure (0: not measured).
  double server_cpu_us = 0;

  double ops_per_sec() const { return seconds > 0 ? ops / seconds : 0; }
  double PercentileUs(double q) const {
    if (lat_ns.empty()) return 0;
    size_t i =
        std::min(lat_ns.size() - 1, static_cast<size_t>(q * lat_ns.size()));
    return lat_ns[i] / 1000.0;
  }
};

// Closed loop: `concurrency` callers, each issuing its next call when the
// previous one completes, until `duration` has passed or Issue says stop.
inline Stats RunLoop(const std::string& name, int concurrency,
                     absl::Duration duration, const Issue& issue) {
  struct Worker {
    std::vector<int64_t> lat;
    int64_t errors = 0;
    std::string error;
  };
  std::vector<Worker> workers(concurrency);
  // Atomics, not a mutex: the last caller's thread may still be returning
  // when this function returns, so it must touch nothing after `finished`.
  std::atomic<int> finished{0};
  std::atomic<int64_t> last_end{0};
  const int64_t start = NowNs();
  const int64_t end = start + absl::ToInt64Nanoseconds(duration);
  std::function<void(int)> next = [&](int w) {
    const int64_t t0 = NowNs();
    bool started = t0 < end && issue(w, [&, w, t0](const grpc::Status& s) {
                     const int64_t t1 = NowNs();
                     Worker& wk = workers[w];
                     if (s.ok()) {
                       wk.lat.push_back(t1 - t0);
                     } else if (wk.errors++ == 0) {
                       wk.error = absl::StrCat(static_cast<int>(s.error_code()),
                                               ": ", s.error_message());
                     }
                     next(w);
                   });
    if (started) return;
    const int64_t now = NowNs();
    int64_t seen = last_end.load();
    while (seen < now && !last_end.compare_exchange_weak(seen, now)) {
    }
    finished.fetch_add(1);
  };
  for (int w = 0; w < concurrency; ++w) next(w);
  while (finished.load() < concurrency) absl::SleepFor(absl::Microseconds(200));
  absl::SleepFor(absl::Milliseconds(1));  // Let the last callback return.
  Stats st;
  st.name = name;
  st.concurrency = concurrency;
  st.seconds = (last_end.load() - start) / 1e9;
  for (Worker& w : workers) {
    st.lat_ns.insert(st.lat_ns.end(), w.lat.begin(), w.lat.end());
    st.errors += w.errors;
    if (st.first_error.empty()) st.first_error = w.error;
  }
  st.ops = static_cast<int64_t>(st.lat_ns.size());
  std::sort(st.lat_ns.begin(), st.lat_ns.end());
  return st;
}

inline Stats FromSamples(const std::string& name, std::vector<int64_t> lat) {
  Stats st;
  st.name = name;
  st.concurrency = 1;
  st.lat_ns = std::move(lat);
  std::sort(st.lat_ns.begin(), st.lat_ns.end());
  st.ops = static_cast<int64_t>(st.lat_ns.size());
  for (int64_t l : st.lat_ns) st.seconds += l / 1e9;
  return st;
}

// ---------------------------------------------------------------------------
// Processes under test.

inline std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// A fresh broker and a fresh baseline, each in its own temporary directory.
class Servers {
 public:
  absl::Status Start() {
    broker_ =
        std::make_unique<BrokerProcess>(dir_.path() + "/data", dir_.path());
    if (absl::Status s = broker_->Start({"--allow_self_approval"}); !s.ok())
      return s;
    Subprocess::Options o;
    const std::string sock = dir_.path() + "/echo.sock";
    o.argv = {SelfExe(), "--echo_server", sock};
    o.stderr_file = dir_.path() + "/echo.err";
    absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Spawn(o);
    if (!p.ok()) return p.status();
    echo_ = std::move(*p);
    if (!echo_->WaitForStdoutLine("ready", absl::Seconds(20))) {
      return absl::UnavailableError("the echo server did not start: " +
                                    echo_->stderr_text());
    }
    broker_target.address = broker_->address();
    broker_target.token = broker_->approver_token();
    agent_token = broker_->agent_token();
    echo_target.address = "unix:" + sock;
    echo_target.token = broker_target.token;  // Sent, not checked: same bytes.
    return absl::OkStatus();
  }
  ~Servers() {
    if (echo_ != nullptr) {
      echo_->Signal(SIGTERM);
      if (!echo_->WaitForExit(absl::Seconds(5)).ok()) echo_->Kill();
    }
    if (broker_ != nullptr && broker_->running()) {
      if (!broker_->Stop(absl::Seconds(20)).ok()) broker_->Kill();
    }
  }

  pid_t broker_pid() const { return broker_->pid(); }
  pid_t echo_pid() const { return echo_->pid(); }
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return broker_->data_dir(); }
  client::Options ClientOptions(const std::string& token) const {
    client::Options o;
    o.address = broker_->address();
    o.token = token;
    o.timeout = absl::Seconds(30);
    return o;
  }

  Target broker_target;
  Target echo_target;
  std::string agent_token;

 private:
  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Subprocess> echo_;
};

// ---------------------------------------------------------------------------
// Output.

struct Row {
  std::vector<std::string> cells;
};

class Table {
 public:
  Table(std::string title, std::vector<std::string> header)
      : title_(std::move(title)), header_(std::move(header)) {}
  void Add(std::vector<std::string> cells) {
    rows_.push_back({std::move(cells)});
  }
  void Print() const {
    std::cout << "\n### " << title_ << "\n\n| " << absl::StrJoin(header_, " | ")
              << " |\n|";
    for (size_t i = 0; i < header_.size(); ++i)
      std::cout << (i == 0 ? "---|" : "---:|");
    std::cout << "\n";
    for (const Row& r : rows_)
      std::cout << "| " << absl::StrJoin(r.cells, " | ") << " |\n";
    std::cout << std::flush;
  }

 private:
  std::string title_;
  std::vector<std::string> header_;
  std::vector<Row> rows_;
};

inline std::string Fmt(double v, int digits = 0) {
  return absl::StrFormat("%.*f", digits, v);
}
inline std::string Us(double us) {
  return us >= 10000 ? absl::StrFormat("%.1f ms", us / 1000)
                     : absl::StrFormat("%.0f µs", us);
}
inline std::string Ratio(double a, double b) {
  return b > 0 ? absl::StrFormat("%.2f×", a / b) : "-";
}

inline std::vector<std::string> LoadCells(const Stats& s,
                                          const Stats* baseline) {
  std::string errors =
      s.errors == 0 ? "0" : absl::StrCat(s.errors, " (", s.first_error, ")");
  return {
      s.name,
      absl::StrCat(s.concurrency),
      Fmt(s.ops_per_sec()),
      Us(s.PercentileUs(0.5)),
      Us(s.PercentileUs(0.99)),
      Us(s.PercentileUs(0.999)),
      baseline == nullptr ? "1.00×"
                          : Ratio(s.ops_per_sec(), baseline->ops_per_sec()),
      baseline == nullptr
          ? "1.00×"
          : Ratio(s.PercentileUs(0.5), baseline->PercentileUs(0.5)),
      s.server_cpu_us > 0 ? absl::StrFormat("%.1f µs", s.server_cpu_us) : "-",
      baseline == nullptr ? "1.00×"
                          : Ratio(s.server_cpu_us, baseline->server_cpu_us),
      errors};
}

const std::vector<std::string> kLoadHeader = {"call",
                                              "callers",
                                              "ops/s",
                                              "p50",
                                              "p99",
                                              "p99.9",
                                              "throughput vs echo",
                                              "p50 vs echo",
                                              "server CPU per call",
                                              "CPU vs echo",
                                              "errors"};

// Runs `figure` and records the CPU time server `pid` used per call.
inline Stats WithServerCpu(pid_t pid, const std::function<Stats()>& figure) {
  const double before = CpuSeconds(pid);
  Stats s = figure();
  const double after = CpuSeconds(pid);
  if (before >= 0 && after >= before && s.ops > 0) {
    s.server_cpu_us = (after - before) * 1e6 / static_cast<double>(s.ops);
  }
  return s;
}

// Measures `first`, then `second`, --repeat times, alternating, and sorts
// the pairs by `ratio` (of the second to the first): on a small shared
// machine one pair can be off by the noise of either figure.
struct AlternatingPairs {
  std::vector<std::pair<Stats, Stats>> pairs;  // By ratio, lowest first.
  std::vector<double> ratios;                  // The same order.

  std::pair<Stats, Stats>& median() { return pairs[pairs.size() / 2]; }
  // " (median of 0.81, 0.85, 0.92)" when there was more than one pair.
  std::string MedianOf() const {
    if (ratios.size() < 2) return "";
    std::vector<std::string> all;
    for (double r : ratios) all.push_back(absl::StrFormat("%.2f", r));
    return absl::StrCat(" (median of ", absl::StrJoin(all, ", "), ")");
  }
};
inline AlternatingPairs MeasurePairs(
    const std::function<Stats()>& first, const std::function<Stats()>& second,
    const std::function<double(const Stats&, const Stats&)>& ratio) {
  const int n = std::max(1, absl::GetFlag(FLAGS_repeat));
  AlternatingPairs out;
  for (int i = 0; i < n; ++i) {
    Stats a = first();
    Stats b = second();
    out.pairs.emplace_back(std::move(a), std::move(b));
  }
  std::sort(out.pairs.begin(), out.pairs.end(),
            [&](const auto& x, const auto& y) {
              return ratio(x.first, x.second) < ratio(y.first, y.second);
            });
  for (const auto& p : out.pairs)
    out.ratios.push_back(ratio(p.first, p.second));
  return out;
}

// The echo, then the broker (each with its server's CPU time per call):
// the pair whose throughput ratio is the median.
inline std::pair<Stats, Stats> MedianPair(
    const Servers& servers, const std::function<Stats()>& echo,
    const std::function<Stats()>& broker) {
  AlternatingPairs runs = MeasurePairs(
      [&] { return WithServerCpu(servers.echo_pid(), echo); },
      [&] { return WithServerCpu(servers.broker_pid(), broker); },
      [](const Stats& base, const Stats& st) {
        return base.ops_per_sec() > 0 ? st.ops_per_sec() / base.ops_per_sec()
                                      : 0;
      });
  std::pair<Stats, Stats> median = std::move(runs.median());
  median.second.name += runs.MedianOf();
  return median;
}

}  // namespace benchmark
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_BENCH_BENCH_HARNESS_H_
