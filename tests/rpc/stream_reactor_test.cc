#include "broker/rpc/stream_reactor.h"

#include <optional>

#include "gtest/gtest.h"

namespace credbroker {
namespace {

grpc::Status Ended() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "ended (test)");
}

TEST(FinishGateTest, WithNothingHeldTheFinishGoesThroughOnce) {
  FinishGate gate;
  EXPECT_TRUE(gate.RequestFinish(Ended()));
  EXPECT_FALSE(gate.RequestFinish(Ended()));
  // No work starts on a finished stream.
  EXPECT_FALSE(gate.Hold());
}

TEST(FinishGateTest, AFinishWaitsForTheLastHoldAndComesBackOnce) {
  FinishGate gate;
  ASSERT_TRUE(gate.Hold());  // An executor task.
  ASSERT_TRUE(gate.Hold());  // A StartRead being issued.
  EXPECT_FALSE(gate.RequestFinish(Ended()));
  EXPECT_FALSE(gate.RequestFinish(grpc::Status::OK));  // The first one wins.
  EXPECT_FALSE(gate.Release().has_value());
  std::optional<grpc::Status> deferred = gate.Release();
  ASSERT_TRUE(deferred.has_value());
  EXPECT_EQ(deferred->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(gate.Hold());
  EXPECT_FALSE(gate.RequestFinish(Ended()));
}

TEST(FinishGateTest, HoldsReleasedWithoutAFinishLeaveTheStreamOpen) {
  FinishGate gate;
  ASSERT_TRUE(gate.Hold());
  EXPECT_FALSE(gate.Release().has_value());
  ASSERT_TRUE(gate.Hold());
  EXPECT_FALSE(gate.Release().has_value());
  EXPECT_TRUE(gate.RequestFinish(grpc::Status::OK));
}

}  // namespace
}  // namespace credbroker
