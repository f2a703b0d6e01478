// Password hashing for short user secrets that are checked, never used as
// keys (the approval PIN): Argon2id with libsodium's INTERACTIVE limits, in
// the self-describing crypto_pwhash_str format (algorithm, limits and salt
// travel with the hash). Thread-safe after InitCrypto(). Both functions
// take tens of milliseconds and tens of MiB: never call them on a gRPC
// reactor thread.
#ifndef CREDBROKER_BROKER_CRYPTO_PASSWORD_HASH_H_
#define CREDBROKER_BROKER_CRYPTO_PASSWORD_HASH_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/secret.h"

namespace credbroker {

// The encoded Argon2id hash ("$argon2id$v=19$m=...") of `password`.
// INVALID_ARGUMENT when it is empty; RESOURCE_EXHAUSTED when the memory
// cannot be allocated.
absl::StatusOr<std::string> HashPassword(const SecretBytes& password);

// Whether `password` matches `encoded` (from HashPassword). INVALID_ARGUMENT
// when `encoded` is not an Argon2id hash string.
absl::StatusOr<bool> VerifyPassword(absl::string_view encoded,
                                    const SecretBytes& password);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CRYPTO_PASSWORD_HASH_H_
