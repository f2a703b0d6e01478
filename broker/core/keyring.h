// The keyring opens a store's data key: it derives or loads the master key,
// unwraps the data key kept in the store's metadata, or — for a new store —
// creates and wraps one. It never replaces an existing key or key file.
#ifndef CREDBROKER_BROKER_CORE_KEYRING_H_
#define CREDBROKER_BROKER_CORE_KEYRING_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "broker/core/caller.h"
#include "broker/crypto/crypto.h"
#include "broker/store/store.h"
#include "common/secret.h"

namespace credbroker {

class AuditLog;

struct KeySource {
  // The 0600 master key file (created for a new store when missing).
  std::string key_file;
  // When set, the master key comes from this passphrase through Argon2id
  // instead of the key file.
  std::optional<SecretBytes> passphrase;
  // Cheaper Argon2id limits for tests.
  bool fast_kdf = false;
};

// FAILED_PRECONDITION with what to check when the key does not open the
// store (wrong key file, wrong passphrase, key file missing for an existing
// store, passphrase store opened with a key file or the other way round).
absl::StatusOr<std::unique_ptr<Sealer>> OpenDataKey(Store& store,
                                                    const KeySource& source);

// How an existing store's data key is wrapped: "passphrase", "key_file",
// or "" for a new store (no data key yet).
absl::StatusOr<std::string> StoredKeySource(Store& store);

// OK when `passphrase` unwraps the data key of this passphrase-protected
// store; PERMISSION_DENIED when it does not; FAILED_PRECONDITION for a
// store without a passphrase. Takes as long as opening the store (Argon2id).
absl::Status VerifyPassphrase(Store& store, const SecretBytes& passphrase);

// A change of what protects the store's key (LockService.Rekey).
struct KeyChange {
  // How to open the store now: `passphrase` for a passphrase store (required
  // there), `key_file` for a key-file store.
  KeySource current;
  // The new protection: `passphrase` set moves to (or changes) the
  // passphrase, with a fresh salt; unset moves to the key file `key_file`,
  // a fresh key written 0600 through a temporary file and a rename.
  KeySource next;
};

// Re-wraps the store's data key under a new master key. The data key is
// kept, so every sealed record, the audit chain and the PIN record stay
// valid. The new wrapped key, the store's key source and `audit` are
// written in one transaction; leaving key-file mode removes the old key
// file after it. PERMISSION_DENIED (nothing changed) when the current
// passphrase is missing or wrong; FAILED_PRECONDITION for a store without a
// key, a key file that does not open it, or a move to the key file of a
// key-file store; INVALID_ARGUMENT for a new passphrase under 8 characters.
absl::Status ChangeStoreKey(Store& store, const KeyChange& change,
                            AuditRecord audit,
                            const Store::AuditHashFn& hash_fn);

// ChangeStoreKey by `caller`, with its audit event (store.rekeyed, saying
// what protected the key and what does now) made here; a refused change
// is recorded as store.rekey_refused (best effort: nothing changed).
absl::Status ChangeStoreKeyAudited(Store& store, const KeyChange& change,
                                   AuditLog& audit, const Caller& caller);

// Reads the bearer token in `path` into a secret (never a std::string),
// creating a fresh one (0600) when absent. With `group`, the file is made
// 0640 and owned by that group (the clients of a broker that runs as its
// own user). FAILED_PRECONDITION for a file others (or another group) can
// read, or one too short or too long to be a token.
absl::StatusOr<SecretBytes> LoadOrCreateToken(
    const std::string& path, std::optional<gid_t> group = std::nullopt);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_KEYRING_H_
