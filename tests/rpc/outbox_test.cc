#include "broker/rpc/outbox.h"

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace credbroker {
namespace {

// Drives an Outbox<std::string> with a fake reactor: writes complete only
// when the test says so, as with a client that stops reading.
struct FakeStream {
  FakeStream(size_t bound)
      : box(bound, [this](const std::string* m) { in_flight.push_back(*m); },
            [this](const grpc::Status& s) { finished = s; }) {}
  // Completes the write in flight.
  void Ack() { box.OnWriteDone(true); }
  Outbox<std::string> box;
  std::vector<std::string> in_flight;
  std::optional<grpc::Status> finished;
};

TEST(OutboxTest, WritesOneAtATimeInOrder) {
  FakeStream s(8);
  s.box.Push("a");
  s.box.Push("b");
  ASSERT_EQ(s.in_flight, std::vector<std::string>{"a"});
  s.Ack();
  ASSERT_EQ(s.in_flight, (std::vector<std::string>{"a", "b"}));
  s.Ack();
  EXPECT_FALSE(s.finished.has_value());
}

TEST(OutboxTest, AReaderThatFallsBehindIsEndedWithResourceExhausted) {
  FakeStream s(4);
  // One in flight plus four queued fit; the next overflows.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.box.Push(std::to_string(i)));
  EXPECT_FALSE(s.box.Push("overflow"));
  EXPECT_FALSE(s.finished.has_value());  // The write in flight finishes first.
  s.Ack();
  ASSERT_TRUE(s.finished.has_value());
  EXPECT_EQ(s.finished->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(s.box.Push("late"));
}

TEST(OutboxTest, ASnapshotLargerThanTheBoundIsNotAnOverflow) {
  FakeStream s(4);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(s.box.Push("snap", /*bounded=*/false));
  // Live events still have the whole bound to themselves.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(s.box.Push("live"));
  EXPECT_FALSE(s.box.Push("one too many"));
}

TEST(OutboxTest, CloseAfterDrainWritesWhatIsQueuedFirst) {
  FakeStream s(8);
  s.box.Push("a");
  s.box.Push("b");
  s.box.CloseAfterDrain(grpc::Status::OK);
  EXPECT_FALSE(s.box.Push("c"));
  s.Ack();
  EXPECT_FALSE(s.finished.has_value());
  s.Ack();
  ASSERT_TRUE(s.finished.has_value());
  EXPECT_TRUE(s.finished->ok());
  EXPECT_EQ(s.in_flight, (std::vector<std::string>{"a", "b"}));
}

TEST(OutboxTest, NothingIsCalledAfterDone) {
  FakeStream s(8);
  s.box.OnDone();
  EXPECT_FALSE(s.box.Push("a"));
  s.box.CloseNow(grpc::Status::OK);
  EXPECT_TRUE(s.in_flight.empty());
  EXPECT_FALSE(s.finished.has_value());
}

}  // namespace
}  // namespace credbroker
