// WebAuthn (W3C Web Authentication, level 2) verification for the broker as
// a relying party: the checks that turn a browser's registration into a
// stored credential and an assertion into proof that the person touched
// (or unlocked) that authenticator for one challenge the broker issued.
//
// Only the "none" and the self-attestation form of "packed" are accepted:
// the broker does not need to know the authenticator's make, only that the
// same key signs later (THREAT_MODEL.md). Algorithms: ES256 (COSE -7,
// P-256 ECDSA with SHA-256, via OpenSSL) and EdDSA (COSE -8, Ed25519, via
// libsodium).
//
// Pure functions of their arguments; safe from any thread. They do not
// issue or remember challenges or store counters: the caller passes the
// challenge it issued (and spends it) and the stored counter.
//
// Errors: INVALID_ARGUMENT when an input is malformed (not CBOR, a field
// missing, an algorithm we do not take), PERMISSION_DENIED when a
// well-formed input fails a check (challenge, origin, RP ID, flags,
// counter, signature). Every refusal carries its reason as a payload (see
// WebAuthnRefusalReason) so the caller can audit it; no message repeats
// input bytes beyond the origin and the format name.
#ifndef CREDBROKER_BROKER_CRYPTO_WEBAUTHN_H_
#define CREDBROKER_BROKER_CRYPTO_WEBAUTHN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credbroker {

// COSE algorithm identifiers (IANA "COSE Algorithms").
inline constexpr int64_t kCoseEs256 = -7;
inline constexpr int64_t kCoseEdDsa = -8;

// Who the broker is as a relying party.
struct RelyingParty {
  // The RP ID: a domain ("localhost"), never an IP address or a URL.
  std::string id;
  // Exact origins a ceremony may come from ("http://localhost:8080").
  std::vector<std::string> origins;
  // Require the UV flag (PIN or biometric on the authenticator) as well
  // as UP (presence).
  bool require_user_verification = false;
};

// A registered credential: what the broker stores.
struct WebAuthnCredential {
  std::string credential_id;  // Raw bytes, as the authenticator chose.
  int64_t algorithm = 0;      // kCoseEs256 or kCoseEdDsa.
  // ES256: the uncompressed point 0x04 || x || y (65 bytes).
  // EdDSA: the 32-byte Ed25519 public key.
  std::string public_key;
  uint32_t sign_count = 0;
};

// A verified assertion.
struct WebAuthnAssertion {
  uint32_t sign_count = 0;
  bool user_verified = false;
};

// The payload key of a refusal's reason; the value is one of the words
// "challenge", "origin", "type", "rp_id", "user_presence",
// "user_verification", "counter", "signature", "algorithm", "attestation",
// "malformed".
inline constexpr absl::string_view kWebAuthnReasonPayload =
    "type.credbroker.dev/webauthn-refusal";

// The reason a VerifyRegistration or VerifyAssertion refusal carries; ""
// for any other status.
std::string WebAuthnRefusalReason(const absl::Status& status);

// Checks a registration (navigator.credentials.create) answering
// `challenge` (raw bytes) and returns the credential to store.
// `client_data_json` and `attestation_object` are the raw bytes the
// browser returned (not base64).
absl::StatusOr<WebAuthnCredential> VerifyRegistration(
    const RelyingParty& rp, absl::string_view challenge,
    absl::string_view client_data_json, absl::string_view attestation_object);

// Checks an assertion (navigator.credentials.get) answering `challenge`
// by `credential`: type "webauthn.get", the challenge, an allowed origin,
// the RP ID hash, UP (and UV when required), a signature counter greater
// than the stored one (unless both are 0; a smaller or equal one is
// refused with reason "counter": a possibly cloned authenticator), and the
// signature over authenticatorData || SHA-256(clientDataJSON).
absl::StatusOr<WebAuthnAssertion> VerifyAssertion(
    const RelyingParty& rp, absl::string_view challenge,
    const WebAuthnCredential& credential, absl::string_view client_data_json,
    absl::string_view authenticator_data, absl::string_view signature);

// base64url without padding (RFC 4648 section 5), as clientDataJSON
// carries the challenge and browsers' JSON forms carry binary fields.
std::string Base64UrlEncode(absl::string_view bytes);
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CRYPTO_WEBAUTHN_H_
