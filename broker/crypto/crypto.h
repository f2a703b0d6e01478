// Everything credbroker does with libsodium: the master key (key file or
// Argon2id passphrase), the wrapped data key, sealing records with
// XChaCha20-Poly1305 (IETF AEAD) bound to their identity, tokens and
// fingerprints. All functions are thread-safe after InitCrypto().
#ifndef CREDBROKER_BROKER_CRYPTO_CRYPTO_H_
#define CREDBROKER_BROKER_CRYPTO_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/secret.h"

namespace credbroker {

// sodium_init(); INTERNAL if libsodium cannot initialize. Idempotent.
absl::Status InitCrypto();

constexpr size_t kKeyBytes = 32;

// Reads the 32-byte master key from `path` (a 0600 file). When the file does
// not exist and `create` is set, generates one and writes it 0600 (the
// directory must exist). FAILED_PRECONDITION when the file has the wrong size
// or is readable by others; NOT_FOUND when absent and !create.
//
// File format: the key as 64 lowercase hex characters and a newline (what we
// write, so that a backup can be copied by hand); 32 raw bytes are accepted
// on read. Creation is O_CREAT|O_EXCL|O_NOFOLLOW, and the file and its
// directory are fsynced before the key is returned. A symbolic link, a file
// owned by another user, or a mode with any group/other bit is refused
// (FAILED_PRECONDITION saying what to fix).
absl::StatusOr<SecretBytes> LoadOrCreateKeyFile(const std::string& path,
                                                bool create);

// Parameters of an Argon2id derivation, stored beside the wrapped data key.
struct PassphraseParams {
  std::string salt;  // crypto_pwhash_SALTBYTES random bytes.
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;
};
// Fresh salt with libsodium's MODERATE limits (or INTERACTIVE when `fast`,
// for tests).
PassphraseParams NewPassphraseParams(bool fast = false);
// Argon2id13 (crypto_pwhash) of `passphrase` into a kKeyBytes key:
// deterministic for the same passphrase and params. INVALID_ARGUMENT for an
// empty passphrase, a salt of the wrong size or limits out of range;
// RESOURCE_EXHAUSTED when the memory limit cannot be allocated.
absl::StatusOr<SecretBytes> DeriveKeyFromPassphrase(
    const SecretBytes& passphrase, const PassphraseParams& params);

// Wraps (seals) the data key under the master key; the result is safe to
// store. Unwrap returns PERMISSION_DENIED-free FAILED_PRECONDITION with a
// message saying the master key does not open this store when the key is
// wrong or the blob was altered.
absl::StatusOr<std::string> WrapKey(const SecretBytes& master,
                                    const SecretBytes& data_key);
absl::StatusOr<SecretBytes> UnwrapKey(const SecretBytes& master,
                                      absl::string_view wrapped);

// A fresh random data key.
SecretBytes NewDataKey();

// Seals and opens records under a data key. `associated_data` binds the
// ciphertext to the record's identity (provider, profile, version): opening
// with other associated data fails. Thread-safe.
class Sealer {
 public:
  // `data_key` must be kKeyBytes long (NewDataKey() or UnwrapKey()); any
  // other size is a programming error and aborts the process.
  explicit Sealer(SecretBytes data_key);

  // nonce || ciphertext+tag.
  std::string Seal(const SecretBytes& plaintext,
                   absl::string_view associated_data) const;
  // DATA_LOSS naming `record_name` when the record was tampered with, moved
  // to another identity, or sealed under another key.
  absl::StatusOr<SecretBytes> Open(absl::string_view sealed,
                                   absl::string_view associated_data,
                                   absl::string_view record_name) const;

  // Keyed BLAKE2b fingerprint of a value (hex, 16 chars): equal values give
  // equal fingerprints under this store's key; reveals nothing of the value.
  std::string Fingerprint(const SecretBytes& value) const;

  // Keyed BLAKE2b-256 (hex) of `data` under a subkey of the data key, for
  // the audit chain: without the key, nobody can recompute a chain after
  // editing it.
  std::string AuditMac(absl::string_view data) const;

 private:
  SecretBytes key_;
  SecretBytes fingerprint_key_;
  SecretBytes audit_key_;
};

// A random bearer token (43 url-safe base64 characters, 256 bits).
std::string NewToken();
// Random bytes as lowercase hex (ids).
std::string RandomHex(size_t bytes);
// Constant-time equality of two strings of any length (length leaks).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);
// Fills `out` with bytes from libsodium's CSPRNG.
void RandomBytes(uint8_t* out, size_t size);
// A random password of `length` characters from letters, digits and
// "-_.~!@#%^*+=" with at least one of each class (lowercase, uppercase,
// digit, symbol); shorter than 4 characters, as many classes as fit.
SecretBytes GeneratePassword(size_t length);
// SHA-256 (hex) for the audit chain and key fingerprints.
std::string Sha256Hex(absl::string_view data);
// BLAKE2b-256 of `data`, unkeyed: tells whether bytes are the ones seen
// before without keeping them.
using Digest = std::array<uint8_t, 32>;
Digest DigestOf(absl::string_view data);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CRYPTO_CRYPTO_H_
