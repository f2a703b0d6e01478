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
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/bench/bench_flags.h"
#include "tests/bench/bench_scenarios.h"

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
