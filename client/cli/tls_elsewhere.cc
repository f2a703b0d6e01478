// credctl without TLS: it hands a TCP address that needs TLS to credctl-tls,
// the same program linked with TLS, installed beside it (credctl.cc,
// HandOverToTlsCompanion). Linking gRPC without its TLS leaves OpenSSL out
// of credctl: a smaller executable with far fewer pages to relocate at every
// start (docs/BENCHMARKS.md, "credctl process time").
#include "absl/status/status.h"
#include "client/internal/channel.h"

namespace credbroker {
namespace client {
namespace internal {

bool TlsLinked() { return false; }

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const Options& options) {
  return absl::FailedPreconditionError(
      "this credctl leaves TLS to credctl-tls, which should have been run "
      "instead of it for a TCP address");
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker
