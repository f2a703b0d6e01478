// Internal to the client library: the channel, call metadata and status
// conversion shared by its clients. Not part of the public API.
#ifndef CREDBROKER_CLIENT_INTERNAL_CHANNEL_H_
#define CREDBROKER_CLIENT_INTERNAL_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace client {
namespace internal {

// A channel to options.address (or DefaultAddress()). INVALID_ARGUMENT for
// an address gRPC cannot use.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Options& options);

// Adds the bearer token, and a deadline `timeout` from now unless it is
// infinite.
void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    absl::Duration timeout);

// The one conversion of a call's status: UNAVAILABLE gets a hint to start
// the broker; everything else keeps the broker's code, message and details.
absl::Status FromCallStatus(const grpc::Status& status);

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CHANNEL_H_
