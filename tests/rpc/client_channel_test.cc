#include <memory>

#include "client/internal/channel.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

std::weak_ptr<grpc::Channel> MakeAndDrop() {
  Options options;
  options.address = "unix:/nonexistent/credbroker/broker.sock";
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  EXPECT_TRUE(channel.ok()) << channel.status();
  if (!channel.ok()) return {};
  return *channel;
}

TEST(ClientChannelTest, ChannelsMadeAfterKeepUntilExitOutliveTheirClients) {
  // Until the switch, the last reference drops the channel.
  std::weak_ptr<grpc::Channel> before = MakeAndDrop();
  EXPECT_TRUE(before.expired());

  KeepChannelsUntilExit();
  std::weak_ptr<grpc::Channel> after = MakeAndDrop();
  EXPECT_FALSE(after.expired());
  // A channel made before the switch is not taken in afterwards.
  EXPECT_TRUE(before.expired());
}

}  // namespace
}  // namespace internal
}  // namespace client
}  // namespace credbroker
