// credbroker_bench: the real credbrokerd against a baseline echo server built
// from the same gRPC stack (callback API, same server options, Unix socket
// connections accepted by the server itself and handed to gRPC with
// AddInsecureChannelFromFd, as the broker does). One run measures, for a
// fixed time per figure and alternating baseline and broker:
//   unary     ValidateCredential, GetCredential, ListCredentials (100
//             profiles), PutCredential vs Echo, at each --concurrency
//   approval  need -> approver event -> Approve -> GRANTED (scripted
//             approver), and need -> GRANTED under a standing approval
//   streams   N agent sessions each with a pending need: daemon RSS per
//             session vs the baseline's per idle stream; one event to M
//             watchers vs the baseline's broadcast to M streams
//   durable   PutCredential vs raw SQLite inserts (WAL, synchronous=FULL)
//             in the same directory
//   growth    GetCredential at --growth_concurrency, and its p99 at
//             --growth_profiles stored profiles
// Everything runs on Unix sockets in a temporary directory. The daemon runs
// with --allow_self_approval: the scripted approver and the agent share this
// process.
//
// With --echo_server=PATH the binary is instead the baseline server.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/internal/convert.h"
#include "credbroker/bench/v1/echo.grpc.pb.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "tests/integration/broker_process.h"
#include "tests/integration/subprocess.h"

ABSL_FLAG(
    std::string, echo_server, "",
    "Internal: serve the baseline echo service on this Unix socket path.");
ABSL_FLAG(std::string, scenarios, "unary,approval,streams,durable,growth",
          "Comma-separated scenarios to run.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "How long each throughput figure is measured.");
ABSL_FLAG(std::string, calls, "validate,get,list,put",
          "Comma-separated calls measured by the unary scenario.");
ABSL_FLAG(std::string, concurrency, "1,64",
          "Concurrent callers for the unary scenario.");
ABSL_FLAG(std::string, growth_concurrency, "1,10,100,1000",
          "Concurrent callers for GetCredential in the growth scenario.");
ABSL_FLAG(
    std::string, growth_profiles, "10,1000,100000",
    "Stored profile counts for GetCredential p99 in the growth scenario.");
ABSL_FLAG(absl::Duration, fill_limit, absl::Minutes(6),
          "Longest time spent filling the store for the growth scenario; the "
          "figures are then reported at the size reached.");
ABSL_FLAG(int, channels, 4,
          "Connections the callers of a unary figure share (per server).");
ABSL_FLAG(int, sessions, 10000, "Agent sessions (and idle baseline streams).");
ABSL_FLAG(int, watchers, 100, "Approval watchers (and baseline watchers).");
ABSL_FLAG(int, events, 200, "Fan-out events measured.");
ABSL_FLAG(int, round_trips, 200, "Approval round trips measured per kind.");
ABSL_FLAG(
    int, repeat, 1,
    "Measure each unary echo/broker pair this many times, alternating, and "
    "report the pair with the median throughput ratio.");
ABSL_FLAG(bool, smoke, false,
          "A run of a few seconds with tiny sizes: checks that it works.");

namespace credbroker {
namespace benchmark {
namespace {

namespace echo = ::credbroker::bench::v1;
using echo::Echo;
using echo::EchoMessage;
using testing::BrokerProcess;
using testing::RandomString;
using testing::Subprocess;
using testing::TempDir;

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

// Whether the call `name` ("GetCredential", "ListCredentials (100)") is
// in the comma-separated `calls` ("get,list").
bool Wanted(absl::string_view calls, absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view c :
       absl::StrSplit(calls, ',', absl::SkipWhitespace())) {
    if (absl::StartsWith(lower, c)) return true;
  }
  return false;
}

std::vector<int> ParseInts(const std::string& csv) {
  std::vector<int> out;
  for (absl::string_view s : absl::StrSplit(csv, ',', absl::SkipWhitespace())) {
    int v = 0;
    if (absl::SimpleAtoi(s, &v) && v > 0) out.push_back(v);
  }
  return out;
}

// CPU time (user + system, all threads) `pid` has used, in seconds; -1
// when it cannot be read.
double CpuSeconds(pid_t pid) {
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
int64_t RssKb(pid_t pid) {
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
// The baseline server.

class EchoService final : public Echo::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const EchoMessage* req,
                                 EchoMessage* resp) override {
    if (req->reply_bytes() > 0) {
      resp->set_seq(req->seq());
      resp->mutable_payload()->assign(std::min(req->reply_bytes(), 4 << 20),
                                      'x');
    } else {
      *resp = *req;
    }
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerWriteReactor<EchoMessage>* Watch(
      grpc::CallbackServerContext* ctx,
      const echo::WatchRequest* req) override {
    return new Stream(this, req->idle());
  }

  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* ctx,
                                      const EchoMessage* req,
                                      echo::BroadcastResponse* resp) override {
    absl::MutexLock lock(&mu_);
    for (Stream* s : live_) s->Send(*req);
    resp->set_watchers(static_cast<int>(live_.size()));
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  // A server stream with a small queue: one write in flight at a time.
  class Stream : public grpc::ServerWriteReactor<EchoMessage> {
   public:
    Stream(EchoService* service, bool idle) : service_(service), idle_(idle) {
      if (!idle_) {
        absl::MutexLock lock(&service_->mu_);
        service_->live_.insert(this);
      }
      EchoMessage hello;
      hello.set_seq(-1);
      Send(hello);
    }
    void Send(const EchoMessage& m) {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      queue_.push_back(m);
      if (!writing_) {
        writing_ = true;
        StartWrite(&queue_.front());
      }
    }
    void OnWriteDone(bool ok) override {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (ok && !finished_ && !queue_.empty()) {
        StartWrite(&queue_.front());
      } else {
        writing_ = false;
      }
    }
    void OnCancel() override {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override {
      if (!idle_) {
        absl::MutexLock lock(&service_->mu_);
        service_->live_.erase(this);
      }
      delete this;
    }

   private:
    EchoService* service_;
    bool idle_;
    absl::Mutex mu_;
    std::deque<EchoMessage> queue_ ABSL_GUARDED_BY(mu_);
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
  };

  absl::Mutex mu_;
  std::set<Stream*> live_ ABSL_GUARDED_BY(mu_);
};

int ServeEcho(const std::string& path) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  unlink(path.c_str());
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (lfd < 0 ||
      bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(lfd, 128) != 0) {
    std::cerr << "echo: cannot listen on " << path << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  // The broker's server options.
  grpc::EnableDefaultHealthCheckService(true);
  EchoService service;
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) return 1;
  // Accepts as the broker does (without its SO_PEERCRED and /proc reads,
  // which cost once per connection, not per call).
  std::thread acceptor([&] {
    pollfd fds[2] = {{lfd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    while (true) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      while (true) {
        int conn = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) break;
        grpc::AddInsecureChannelFromFd(server.get(), conn);
      }
    }
  });
  std::cout << "ready" << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  (void)!write(wake[1], "x", 1);
  acceptor.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  close(lfd);
  unlink(path.c_str());
  return 0;
}

// ---------------------------------------------------------------------------
// Clients.

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
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
Stats RunLoop(const std::string& name, int concurrency, absl::Duration duration,
              const Issue& issue) {
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

Stats FromSamples(const std::string& name, std::vector<int64_t> lat) {
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

std::string SelfExe() {
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

std::string Fmt(double v, int digits = 0) {
  return absl::StrFormat("%.*f", digits, v);
}
std::string Us(double us) {
  return us >= 10000 ? absl::StrFormat("%.1f ms", us / 1000)
                     : absl::StrFormat("%.0f µs", us);
}
std::string Ratio(double a, double b) {
  return b > 0 ? absl::StrFormat("%.2f×", a / b) : "-";
}

std::vector<std::string> LoadCells(const Stats& s, const Stats* baseline) {
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
Stats WithServerCpu(pid_t pid, const std::function<Stats()>& figure) {
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
AlternatingPairs MeasurePairs(
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
std::pair<Stats, Stats> MedianPair(const Servers& servers,
                                   const std::function<Stats()>& echo,
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

// ---------------------------------------------------------------------------
// Broker calls.

std::string AwsKeyId() {
  return "AKIA" + RandomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
}

v1::PutCredentialRequest AwsPut(const std::string& profile) {
  v1::PutCredentialRequest r;
  r.set_provider("aws");
  r.set_profile(profile);
  (*r.mutable_values())["access_key_id"] = AwsKeyId();
  (*r.mutable_values())["secret_access_key"] = RandomString(40);
  return r;
}

class BrokerCalls {
 public:
  explicit BrokerCalls(const Target& t) : t_(t) {
    for (const auto& ch : t.channels)
      stubs_.push_back(v1::CredentialService::NewStub(ch));
  }
  v1::CredentialService::Stub* stub(int w) {
    return stubs_[w % stubs_.size()].get();
  }

  void Put(int w, const v1::PutCredentialRequest& req, Done done) {
    auto* s = stub(w);
    Unary<v1::PutCredentialRequest, v1::PutCredentialResponse>(
        t_, req,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->PutCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  static v1::GetCredentialRequest GetRequest(const std::string& profile) {
    v1::GetCredentialRequest req;
    req.set_provider("aws");
    req.set_profile(profile);
    return req;
  }
  static v1::ValidateCredentialRequest ValidateRequest(
      const std::string& profile) {
    v1::ValidateCredentialRequest req;
    req.set_provider("aws");
    req.set_profile(profile);
    return req;
  }
  static v1::ListCredentialsRequest ListRequest() {
    v1::ListCredentialsRequest req;
    req.set_provider("aws");
    req.set_page_size(100);
    return req;
  }

  void Get(int w, const std::string& profile, Done done) {
    auto* s = stub(w);
    Unary<v1::GetCredentialRequest, v1::CredentialSummary>(
        t_, GetRequest(profile),
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->GetCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  void Validate(int w, const std::string& profile, Done done) {
    auto* s = stub(w);
    Unary<v1::ValidateCredentialRequest, v1::ValidateCredentialResponse>(
        t_, ValidateRequest(profile),
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->ValidateCredential(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  void List(int w, Done done) {
    const v1::ListCredentialsRequest req = ListRequest();
    auto* s = stub(w);
    Unary<v1::ListCredentialsRequest, v1::ListCredentialsResponse>(
        t_, req,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->ListCredentials(c, q, r, std::move(cb));
        },
        std::move(done));
  }

  // Stores profiles [from, to) with `concurrency` parallel PutCredential
  // calls, within `limit`. Returns the count stored.
  int64_t Fill(const std::string& prefix, int64_t from, int64_t to,
               int concurrency, absl::Duration limit, Stats* stats) {
    std::atomic<int64_t> next{from};
    *stats = RunLoop("PutCredential (fill)", concurrency, limit,
                     [&](int w, Done done) {
                       int64_t i = next.fetch_add(1);
                       if (i >= to) return false;
                       Put(w, AwsPut(absl::StrCat(prefix, i)), std::move(done));
                       return true;
                     });
    return from + stats->ops;
  }

 private:
  const Target& t_;
  std::vector<std::unique_ptr<v1::CredentialService::Stub>> stubs_;
};

// The serialized sizes of one broker call's request and response: the echo
// it is compared with carries as many bytes each way.
struct WireSizes {
  size_t request = 0;
  size_t response = 0;
};
template <typename Req, typename Resp, typename Call>
absl::StatusOr<WireSizes> SizesOf(const Target& t, const Req& req, Call call) {
  grpc::ClientContext ctx;
  t.Prepare(ctx);
  Resp resp;
  grpc::Status s = call(&ctx, req, &resp);
  if (!s.ok())
    return absl::InternalError("measuring a call's size: " + s.error_message());
  return WireSizes{req.ByteSizeLong(), resp.ByteSizeLong()};
}

// Stores aws/default (the profile needs use).
absl::Status PutDefault(BrokerCalls& calls) {
  absl::Notification put;
  grpc::Status status;
  calls.Put(0, AwsPut("default"), [&](const grpc::Status& s) {
    status = s;
    put.Notify();
  });
  put.WaitForNotification();
  return status.ok()
             ? absl::OkStatus()
             : absl::InternalError("PutCredential: " + status.error_message());
}

class EchoCalls {
 public:
  explicit EchoCalls(const Target& t) : t_(t) {
    for (const auto& ch : t.channels) stubs_.push_back(Echo::NewStub(ch));
    msg_.set_payload(std::string(64, 'x'));
  }
  // Requests of `sizes.request` bytes answered with `sizes.response` bytes.
  void MatchSizes(const WireSizes& sizes) {
    msg_.set_payload(std::string(sizes.request, 'x'));
    msg_.set_reply_bytes(static_cast<int32_t>(sizes.response));
    // The message's own framing: payload and reply_bytes tags.
    const size_t extra = msg_.ByteSizeLong() - sizes.request;
    msg_.set_payload(
        std::string(sizes.request > extra ? sizes.request - extra : 0, 'x'));
  }
  void Call(int w, Done done) {
    auto* s = stubs_[w % stubs_.size()].get();
    Unary<EchoMessage, EchoMessage>(
        t_, msg_,
        [s](auto* c, auto* q, auto* r, auto cb) {
          s->async()->Echo(c, q, r, std::move(cb));
        },
        std::move(done));
  }
  Stats Run(int concurrency, absl::Duration d) {
    return RunLoop("Echo (baseline)", concurrency, d, [this](int w, Done done) {
      Call(w, std::move(done));
      return true;
    });
  }

 private:
  const Target& t_;
  EchoMessage msg_;
  std::vector<std::unique_ptr<Echo::Stub>> stubs_;
};

int Channels(int concurrency) {
  return std::max(1, std::min(concurrency, absl::GetFlag(FLAGS_channels)));
}

// ---------------------------------------------------------------------------
// Scenarios.

absl::Status UnaryScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table table(
      "Unary calls vs the echo baseline (each broker row against the echo row "
      "above it)",
      kLoadHeader);
  {
    servers.broker_target.Connect(1);
    BrokerCalls broker(servers.broker_target);
    Stats fill;
    if (broker.Fill("p", 0, 100, 8, absl::Minutes(2), &fill) < 100) {
      return absl::InternalError("could not store 100 profiles: " +
                                 fill.first_error);
    }
  }
  for (int c : ParseInts(absl::GetFlag(FLAGS_concurrency))) {
    servers.broker_target.Connect(Channels(c));
    servers.echo_target.Connect(Channels(c));
    BrokerCalls broker(servers.broker_target);
    EchoCalls echo(servers.echo_target);
    auto run = [&](const std::string& name,
                   const absl::StatusOr<WireSizes>& sizes,
                   const Issue& issue) -> absl::Status {
      if (!Wanted(absl::GetFlag(FLAGS_calls), name)) return absl::OkStatus();
      if (!sizes.ok()) return sizes.status();
      echo.MatchSizes(*sizes);
      auto [base, st] = MedianPair(
          servers, [&] { return echo.Run(c, d); },
          [&] { return RunLoop(name, c, d, issue); });
      base.name = absl::StrCat("Echo (baseline, ", sizes->request, " B → ",
                               sizes->response, " B)");
      table.Add(LoadCells(base, nullptr));
      table.Add(LoadCells(st, &base));
      return absl::OkStatus();
    };
    auto* stub = broker.stub(0);
    std::atomic<uint64_t> n{0};
    if (absl::Status s = run(
            "ValidateCredential",
            SizesOf<v1::ValidateCredentialRequest,
                    v1::ValidateCredentialResponse>(
                servers.broker_target, BrokerCalls::ValidateRequest("p0"),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->ValidateCredential(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.Validate(w, absl::StrCat("p", n++ % 100), std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            run("GetCredential",
                SizesOf<v1::GetCredentialRequest, v1::CredentialSummary>(
                    servers.broker_target, BrokerCalls::GetRequest("p0"),
                    [&](auto* ctx, const auto& q, auto* r) {
                      return stub->GetCredential(ctx, q, r);
                    }),
                [&](int w, Done done) {
                  broker.Get(w, absl::StrCat("p", n++ % 100), std::move(done));
                  return true;
                });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = run(
            "ListCredentials (100)",
            SizesOf<v1::ListCredentialsRequest, v1::ListCredentialsResponse>(
                servers.broker_target, BrokerCalls::ListRequest(),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->ListCredentials(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.List(w, std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = run(
            "PutCredential",
            SizesOf<v1::PutCredentialRequest, v1::PutCredentialResponse>(
                servers.broker_target, AwsPut("put-size"),
                [&](auto* ctx, const auto& q, auto* r) {
                  return stub->PutCredential(ctx, q, r);
                }),
            [&](int w, Done done) {
              broker.Put(w, AwsPut(absl::StrCat("put", w)), std::move(done));
              return true;
            });
        !s.ok()) {
      return s;
    }
  }
  table.Print();
  return absl::OkStatus();
}

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

client::CredentialNeeded Need(const std::string& id,
                              const std::string& action) {
  client::CredentialNeeded n;
  n.need_id = id;
  n.provider = "aws";
  n.action = action;
  n.context["region"] = "us-east-1";
  return n;
}

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

absl::Status DurableScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table table(
      "Durable writes: PutCredential vs raw SQLite inserts (WAL, "
      "synchronous=FULL, one "
      "transaction per row, same directory)",
      {"writer", "callers", "rows/s", "p50", "p99", "Put vs SQLite"});
  // Raw SQLite: a row shaped like a stored credential version.
  const std::string db_path = servers.data_dir() + "/raw-bench.db";
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    return absl::InternalError("sqlite3_open failed");
  }
  auto exec = [&](const char* sql) {
    return sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  };
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, provider TEXT, profile TEXT, "
      "version INTEGER, "
      "nonce BLOB, ciphertext BLOB, created_at INTEGER)");
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO t (provider, profile, version, nonce, "
                     "ciphertext, created_at) "
                     "VALUES ('aws', ?1, ?2, ?3, ?4, ?5)",
                     -1, &stmt, nullptr);
  std::vector<int64_t> lat;
  const std::string nonce = RandomString(24), blob = RandomString(160);
  const int64_t start = NowNs(), end = start + absl::ToInt64Nanoseconds(d);
  for (int64_t i = 0; NowNs() < end; ++i) {
    const int64_t t0 = NowNs();
    const std::string profile = absl::StrCat("p", i);
    sqlite3_bind_text(stmt, 1, profile.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, i);
    sqlite3_bind_blob(stmt, 3, nonce.data(), static_cast<int>(nonce.size()),
                      SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 4, blob.data(), static_cast<int>(blob.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, t0);
    if (sqlite3_step(stmt) != SQLITE_DONE)
      return absl::InternalError(sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    lat.push_back(NowNs() - t0);
  }
  const double raw_secs = (NowNs() - start) / 1e9;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  Stats raw = FromSamples("", lat);
  const double raw_rate = raw.ops / raw_secs;
  table.Add({"raw SQLite INSERT", "1", Fmt(raw_rate), Us(raw.PercentileUs(0.5)),
             Us(raw.PercentileUs(0.99)), "-"});
  for (int c : {1, 16}) {
    servers.broker_target.Connect(Channels(c));
    BrokerCalls broker(servers.broker_target);
    Stats put = RunLoop("PutCredential", c, d, [&](int w, Done done) {
      broker.Put(w, AwsPut(absl::StrCat("d", w)), std::move(done));
      return true;
    });
    table.Add(
        {put.errors == 0 ? "PutCredential"
                         : "PutCredential (errors: " + put.first_error + ")",
         absl::StrCat(c), Fmt(put.ops_per_sec()), Us(put.PercentileUs(0.5)),
         Us(put.PercentileUs(0.99)), Ratio(put.ops_per_sec(), raw_rate)});
  }
  table.Print();
  return absl::OkStatus();
}

absl::Status GrowthScenario() {
  Servers servers;
  if (absl::Status s = servers.Start(); !s.ok()) return s;
  const absl::Duration d = absl::GetFlag(FLAGS_duration);
  Table conc("Growth: GetCredential by concurrency (100 stored profiles)",
             kLoadHeader);
  servers.broker_target.Connect(absl::GetFlag(FLAGS_channels));
  servers.echo_target.Connect(absl::GetFlag(FLAGS_channels));
  BrokerCalls broker(servers.broker_target);
  EchoCalls echo(servers.echo_target);
  Stats fill;
  int64_t stored = broker.Fill("g", 0, 100, 16, absl::Minutes(2), &fill);
  auto* stub = broker.stub(0);
  absl::StatusOr<WireSizes> sizes =
      SizesOf<v1::GetCredentialRequest, v1::CredentialSummary>(
          servers.broker_target, BrokerCalls::GetRequest("g0"),
          [&](auto* ctx, const auto& q, auto* r) {
            return stub->GetCredential(ctx, q, r);
          });
  if (!sizes.ok()) return sizes.status();
  echo.MatchSizes(*sizes);
  for (int c : ParseInts(absl::GetFlag(FLAGS_growth_concurrency))) {
    std::atomic<uint64_t> n{0};
    auto [base, st] = MedianPair(
        servers, [&] { return echo.Run(c, d); },
        [&] {
          return RunLoop("GetCredential", c, d, [&](int w, Done done) {
            broker.Get(w, absl::StrCat("g", n++ % stored), std::move(done));
            return true;
          });
        });
    base.name = absl::StrCat("Echo (baseline, ", sizes->request, " B → ",
                             sizes->response, " B)");
    conc.Add(LoadCells(base, nullptr));
    conc.Add(LoadCells(st, &base));
  }
  conc.Print();

  // The smallest store lives in a daemon of its own, and every larger
  // store's figure alternates with a figure of it, windows of equal length
  // back to back: the ratio compares two figures taken under the same load,
  // not one taken tens of seconds (a fill) after the other.
  std::vector<int> counts = ParseInts(absl::GetFlag(FLAGS_growth_profiles));
  std::sort(counts.begin(), counts.end());
  if (counts.empty()) return absl::OkStatus();
  const int smallest = counts.front();
  Table size(absl::StrCat("Growth: GetCredential (1 caller, random profile) by "
                          "stored profiles; "
                          "each larger store alternates with a ",
                          smallest, "-profile daemon"),
             {"stored profiles", "fill rate (Put/s, 32 callers)", "ops/s",
              "p50", "p99", "p99.9", "server CPU per call",
              "p99 vs " + absl::StrCat(smallest) + " profiles"});
  BrokerProcess reference(servers.dir() + "/reference", servers.dir());
  if (absl::Status s = reference.Start({"--allow_self_approval"}); !s.ok())
    return s;
  Target reference_target{reference.address(), reference.approver_token(), {}};
  reference_target.Connect(1);
  BrokerCalls reference_calls(reference_target);
  Stats reference_fill;
  if (reference_calls.Fill("g", 0, smallest, 4, absl::Minutes(1),
                           &reference_fill) < smallest) {
    return absl::InternalError("filling the reference store failed: " +
                               reference_fill.first_error);
  }
  // One caller reading a random profile of `count` for the figure's length.
  auto random_reads = [&](BrokerCalls& calls, pid_t pid, int64_t count) {
    std::atomic<uint64_t> rng{88172645463325252ull};
    return WithServerCpu(pid, [&] {
      return RunLoop("GetCredential", 1, d, [&](int w, Done done) {
        uint64_t x = rng.load();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.store(x);
        calls.Get(w, absl::StrCat("g", x % count), std::move(done));
        return true;
      });
    });
  };
  auto cells = [](const std::string& name, const std::string& rate,
                  const Stats& st, const std::string& ratio) {
    return std::vector<std::string>{
        name,
        rate,
        Fmt(st.ops_per_sec()),
        Us(st.PercentileUs(0.5)),
        Us(st.PercentileUs(0.99)),
        Us(st.PercentileUs(0.999)),
        absl::StrFormat("%.1f µs", st.server_cpu_us),
        ratio};
  };
  std::vector<Stats> reference_figures;
  std::vector<std::vector<std::string>> rows;
  absl::Duration fill_left = absl::GetFlag(FLAGS_fill_limit);
  for (int target : counts) {
    if (target == smallest) continue;
    std::string rate = "-";
    if (stored < target && fill_left > absl::ZeroDuration()) {
      const absl::Time t0 = absl::Now();
      stored = broker.Fill("g", stored, target, 32, fill_left, &fill);
      fill_left -= absl::Now() - t0;
      rate = Fmt(fill.ops_per_sec());
    }
    const int64_t have = std::min<int64_t>(stored, target);
    AlternatingPairs runs = MeasurePairs(
        [&] {
          return random_reads(reference_calls, reference.pid(), smallest);
        },
        [&] { return random_reads(broker, servers.broker_pid(), have); },
        [](const Stats& reference_figure, const Stats& st) {
          return reference_figure.PercentileUs(0.99) > 0
                     ? st.PercentileUs(0.99) /
                           reference_figure.PercentileUs(0.99)
                     : 0;
        });
    const std::pair<Stats, Stats>& median = runs.median();
    const std::string ratio_cell = Ratio(median.second.PercentileUs(0.99),
                                         median.first.PercentileUs(0.99)) +
                                   runs.MedianOf();
    rows.push_back(cells(have == target
                             ? absl::StrCat(have)
                             : absl::StrCat(have, " (fill limit reached)"),
                         rate, median.second, ratio_cell));
    for (auto& r : runs.pairs) reference_figures.push_back(std::move(r.first));
  }
  if (reference_figures.empty())
    reference_figures.push_back(
        random_reads(reference_calls, reference.pid(), smallest));
  std::sort(reference_figures.begin(), reference_figures.end(),
            [](const Stats& a, const Stats& b) {
              return a.PercentileUs(0.99) < b.PercentileUs(0.99);
            });
  size.Add(cells(
      absl::StrCat(smallest, " (its own daemon",
                   reference_figures.size() > 1
                       ? absl::StrCat("; median p99 of ",
                                      reference_figures.size(), " figures")
                       : "",
                   ")"),
      "-", reference_figures[reference_figures.size() / 2], "1.00×"));
  for (auto& r : rows) size.Add(std::move(r));
  if (!reference.Stop(absl::Seconds(20)).ok()) reference.Kill();
  size.Print();
  return absl::OkStatus();
}

void PrintMachine() {
  std::string model;
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (model.empty() && std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0)
      model = line.substr(line.find(':') + 2);
  }
  std::string mem;
  std::ifstream meminfo("/proc/meminfo");
  std::getline(meminfo, mem);
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::cout << "credbroker_bench: " << std::thread::hardware_concurrency()
            << " CPUs (" << model << "), "
            << absl::StripAsciiWhitespace(mem.substr(9))
            << " memory, load average "
            << absl::StrFormat("%.2f %.2f %.2f", load[0], load[1], load[2])
            << "\n"
            << "per figure: "
            << absl::FormatDuration(absl::GetFlag(FLAGS_duration))
            << (absl::GetFlag(FLAGS_smoke) ? " (smoke run)" : "") << std::endl;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // As in an optimized credbrokerd: Debian's Abseil keeps a lock-order graph
  // on every Mutex acquisition unless told not to. Off for the echo server
  // (the baseline runs the same runtime as the daemon) and for the callers.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  if (!absl::GetFlag(FLAGS_echo_server).empty())
    return ServeEcho(absl::GetFlag(FLAGS_echo_server));
  signal(SIGPIPE, SIG_IGN);
  if (absl::GetFlag(FLAGS_smoke)) {
    absl::SetFlag(&FLAGS_duration, absl::Milliseconds(60));
    absl::SetFlag(&FLAGS_concurrency, "2");
    absl::SetFlag(&FLAGS_growth_concurrency, "1,4");
    absl::SetFlag(&FLAGS_growth_profiles, "10,40");
    absl::SetFlag(&FLAGS_sessions, 20);
    absl::SetFlag(&FLAGS_watchers, 3);
    absl::SetFlag(&FLAGS_events, 5);
    absl::SetFlag(&FLAGS_round_trips, 5);
  }
  PrintMachine();
  const std::map<std::string, std::function<absl::Status()>> all = {
      {"unary", UnaryScenario},
      {"approval", ApprovalScenario},
      {"streams", StreamsScenario},
      {"durable", DurableScenario},
      {"growth", GrowthScenario}};
  int failures = 0;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_scenarios),
                                               ',', absl::SkipWhitespace())) {
    auto it = all.find(std::string(name));
    if (it == all.end()) {
      std::cerr << "credbroker_bench: unknown scenario " << name << "\n";
      return 2;
    }
    const absl::Time t0 = absl::Now();
    absl::Status s = it->second();
    std::cout << "\n(" << name << ": "
              << absl::FormatDuration(
                     absl::Trunc(absl::Now() - t0, absl::Milliseconds(100)))
              << ")\n";
    if (!s.ok()) {
      std::cerr << "credbroker_bench: " << name << " failed: " << s << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace benchmark
}  // namespace credbroker

int main(int argc, char** argv) {
  return credbroker::benchmark::Main(argc, argv);
}
