#include "client/internal/channel.h"

#include "absl/strings/str_cat.h"
#include "broker/rpc/status.h"

namespace credbroker {
namespace client {
namespace internal {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Options& options) {
  std::string address =
      options.address.empty() ? DefaultAddress() : options.address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad broker address ", address));
  }
  return channel;
}

void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    absl::Duration timeout) {
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  if (timeout != absl::InfiniteDuration()) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  }
}

absl::Status FromCallStatus(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the broker: ", status.error_message(),
        " (is credbrokerd running? start it with scripts/run.sh)"));
  }
  return FromGrpcStatus(status);
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker
