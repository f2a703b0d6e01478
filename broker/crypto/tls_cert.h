// The broker's TLS identity for TCP listeners: a self-signed certificate and
// its EC P-256 key, generated with OpenSSL's libcrypto at first start and
// kept in the data directory (tls.key 0600, tls.crt), or a pair the user
// names. The generated certificate is valid for one year for DNS:localhost,
// IP:127.0.0.1 and IP:::1, and is renewed (a new certificate for the same
// key) when less than 30 days remain; local clients trust it by reading
// tls.crt from the data directory, so a renewal needs no action from them.
// Thread-safe: no shared state.
#ifndef CREDBROKER_BROKER_CRYPTO_TLS_CERT_H_
#define CREDBROKER_BROKER_CRYPTO_TLS_CERT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/secret.h"

namespace credbroker {

// A certificate (chain) and its private key, both PEM.
struct TlsIdentity {
  std::string cert_pem;
  SecretBytes key_pem;
  // SHA-256 of the DER certificate, "AB:CD:...", as
  // `openssl x509 -noout -fingerprint -sha256` prints it.
  std::string fingerprint;
  absl::Time not_after;
  bool generated = false;  // Created or renewed by this call.
  bool renewed = false;    // A new certificate for the key already on disk.
  // Why the pair on disk was replaced by a new one (it did not parse, the
  // key did not belong to the certificate, one file was missing); empty when
  // it was not. Names files, never key material.
  std::string replaced;
};

struct SelfSignedOptions {
  std::string common_name = "credbroker";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  absl::Duration validity = absl::Hours(24 * 365);
  // Usable as a TLS client certificate (extendedKeyUsage clientAuth) rather
  // than a server one.
  bool client = false;
};

// A fresh EC P-256 key and a self-signed certificate for it, valid from an
// hour before `now` (clock skew) for `options.validity`. INTERNAL when
// OpenSSL fails; INVALID_ARGUMENT for an unparsable IP address.
absl::StatusOr<TlsIdentity> GenerateSelfSigned(const SelfSignedOptions& options,
                                               absl::Time now);

// Reads the pair at cert_path/key_path. Creates a new pair
// (SelfSignedOptions() defaults) when either file is missing, does not
// parse, or the key does not belong to the certificate (saying why in
// `replaced`); each file is written atomically (temporary file, fsync,
// rename; 0600), the key first. When the certificate expires within
// `renew_before` of `now`, writes a new certificate for the same key
// (`renewed`), so that only one file changes. FAILED_PRECONDITION when the
// key file is readable by others.
absl::StatusOr<TlsIdentity> LoadOrCreateSelfSigned(
    const std::string& cert_path, const std::string& key_path, absl::Time now,
    absl::Duration renew_before = absl::Hours(24 * 30));

// Reads a user-named pair. NOT_FOUND when a file is absent;
// FAILED_PRECONDITION when one does not parse, the key does not belong to
// the (first) certificate, or the key file is readable by others.
absl::StatusOr<TlsIdentity> LoadTlsIdentity(const std::string& cert_path,
                                            const std::string& key_path);

// Checks that `pem` holds at least one certificate (a CA bundle) and
// returns it unchanged; FAILED_PRECONDITION naming `path` otherwise.
absl::StatusOr<std::string> LoadCertificateBundle(const std::string& path);

// The SHA-256 fingerprint of the first certificate in `cert_pem`.
// INVALID_ARGUMENT when there is none.
absl::StatusOr<std::string> CertificateFingerprint(absl::string_view cert_pem);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CRYPTO_TLS_CERT_H_
