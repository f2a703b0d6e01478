// SoftAuthenticator: a WebAuthn authenticator in software for tests. It
// generates its own key (ES256 with OpenSSL, EdDSA with libsodium), builds
// real authenticatorData and CBOR attestation objects (libcbor) and signs
// them, so the broker's verifier sees what a browser would hand it. Public
// fields are knobs a test turns to produce each refusal.
//
// Not thread-safe; one per test.
#ifndef CREDBROKER_TESTS_CRYPTO_SOFT_AUTHENTICATOR_H_
#define CREDBROKER_TESTS_CRYPTO_SOFT_AUTHENTICATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace credbroker {

// The two byte strings a registration ceremony returns (raw, not base64).
struct SoftRegistration {
  std::string client_data_json;
  std::string attestation_object;
};

// The three byte strings an authentication ceremony returns.
struct SoftAssertion {
  std::string client_data_json;
  std::string authenticator_data;
  std::string signature;
};

class SoftAuthenticator {
 public:
  static constexpr uint8_t kUserPresent = 0x01;
  static constexpr uint8_t kUserVerified = 0x04;

  // `algorithm`: -7 (ES256) or -8 (EdDSA).
  explicit SoftAuthenticator(int64_t algorithm);
  ~SoftAuthenticator();
  SoftAuthenticator(const SoftAuthenticator&) = delete;
  SoftAuthenticator& operator=(const SoftAuthenticator&) = delete;

  // navigator.credentials.create for `rp_id` from `origin`; `fmt` is
  // "none" or "packed" (self attestation).
  SoftRegistration Register(absl::string_view rp_id, absl::string_view origin,
                            absl::string_view challenge,
                            absl::string_view fmt = "none");
  // navigator.credentials.get. Adds 1 to sign_count first when
  // count_signatures (an authenticator without a counter keeps 0).
  SoftAssertion Assert(absl::string_view rp_id, absl::string_view origin,
                       absl::string_view challenge);

  const std::string& credential_id() const { return credential_id_; }

  // Knobs.
  uint8_t flags = kUserPresent | kUserVerified;
  uint32_t sign_count = 0;
  bool count_signatures = true;
  // The algorithm the COSE key names (a key of another kind when changed).
  int64_t cose_algorithm;
  // clientDataJSON's type; empty: the ceremony's own.
  std::string client_data_type;

 private:
  std::string ClientData(absl::string_view type, absl::string_view challenge,
                         absl::string_view origin) const;
  std::string AuthData(absl::string_view rp_id, bool attested) const;
  std::string CoseKey() const;
  std::string Sign(absl::string_view message) const;

  const int64_t algorithm_;
  std::string credential_id_;
  std::string public_key_;  // Raw: 0x04||x||y, or the Ed25519 key.
  std::string ed25519_secret_;
  struct EcKey;
  std::unique_ptr<EcKey> ec_;
};

}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CRYPTO_SOFT_AUTHENTICATOR_H_
