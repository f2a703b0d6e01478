// The client library's TLS, apart from the rest of it so that an executable
// can leave OpenSSL out (channel.h, TlsChannelCredentials).
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "client/internal/channel.h"
#include "common/files.h"
#include "common/secret.h"

namespace credbroker {
namespace client {
namespace internal {

bool TlsLinked() { return true; }

// The CA to trust is the option, else the default data directory's tls.crt
// when present, else the system roots; the client certificate when given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const Options& options) {
  grpc::SslCredentialsOptions ssl;
  std::string ca_file = options.tls_ca_file;
  if (ca_file.empty()) {
    std::string fallback = absl::StrCat(DefaultDataDir(), "/tls.crt");
    if (access(fallback.c_str(), R_OK) == 0) ca_file = fallback;
  }
  if (!ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(ca_file);
    if (!ca.ok()) {
      return absl::Status(ca.status().code(),
                          absl::StrCat("cannot read the TLS CA file ", ca_file,
                                       ": ", ca.status().message()));
    }
    ssl.pem_root_certs = std::move(*ca);
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate needs its key, and a key its certificate");
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
    if (!key.ok()) {
      return absl::Status(
          key.status().code(),
          absl::StrCat("cannot read the TLS key file ", options.tls_key_file));
    }
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::SslCredentials(ssl);
  WipeString(ssl.pem_private_key);
  return creds;
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker
