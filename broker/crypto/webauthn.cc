#include "broker/crypto/webauthn.h"

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/crypto/crypto.h"
#include "common/json.h"

namespace credbroker {
namespace {

// authenticatorData flags (WebAuthn section 6.1).
constexpr uint8_t kFlagUserPresent = 0x01;
constexpr uint8_t kFlagUserVerified = 0x04;
constexpr uint8_t kFlagAttestedData = 0x40;
// rpIdHash (32) + flags (1) + signCount (4).
constexpr size_t kAuthDataHeader = 37;

absl::Status Refuse(absl::StatusCode code, absl::string_view reason,
                    absl::string_view message) {
  absl::Status status(code, absl::StrCat("WebAuthn: ", message));
  status.SetPayload(kWebAuthnReasonPayload, absl::Cord(reason));
  return status;
}

absl::Status Malformed(absl::string_view message) {
  return Refuse(absl::StatusCode::kInvalidArgument, "malformed", message);
}

absl::Status Denied(absl::string_view reason, absl::string_view message) {
  return Refuse(absl::StatusCode::kPermissionDenied, reason, message);
}

std::string Sha256(absl::string_view data) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  return out;
}

// Owns one decoded CBOR item.
struct CborFree {
  void operator()(cbor_item_t* item) const {
    if (item != nullptr) cbor_decref(&item);
  }
};
using CborPtr = std::unique_ptr<cbor_item_t, CborFree>;

// Decodes the CBOR item at the start of `data`; `used` gets its length.
absl::StatusOr<CborPtr> LoadCbor(absl::string_view data, absl::string_view what,
                                 size_t& used) {
  cbor_load_result result;
  CborPtr item(cbor_load(reinterpret_cast<cbor_data>(data.data()), data.size(),
                         &result));
  if (item == nullptr || result.error.code != CBOR_ERR_NONE) {
    return Malformed(absl::StrCat(what, " is not valid CBOR"));
  }
  used = result.read;
  return item;
}

// The value of `map`'s entry for the text key `key`; nullptr when absent.
cbor_item_t* MapFind(const cbor_item_t* map, absl::string_view key) {
  const cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    const cbor_item_t* k = pairs[i].key;
    if (cbor_isa_string(k) && cbor_string_is_definite(k) &&
        absl::string_view(reinterpret_cast<const char*>(cbor_string_handle(k)),
                          cbor_string_length(k)) == key) {
      return pairs[i].value;
    }
  }
  return nullptr;
}

// The value of `map`'s entry for the integer key `key` (COSE labels).
cbor_item_t* MapFindLabel(const cbor_item_t* map, int64_t key) {
  const cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    const cbor_item_t* k = pairs[i].key;
    const bool match =
        key >= 0
            ? cbor_isa_uint(k) && cbor_get_int(k) == static_cast<uint64_t>(key)
            : cbor_isa_negint(k) &&
                  cbor_get_int(k) == static_cast<uint64_t>(-1 - key);
    if (match) return pairs[i].value;
  }
  return nullptr;
}

std::optional<std::string> Bytes(const cbor_item_t* item) {
  if (item == nullptr || !cbor_isa_bytestring(item) ||
      !cbor_bytestring_is_definite(item)) {
    return std::nullopt;
  }
  return std::string(
      reinterpret_cast<const char*>(cbor_bytestring_handle(item)),
      cbor_bytestring_length(item));
}

std::optional<std::string> Text(const cbor_item_t* item) {
  if (item == nullptr || !cbor_isa_string(item) ||
      !cbor_string_is_definite(item)) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(cbor_string_handle(item)),
                     cbor_string_length(item));
}

std::optional<int64_t> Int(const cbor_item_t* item) {
  if (item == nullptr) return std::nullopt;
  if (cbor_isa_uint(item)) {
    const uint64_t v = cbor_get_int(item);
    if (v > INT64_MAX) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (cbor_isa_negint(item)) {
    const uint64_t v = cbor_get_int(item);
    if (v > INT64_MAX) return std::nullopt;
    return -1 - static_cast<int64_t>(v);
  }
  return std::nullopt;
}

// A COSE_Key (RFC 9053) as our credential's algorithm and raw public key.
absl::Status ParseCoseKey(const cbor_item_t* key,
                          WebAuthnCredential& credential) {
  if (!cbor_isa_map(key))
    return Malformed("the credential public key is not a COSE key map");
  const std::optional<int64_t> kty = Int(MapFindLabel(key, 1));
  const std::optional<int64_t> alg = Int(MapFindLabel(key, 3));
  const std::optional<int64_t> crv = Int(MapFindLabel(key, -1));
  const std::optional<std::string> x = Bytes(MapFindLabel(key, -2));
  if (alg == kCoseEs256) {
    const std::optional<std::string> y = Bytes(MapFindLabel(key, -3));
    if (kty != 2 || crv != 1 || !x || !y || x->size() != 32 ||
        y->size() != 32) {
      return Malformed(
          "an ES256 key must be an EC2 P-256 key with 32-byte x and y");
    }
    credential.public_key = absl::StrCat("\x04", *x, *y);
  } else if (alg == kCoseEdDsa) {
    if (kty != 1 || crv != 6 || !x || x->size() != crypto_sign_PUBLICKEYBYTES) {
      return Malformed(
          "an EdDSA key must be an OKP Ed25519 key with a 32-byte x");
    }
    credential.public_key = *x;
  } else {
    return Refuse(
        absl::StatusCode::kInvalidArgument, "algorithm",
        absl::StrCat("COSE algorithm ", alg.value_or(0),
                     " is not supported; use ES256 (-7) or EdDSA (-8)"));
  }
  credential.algorithm = *alg;
  return absl::OkStatus();
}

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// A P-256 public key from its uncompressed point; nullptr when the point
// is not on the curve.
std::unique_ptr<EVP_PKEY, EvpPkeyFree> P256Key(const std::string& point) {
  std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  char group[] = "prime256v1";
  std::string pub = point;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub.data(),
                                        pub.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return nullptr;
  std::unique_ptr<EVP_PKEY, EvpPkeyFree> key(raw);
  std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree> check(
      EVP_PKEY_CTX_new(key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1)
    return nullptr;
  return key;
}

// OK when `signature` is `credential`'s signature over `message`.
absl::Status VerifySignature(const WebAuthnCredential& credential,
                             absl::string_view message,
                             absl::string_view signature) {
  bool ok = false;
  if (credential.algorithm == kCoseEdDsa) {
    ok = credential.public_key.size() == crypto_sign_PUBLICKEYBYTES &&
         signature.size() == crypto_sign_BYTES &&
         crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(signature.data()),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size(),
             reinterpret_cast<const unsigned char*>(
                 credential.public_key.data())) == 0;
  } else if (credential.algorithm == kCoseEs256) {
    auto key = P256Key(credential.public_key);
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> md(EVP_MD_CTX_new());
    ok = key != nullptr && md != nullptr &&
         EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr,
                              key.get()) == 1 &&
         EVP_DigestVerify(
             md.get(), reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size()) == 1;
  } else {
    return Refuse(absl::StatusCode::kInvalidArgument, "algorithm",
                  "the credential's algorithm is not supported");
  }
  if (!ok)
    return Denied("signature",
                  "the signature does not verify with the passkey's key");
  return absl::OkStatus();
}

// Checks clientDataJSON's type, challenge, origin; returns its SHA-256.
absl::StatusOr<std::string> CheckClientData(
    const RelyingParty& rp, absl::string_view type, absl::string_view challenge,
    absl::string_view client_data_json) {
  absl::StatusOr<JsonValue> parsed = ParseJson(client_data_json);
  if (!parsed.ok() || !parsed->is_object()) {
    return Malformed("clientDataJSON is not a JSON object");
  }
  const std::optional<absl::string_view> got_type = parsed->FindString("type");
  if (got_type != type) {
    return Denied("type",
                  absl::StrCat("clientDataJSON's type is not \"", type, "\""));
  }
  const std::optional<absl::string_view> got_challenge =
      parsed->FindString("challenge");
  if (!got_challenge.has_value() || challenge.empty() ||
      !ConstantTimeEquals(*got_challenge, Base64UrlEncode(challenge))) {
    return Denied("challenge",
                  "the challenge is not the one the broker issued for this");
  }
  const std::optional<absl::string_view> origin = parsed->FindString("origin");
  bool allowed = false;
  for (const std::string& o : rp.origins)
    allowed = allowed || (origin.has_value() && *origin == o);
  if (!allowed) {
    return Denied("origin",
                  absl::StrCat("origin ", JsonQuote(origin.value_or("")),
                               " is not an allowed origin"));
  }
  const JsonValue* cross = parsed->Find("crossOrigin");
  if (cross != nullptr && cross->bool_value()) {
    return Denied("origin", "a cross-origin ceremony is not allowed");
  }
  return Sha256(client_data_json);
}

struct AuthData {
  std::string rp_id_hash;
  uint8_t flags = 0;
  uint32_t sign_count = 0;
  absl::string_view rest;  // After the 37-byte header.
};

absl::StatusOr<AuthData> ParseAuthData(absl::string_view data) {
  if (data.size() < kAuthDataHeader)
    return Malformed("authenticatorData is too short");
  AuthData out;
  out.rp_id_hash = std::string(data.substr(0, 32));
  out.flags = static_cast<uint8_t>(data[32]);
  for (size_t i = 33; i < 37; ++i) {
    out.sign_count = (out.sign_count << 8) | static_cast<uint8_t>(data[i]);
  }
  out.rest = data.substr(kAuthDataHeader);
  return out;
}

absl::Status CheckAuthData(const RelyingParty& rp, const AuthData& auth) {
  if (!ConstantTimeEquals(auth.rp_id_hash, Sha256(rp.id))) {
    return Denied(
        "rp_id",
        absl::StrCat("the authenticator signed for another RP ID, not \"",
                     rp.id, "\""));
  }
  if ((auth.flags & kFlagUserPresent) == 0) {
    return Denied("user_presence",
                  "the authenticator did not see the person (UP flag unset)");
  }
  if (rp.require_user_verification && (auth.flags & kFlagUserVerified) == 0) {
    return Denied(
        "user_verification",
        "the authenticator did not verify the person (UV flag unset)");
  }
  return absl::OkStatus();
}

// Reads the attested credential data that follows the header.
absl::Status ParseAttestedCredential(absl::string_view rest,
                                     WebAuthnCredential& credential) {
  // aaguid (16) + credentialIdLength (2).
  if (rest.size() < 18)
    return Malformed("attested credential data is too short");
  const size_t id_length =
      (static_cast<size_t>(static_cast<uint8_t>(rest[16])) << 8) |
      static_cast<uint8_t>(rest[17]);
  if (id_length == 0 || id_length > 1023 || rest.size() < 18 + id_length) {
    return Malformed("the credential ID length is out of bounds");
  }
  credential.credential_id = std::string(rest.substr(18, id_length));
  size_t used = 0;
  CB_ASSIGN_OR_RETURN(
      CborPtr key, LoadCbor(rest.substr(18 + id_length), "the COSE key", used));
  return ParseCoseKey(key.get(), credential);
}

// Checks a "packed" self-attestation: `statement`'s signature is the new
// credential's own over authData || clientDataHash.
absl::Status CheckPackedSelf(const cbor_item_t* statement,
                             const WebAuthnCredential& credential,
                             absl::string_view message) {
  if (!cbor_isa_map(statement)) return Malformed("attStmt is not a map");
  if (MapFind(statement, "x5c") != nullptr ||
      MapFind(statement, "ecdaaKeyId") != nullptr) {
    return Refuse(
        absl::StatusCode::kInvalidArgument, "attestation",
        "only self attestation is accepted: ask for attestation \"none\"");
  }
  const std::optional<int64_t> alg = Int(MapFind(statement, "alg"));
  const std::optional<std::string> sig = Bytes(MapFind(statement, "sig"));
  if (!sig.has_value()) return Malformed("packed attStmt has no sig");
  if (alg != credential.algorithm) {
    return Denied("algorithm",
                  "packed attStmt's alg is not the credential key's");
  }
  return VerifySignature(credential, message, *sig);
}

}  // namespace

std::string WebAuthnRefusalReason(const absl::Status& status) {
  auto reason = status.GetPayload(kWebAuthnReasonPayload);
  return reason.has_value() ? std::string(*reason) : std::string();
}

std::string Base64UrlEncode(absl::string_view bytes) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(),
                    reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // The terminating NUL.
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  std::string out(text.size(), '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()),
                        out.size(), text.data(), text.size(), nullptr, &length,
                        &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return absl::InvalidArgumentError("not base64url without padding");
  }
  out.resize(length);
  return out;
}

absl::StatusOr<WebAuthnCredential> VerifyRegistration(
    const RelyingParty& rp, absl::string_view challenge,
    absl::string_view client_data_json, absl::string_view attestation_object) {
  CB_ASSIGN_OR_RETURN(
      std::string client_hash,
      CheckClientData(rp, "webauthn.create", challenge, client_data_json));
  size_t used = 0;
  CB_ASSIGN_OR_RETURN(CborPtr att,
                      LoadCbor(attestation_object, "attestationObject", used));
  if (!cbor_isa_map(att.get()))
    return Malformed("attestationObject is not a map");
  const std::optional<std::string> fmt = Text(MapFind(att.get(), "fmt"));
  const std::optional<std::string> auth_bytes =
      Bytes(MapFind(att.get(), "authData"));
  const cbor_item_t* statement = MapFind(att.get(), "attStmt");
  if (!fmt.has_value() || !auth_bytes.has_value() || statement == nullptr) {
    return Malformed("attestationObject needs fmt, authData and attStmt");
  }
  CB_ASSIGN_OR_RETURN(AuthData auth, ParseAuthData(*auth_bytes));
  CB_RETURN_IF_ERROR(CheckAuthData(rp, auth));
  if ((auth.flags & kFlagAttestedData) == 0) {
    return Malformed("authData carries no attested credential (AT flag unset)");
  }
  WebAuthnCredential credential;
  CB_RETURN_IF_ERROR(ParseAttestedCredential(auth.rest, credential));
  credential.sign_count = auth.sign_count;
  if (*fmt == "none") {
    if (!cbor_isa_map(statement) || cbor_map_size(statement) != 0) {
      return Malformed("attestation \"none\" must have an empty attStmt");
    }
  } else if (*fmt == "packed") {
    CB_RETURN_IF_ERROR(
        CheckPackedSelf(statement, credential, *auth_bytes + client_hash));
  } else {
    return Refuse(
        absl::StatusCode::kInvalidArgument, "attestation",
        absl::StrCat("attestation format ", JsonQuote(*fmt),
                     " is not accepted: ask for attestation \"none\""));
  }
  if (credential.algorithm == kCoseEs256 &&
      P256Key(credential.public_key) == nullptr) {
    return Malformed("the ES256 public key is not a point on P-256");
  }
  return credential;
}

absl::StatusOr<WebAuthnAssertion> VerifyAssertion(
    const RelyingParty& rp, absl::string_view challenge,
    const WebAuthnCredential& credential, absl::string_view client_data_json,
    absl::string_view authenticator_data, absl::string_view signature) {
  CB_ASSIGN_OR_RETURN(
      std::string client_hash,
      CheckClientData(rp, "webauthn.get", challenge, client_data_json));
  CB_ASSIGN_OR_RETURN(AuthData auth, ParseAuthData(authenticator_data));
  CB_RETURN_IF_ERROR(CheckAuthData(rp, auth));
  CB_RETURN_IF_ERROR(VerifySignature(
      credential, absl::StrCat(authenticator_data, client_hash), signature));
  // After the signature: an unsigned counter proves nothing either way.
  const bool both_zero = auth.sign_count == 0 && credential.sign_count == 0;
  if (!both_zero && auth.sign_count <= credential.sign_count) {
    return Denied(
        "counter",
        absl::StrCat("the signature counter went back (", auth.sign_count,
                     " after ", credential.sign_count,
                     "): possibly a cloned authenticator"));
  }
  WebAuthnAssertion out;
  out.sign_count = auth.sign_count;
  out.user_verified = (auth.flags & kFlagUserVerified) != 0;
  return out;
}

}  // namespace credbroker
