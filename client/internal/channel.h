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

// Channel credentials for TLS to a TCP address (options.tls_*). Defined in
// tls_channel.cc, which the credbroker_client library links; an executable
// built on credbroker_client_base without it links its own definition
// instead (credctl: client/cli/tls_elsewhere.cc, which leaves OpenSSL out).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const Options& options);
// Whether TlsChannelCredentials is the real one (tls_channel.cc).
bool TlsLinked();

// For a process that ends with std::_Exit (credctl): every channel made
// after this call is held until the process ends, so that dropping the last
// client does not shut the channel down (its connection, subchannel and
// timers, about 0.4 ms here) a moment before the kernel does the same.
// Cannot be undone.
void KeepChannelsUntilExit();

// Adds the bearer token, and a deadline `timeout` from now unless it is
// infinite.
void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    absl::Duration timeout);

// The one conversion of a call's status: everything keeps the broker's
// code, message and details. An UNAVAILABLE that did not come from the
// broker gets a hint to start it: with `channel`, only when the channel is
// not connected (the broker itself answers UNAVAILABLE when, say, its
// database cannot be written, and then its message says what to fix).
absl::Status FromCallStatus(const grpc::Status& status,
                            grpc::ChannelInterface* channel = nullptr);

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CHANNEL_H_
