#include "broker/crypto/password_hash.h"

#include <sodium.h>

#include <string>

#include "absl/strings/match.h"

namespace credbroker {

absl::StatusOr<std::string> HashPassword(const SecretBytes& password) {
  if (password.empty()) {
    return absl::InvalidArgumentError("cannot hash an empty password");
  }
  char out[crypto_pwhash_STRBYTES] = {};
  if (crypto_pwhash_str(out, reinterpret_cast<const char*>(password.data()),
                        password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return absl::ResourceExhaustedError(
        "not enough memory to hash the password (Argon2id needs 64 MiB)");
  }
  return std::string(out);
}

absl::StatusOr<bool> VerifyPassword(absl::string_view encoded,
                                    const SecretBytes& password) {
  if (!absl::StartsWith(encoded, "$argon2id$") ||
      encoded.size() >= crypto_pwhash_STRBYTES) {
    return absl::InvalidArgumentError(
        "the stored hash is not an Argon2id hash");
  }
  // crypto_pwhash_str_verify wants a NUL-terminated string.
  char buf[crypto_pwhash_STRBYTES] = {};
  encoded.copy(buf, encoded.size());
  return crypto_pwhash_str_verify(
             buf, reinterpret_cast<const char*>(password.data()),
             password.size()) == 0;
}

}  // namespace credbroker
