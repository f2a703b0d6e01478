// AuthThrottle: the failed-authentication backoff of broker/rpc/auth.h.
#include <string>

#include "absl/strings/match.h"
#include "broker/rpc/auth.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class AuthThrottleTest : public ::testing::Test {
 protected:
  AuthThrottlePolicy Policy() {
    AuthThrottlePolicy p;
    p.free_failures = 2;
    p.first_delay = absl::Seconds(1);
    p.max_delay = absl::Seconds(5);
    p.forget_after = absl::Minutes(1);
    p.max_tracked = 3;
    return p;
  }
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  AuthThrottle throttle_{[this] { return now_; }, Policy()};
};

TEST_F(AuthThrottleTest, FreeFailuresThenDoublingDelayPerCaller) {
  throttle_.RecordFailure("pid:1");
  throttle_.RecordFailure("pid:1");
  EXPECT_TRUE(throttle_.Check("pid:1").ok());
  throttle_.RecordFailure("pid:1");
  absl::Status locked = throttle_.Check("pid:1");
  EXPECT_EQ(locked.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(locked.message(), "try again in 1 s"))
      << locked;
  EXPECT_TRUE(throttle_.Check("pid:2").ok());  // Others are not affected.
  now_ += absl::Seconds(1);
  EXPECT_TRUE(throttle_.Check("pid:1").ok());
  throttle_.RecordFailure("pid:1");
  EXPECT_TRUE(absl::StrContains(throttle_.Check("pid:1").message(), "2 s"));
  now_ += absl::Seconds(2);
  throttle_.RecordFailure("pid:1");
  EXPECT_TRUE(absl::StrContains(throttle_.Check("pid:1").message(), "4 s"));
  now_ += absl::Seconds(4);
  throttle_.RecordFailure("pid:1");
  EXPECT_TRUE(
      absl::StrContains(throttle_.Check("pid:1").message(), "5 s"));  // Capped.
}

TEST_F(AuthThrottleTest, IdleUntilTheFirstBadToken) {
  EXPECT_TRUE(throttle_.Idle());
  EXPECT_TRUE(throttle_.Check("pid:1").ok());
  EXPECT_TRUE(throttle_.Idle());  // Checks track nobody.
  throttle_.RecordFailure("pid:1");
  EXPECT_FALSE(throttle_.Idle());
}

TEST_F(AuthThrottleTest, QuietCallersAreForgiven) {
  for (int i = 0; i < 3; ++i) throttle_.RecordFailure("ipv4:127.0.0.1");
  EXPECT_FALSE(throttle_.Check("ipv4:127.0.0.1").ok());
  now_ += absl::Minutes(2);
  EXPECT_TRUE(throttle_.Check("ipv4:127.0.0.1").ok());
  throttle_.RecordFailure("ipv4:127.0.0.1");  // Starts afresh: free again.
  EXPECT_TRUE(throttle_.Check("ipv4:127.0.0.1").ok());
}

TEST_F(AuthThrottleTest, TrackedCallersAreBounded) {
  for (int k = 0; k < 10; ++k) {
    throttle_.RecordFailure("pid:" + std::to_string(k));
    now_ += absl::Milliseconds(1);
  }
  // Memory stays bounded; the most recent caller is still tracked.
  for (int i = 0; i < 2; ++i) throttle_.RecordFailure("pid:9");
  EXPECT_FALSE(throttle_.Check("pid:9").ok());
}

}  // namespace
}  // namespace credbroker
