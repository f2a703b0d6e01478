#include "broker/rpc/outbox.h"

#include <optional>
#include <string>
#include <vector>

#include "broker/rpc/wire.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

// Drives an Outbox<std::string> with a fake reactor: writes complete only
// when the test says so, as with a client that stops reading.
struct FakeStream {
  FakeStream(size_t bound)
      : box(
            bound, [this](const std::string* m) { in_flight.push_back(*m); },
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
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(s.box.Push("snap", /*bounded=*/false));
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

// A NeedUpdate with a grant value, as the Session reactor queues it.
grpc::ByteBuffer GrantBytes() {
  v1::NeedUpdate update;
  update.set_need_id("n1");
  (*update.mutable_grant()->mutable_values())["secret_access_key"] =
      "s3cr3t-value";
  return SerializeWiped(update);
}

// The stream holds no reference to a buffer after its write completes (the
// fake, like gRPC, reads the buffer only during the write).
struct FakeByteStream {
  FakeByteStream()
      : box(
            8,
            [this](const grpc::ByteBuffer* m) {
              writes.push_back(m->Length());
            },
            [this](const grpc::Status& s) { finished = s; }) {}
  Outbox<grpc::ByteBuffer> box;
  std::vector<size_t> writes;
  std::optional<grpc::Status> finished;
};

TEST(OutboxTest, AGrantIsWipedAsSoonAsItsWriteCompletes) {
  const size_t before = LiveWipedBytes();
  FakeByteStream s;
  s.box.Push(GrantBytes());
  s.box.Push(GrantBytes());
  ASSERT_EQ(s.writes.size(), 1u);
  EXPECT_EQ(LiveWipedBytes(), before + 2 * s.writes[0]);
  s.box.OnWriteDone(true);
  ASSERT_EQ(s.writes.size(), 2u);
  EXPECT_EQ(LiveWipedBytes(), before + s.writes[1]);
  s.box.OnWriteDone(true);
  EXPECT_EQ(LiveWipedBytes(), before);
}

TEST(OutboxTest, QueuedGrantsAreWipedWhenTheStreamIsCancelled) {
  const size_t before = LiveWipedBytes();
  FakeByteStream s;
  for (int i = 0; i < 3; ++i) s.box.Push(GrantBytes());
  s.box.CloseNow(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  // Only the message in flight is left; gRPC then fails its write.
  EXPECT_EQ(LiveWipedBytes(), before + s.writes[0]);
  s.box.OnWriteDone(false);
  EXPECT_EQ(LiveWipedBytes(), before);
  ASSERT_TRUE(s.finished.has_value());
  EXPECT_EQ(s.finished->error_code(), grpc::StatusCode::CANCELLED);
  s.box.OnDone();
  EXPECT_EQ(LiveWipedBytes(), before);
}

TEST(OutboxTest, TypedMessagesAreWipedWhenWrittenOrDropped) {
  std::vector<std::string> wiped;
  const v1::NeedUpdate* in_flight = nullptr;
  Outbox<v1::NeedUpdate> box(
      8, [&](const v1::NeedUpdate* m) { in_flight = m; },
      [](const grpc::Status&) {},
      [&](v1::NeedUpdate& m) {
        wiped.push_back(m.need_id());
        WipeGrantValues(m);
      });
  for (const char* id : {"a", "b", "c"}) {
    v1::NeedUpdate m;
    m.set_need_id(id);
    (*m.mutable_grant()->mutable_values())["token"] = "s3cr3t";
    box.Push(std::move(m));
  }
  ASSERT_NE(in_flight, nullptr);
  box.OnWriteDone(true);
  EXPECT_EQ(wiped, std::vector<std::string>{"a"});
  box.OnDone();  // The client went away: "b" in flight, "c" queued.
  EXPECT_EQ(wiped, (std::vector<std::string>{"a", "c", "b"}));
}

}  // namespace
}  // namespace credbroker
