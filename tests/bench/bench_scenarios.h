// The scenarios of credbroker_bench, one function each (see
// credbroker_bench.cc for what each measures), and the baseline server.
#ifndef CREDBROKER_TESTS_BENCH_BENCH_SCENARIOS_H_
#define CREDBROKER_TESTS_BENCH_BENCH_SCENARIOS_H_

#include <string>

#include "absl/status/status.h"

namespace credbroker {
namespace benchmark {

// Each prints its tables; an error ends that scenario only.
absl::Status UnaryScenario();
absl::Status ApprovalScenario();
absl::Status StreamsScenario();
absl::Status DurableScenario();
absl::Status GrowthScenario();

// Serves the baseline echo service on the Unix socket `path`; the exit code.
int ServeEcho(const std::string& path);

}  // namespace benchmark
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_BENCH_BENCH_SCENARIOS_H_
