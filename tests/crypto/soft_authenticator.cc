#include "tests/crypto/soft_authenticator.h"

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "broker/crypto/webauthn.h"
#include "common/json.h"

namespace credbroker {
namespace {

[[noreturn]] void Fail(absl::string_view what) {
  std::cerr << "SoftAuthenticator: " << what << " failed\n";
  std::abort();
}

std::string Sha256(absl::string_view data) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size());
  return out;
}

cbor_item_t* CborBytes(absl::string_view b) {
  return cbor_build_bytestring(reinterpret_cast<cbor_data>(b.data()), b.size());
}

cbor_item_t* CborInt(int64_t v) {
  if (v >= 0) return cbor_build_uint64(static_cast<uint64_t>(v));
  return cbor_build_negint64(static_cast<uint64_t>(-1 - v));
}

void MapAdd(cbor_item_t* map, cbor_item_t* key, cbor_item_t* value) {
  if (!cbor_map_add(map, cbor_pair{key, value})) Fail("cbor_map_add");
  cbor_decref(&key);
  cbor_decref(&value);
}

std::string Serialize(cbor_item_t* item) {
  unsigned char* buffer = nullptr;
  size_t size = 0;
  const size_t length = cbor_serialize_alloc(item, &buffer, &size);
  if (length == 0) Fail("cbor_serialize_alloc");
  std::string out(reinterpret_cast<const char*>(buffer), length);
  free(buffer);
  cbor_decref(&item);
  return out;
}

}  // namespace

struct SoftAuthenticator::EcKey {
  EVP_PKEY* key = nullptr;
  ~EcKey() { EVP_PKEY_free(key); }
};

SoftAuthenticator::SoftAuthenticator(int64_t algorithm)
    : cose_algorithm(algorithm), algorithm_(algorithm) {
  if (sodium_init() < 0) Fail("sodium_init");
  credential_id_.resize(16);
  randombytes_buf(credential_id_.data(), credential_id_.size());
  if (algorithm == kCoseEdDsa) {
    public_key_.resize(crypto_sign_PUBLICKEYBYTES);
    ed25519_secret_.resize(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(
        reinterpret_cast<unsigned char*>(public_key_.data()),
        reinterpret_cast<unsigned char*>(ed25519_secret_.data()));
    return;
  }
  ec_ = std::make_unique<EcKey>();
  ec_->key = EVP_EC_gen("P-256");
  if (ec_->key == nullptr) Fail("EVP_EC_gen");
  unsigned char point[65];
  size_t length = 0;
  if (EVP_PKEY_get_octet_string_param(ec_->key,
                                      OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                      sizeof(point), &length) != 1 ||
      length != 65) {
    Fail("reading the P-256 public key");
  }
  public_key_.assign(reinterpret_cast<const char*>(point), length);
}

SoftAuthenticator::~SoftAuthenticator() = default;

std::string SoftAuthenticator::ClientData(absl::string_view type,
                                          absl::string_view challenge,
                                          absl::string_view origin) const {
  return absl::StrCat(
      "{\"type\":",
      JsonQuote(client_data_type.empty() ? type : client_data_type),
      ",\"challenge\":", JsonQuote(Base64UrlEncode(challenge)),
      ",\"origin\":", JsonQuote(origin), ",\"crossOrigin\":false}");
}

std::string SoftAuthenticator::CoseKey() const {
  cbor_item_t* map = cbor_new_definite_map(5);
  if (algorithm_ == kCoseEdDsa) {
    MapAdd(map, CborInt(1), CborInt(1));  // kty: OKP
    MapAdd(map, CborInt(3), CborInt(cose_algorithm));
    MapAdd(map, CborInt(-1), CborInt(6));  // crv: Ed25519
    MapAdd(map, CborInt(-2), CborBytes(public_key_));
  } else {
    MapAdd(map, CborInt(1), CborInt(2));  // kty: EC2
    MapAdd(map, CborInt(3), CborInt(cose_algorithm));
    MapAdd(map, CborInt(-1), CborInt(1));  // crv: P-256
    MapAdd(map, CborInt(-2),
           CborBytes(absl::string_view(public_key_).substr(1, 32)));
    MapAdd(map, CborInt(-3),
           CborBytes(absl::string_view(public_key_).substr(33, 32)));
  }
  return Serialize(map);
}

std::string SoftAuthenticator::AuthData(absl::string_view rp_id,
                                        bool attested) const {
  std::string out = Sha256(rp_id);
  out.push_back(static_cast<char>(flags | (attested ? 0x40 : 0)));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((sign_count >> shift) & 0xff));
  }
  if (attested) {
    out.append(16, '\0');  // aaguid: none.
    out.push_back(static_cast<char>(credential_id_.size() >> 8));
    out.push_back(static_cast<char>(credential_id_.size() & 0xff));
    out += credential_id_;
    out += CoseKey();
  }
  return out;
}

std::string SoftAuthenticator::Sign(absl::string_view message) const {
  if (algorithm_ == kCoseEdDsa) {
    std::string sig(crypto_sign_BYTES, '\0');
    crypto_sign_detached(
        reinterpret_cast<unsigned char*>(sig.data()), nullptr,
        reinterpret_cast<const unsigned char*>(message.data()), message.size(),
        reinterpret_cast<const unsigned char*>(ed25519_secret_.data()));
    return sig;
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t length = 0;
  if (md == nullptr ||
      EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, ec_->key) != 1 ||
      EVP_DigestSign(md, nullptr, &length,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    Fail("EVP_DigestSign");
  }
  std::string sig(length, '\0');
  if (EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &length,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    Fail("EVP_DigestSign");
  }
  EVP_MD_CTX_free(md);
  sig.resize(length);
  return sig;
}

SoftRegistration SoftAuthenticator::Register(absl::string_view rp_id,
                                             absl::string_view origin,
                                             absl::string_view challenge,
                                             absl::string_view fmt) {
  SoftRegistration out;
  out.client_data_json = ClientData("webauthn.create", challenge, origin);
  const std::string auth = AuthData(rp_id, /*attested=*/true);
  cbor_item_t* statement = cbor_new_definite_map(2);
  if (fmt == "packed") {
    MapAdd(statement, cbor_build_string("alg"), CborInt(cose_algorithm));
    MapAdd(statement, cbor_build_string("sig"),
           CborBytes(Sign(absl::StrCat(auth, Sha256(out.client_data_json)))));
  }
  cbor_item_t* att = cbor_new_definite_map(3);
  const std::string fmt_text(fmt);
  MapAdd(att, cbor_build_string("fmt"), cbor_build_string(fmt_text.c_str()));
  MapAdd(att, cbor_build_string("attStmt"), statement);
  MapAdd(att, cbor_build_string("authData"), CborBytes(auth));
  out.attestation_object = Serialize(att);
  return out;
}

SoftAssertion SoftAuthenticator::Assert(absl::string_view rp_id,
                                        absl::string_view origin,
                                        absl::string_view challenge) {
  if (count_signatures) ++sign_count;
  SoftAssertion out;
  out.client_data_json = ClientData("webauthn.get", challenge, origin);
  out.authenticator_data = AuthData(rp_id, /*attested=*/false);
  out.signature =
      Sign(absl::StrCat(out.authenticator_data, Sha256(out.client_data_json)));
  return out;
}

}  // namespace credbroker
