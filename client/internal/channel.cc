#include "client/internal/channel.h"

#include <atomic>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/const_init.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace credbroker {
namespace client {
namespace internal {

namespace {

std::atomic<bool> keep_channels{false};
ABSL_CONST_INIT absl::Mutex kept_mu(absl::kConstInit);
// Never freed: what it holds is meant to live until the process ends.
std::vector<std::shared_ptr<grpc::Channel>>* kept_channels
    ABSL_GUARDED_BY(kept_mu) = nullptr;

void Keep(std::shared_ptr<grpc::Channel> channel) {
  absl::MutexLock lock(&kept_mu);
  if (kept_channels == nullptr) {
    kept_channels = new std::vector<std::shared_ptr<grpc::Channel>>;
  }
  kept_channels->push_back(std::move(channel));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Options& options) {
  std::string address =
      options.address.empty() ? DefaultAddress() : options.address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  // The broker is local and restarts its listeners at an unlock or a lock:
  // retry a refused connection within a second, not gRPC's up to 2 min.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (!absl::StartsWith(address, "unix:") && !options.insecure_plaintext) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        TlsChannelCredentials(options);
    if (!tls.ok()) return tls.status();
    creds = std::move(*tls);
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(address, creds, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad broker address ", address));
  }
  if (keep_channels.load(std::memory_order_relaxed)) Keep(channel);
  return channel;
}

void KeepChannelsUntilExit() {
  keep_channels.store(true, std::memory_order_relaxed);
}

void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    absl::Duration timeout) {
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  if (timeout != absl::InfiniteDuration()) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  }
}

absl::Status FromCallStatus(const grpc::Status& status,
                            grpc::ChannelInterface* channel) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (channel == nullptr || channel->GetState(false) != GRPC_CHANNEL_READY)) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the broker: ", status.error_message(),
        " (is credbrokerd running? start it with scripts/run.sh)"));
  }
  return FromGrpcStatus(status);
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker
