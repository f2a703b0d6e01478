// The flags of credbroker_bench, defined in credbroker_bench.cc.
#ifndef CREDBROKER_TESTS_BENCH_BENCH_FLAGS_H_
#define CREDBROKER_TESTS_BENCH_BENCH_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, echo_server);
ABSL_DECLARE_FLAG(std::string, scenarios);
ABSL_DECLARE_FLAG(absl::Duration, duration);
ABSL_DECLARE_FLAG(std::string, calls);
ABSL_DECLARE_FLAG(std::string, concurrency);
ABSL_DECLARE_FLAG(std::string, growth_concurrency);
ABSL_DECLARE_FLAG(std::string, growth_profiles);
ABSL_DECLARE_FLAG(absl::Duration, fill_limit);
ABSL_DECLARE_FLAG(int, channels);
ABSL_DECLARE_FLAG(int, sessions);
ABSL_DECLARE_FLAG(int, watchers);
ABSL_DECLARE_FLAG(int, events);
ABSL_DECLARE_FLAG(int, round_trips);
ABSL_DECLARE_FLAG(int, repeat);
ABSL_DECLARE_FLAG(bool, smoke);

#endif  // CREDBROKER_TESTS_BENCH_BENCH_FLAGS_H_
