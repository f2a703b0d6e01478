#include "broker/core/keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/common/status_macros.h"
#include "broker/core/audit.h"
#include "common/errors.h"
#include "common/files.h"

namespace credbroker {
namespace {

constexpr char kWrappedKey[] = "wrapped_data_key";
constexpr char kKeySource[] = "key_source";
constexpr char kKdfParams[] = "kdf_params";

std::string EncodeParams(const PassphraseParams& p) {
  return absl::StrCat("argon2id13:", absl::BytesToHexString(p.salt), ":",
                      p.opslimit, ":", p.memlimit);
}

absl::StatusOr<PassphraseParams> DecodeParams(absl::string_view s) {
  std::vector<std::string> parts = absl::StrSplit(s, ':');
  PassphraseParams p;
  if (parts.size() != 4 || parts[0] != "argon2id13" ||
      !absl::SimpleAtoi(parts[2], &p.opslimit) ||
      !absl::SimpleAtoi(parts[3], &p.memlimit)) {
    return absl::DataLossError(
        "the store's passphrase parameters are damaged (meta key kdf_params)");
  }
  p.salt = absl::HexStringToBytes(parts[1]);
  return p;
}

absl::StatusOr<std::string> GetMetaOrEmpty(Store& store,
                                           absl::string_view key) {
  absl::StatusOr<std::string> v = store.GetMeta(key);
  if (absl::IsNotFound(v.status())) return std::string();
  return v;
}

// Fsyncs the directory holding `path`, so that a rename or unlink in it
// survives a crash.
absl::Status SyncParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot sync ", dir, ": ", std::strerror(err)));
  }
  close(fd);
  return absl::OkStatus();
}

// A fresh master key in `path` (0600), written beside it and renamed over
// it, so that the file is either absent or whole.
absl::StatusOr<SecretBytes> WriteNewKeyFile(const std::string& path) {
  const std::string tmp = path + ".new";
  unlink(tmp.c_str());
  CB_ASSIGN_OR_RETURN(SecretBytes key,
                      LoadOrCreateKeyFile(tmp, /*create=*/true));
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(
        "cannot move the new key file into ", path, ": ", std::strerror(err)));
  }
  CB_RETURN_IF_ERROR(SyncParentDir(path));
  return key;
}

// The data key of `store`, opened the way `current` says (see KeyChange).
absl::StatusOr<SecretBytes> OpenCurrentDataKey(Store& store,
                                               const std::string& source,
                                               const KeySource& current) {
  CB_ASSIGN_OR_RETURN(std::string wrapped, store.GetMeta(kWrappedKey));
  SecretBytes master;
  if (source == "passphrase") {
    if (!current.passphrase.has_value() || current.passphrase->empty()) {
      return absl::PermissionDeniedError(
          "changing the store's key needs its current passphrase (field "
          "current_passphrase); nothing changed");
    }
    CB_ASSIGN_OR_RETURN(std::string encoded, store.GetMeta(kKdfParams));
    CB_ASSIGN_OR_RETURN(PassphraseParams params, DecodeParams(encoded));
    CB_ASSIGN_OR_RETURN(master,
                        DeriveKeyFromPassphrase(*current.passphrase, params));
  } else {
    CB_ASSIGN_OR_RETURN(
        master, LoadOrCreateKeyFile(current.key_file, /*create=*/false));
  }
  absl::StatusOr<SecretBytes> data_key = UnwrapKey(master, wrapped);
  if (data_key.ok()) return data_key;
  if (source == "passphrase") {
    return absl::PermissionDeniedError(
        "the current store passphrase is wrong; nothing changed");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("the key file ", current.key_file,
                   " does not open this store; nothing changed"));
}

// The master key `source` names: derived from the passphrase (new KDF
// parameters are stored for a new store) or read from the key file (created
// for a new store). FAILED_PRECONDITION when an existing store's key file is
// missing.
absl::StatusOr<SecretBytes> LoadMasterKey(Store& store, const KeySource& source,
                                          bool existing) {
  if (source.passphrase.has_value()) {
    PassphraseParams params;
    if (existing) {
      CB_ASSIGN_OR_RETURN(std::string encoded, store.GetMeta(kKdfParams));
      CB_ASSIGN_OR_RETURN(params, DecodeParams(encoded));
    } else {
      params = NewPassphraseParams(source.fast_kdf);
    }
    CB_ASSIGN_OR_RETURN(SecretBytes master,
                        DeriveKeyFromPassphrase(*source.passphrase, params));
    if (!existing) {
      CB_RETURN_IF_ERROR(store.PutMeta(kKdfParams, EncodeParams(params)));
    }
    return master;
  }
  absl::StatusOr<SecretBytes> loaded =
      LoadOrCreateKeyFile(source.key_file, /*create=*/!existing);
  if (absl::IsNotFound(loaded.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the master key file ", source.key_file,
        " is missing, but this store already holds credentials sealed "
        "under a key: restore the key file from your backup (a new key "
        "could not open them)"));
  }
  return loaded;
}

}  // namespace

absl::Status ChangeStoreKey(Store& store, const KeyChange& change,
                            AuditRecord audit,
                            const Store::AuditHashFn& hash_fn) {
  CB_ASSIGN_OR_RETURN(const std::string source, StoredKeySource(store));
  if (source.empty())
    return absl::FailedPreconditionError("the store has no key yet");
  const bool to_file = !change.next.passphrase.has_value();
  if (to_file && source == "key_file") {
    return absl::FailedPreconditionError(
        "the store's key is already a key file; nothing changed");
  }
  if (!to_file && change.next.passphrase->size() < 8) {
    return InvalidArgumentWithViolations(
        "the new passphrase is too short",
        {{"new_passphrase", "choose a passphrase of at least 8 characters"}});
  }
  CB_ASSIGN_OR_RETURN(SecretBytes data_key,
                      OpenCurrentDataKey(store, source, change.current));
  FlowWrite write;
  SecretBytes master;
  if (to_file) {
    CB_ASSIGN_OR_RETURN(master, WriteNewKeyFile(change.next.key_file));
    write.meta = {{kKeySource, "key_file"}, {kKdfParams, ""}};
  } else {
    const PassphraseParams params = NewPassphraseParams(change.next.fast_kdf);
    CB_ASSIGN_OR_RETURN(
        master, DeriveKeyFromPassphrase(*change.next.passphrase, params));
    write.meta = {{kKeySource, "passphrase"},
                  {kKdfParams, EncodeParams(params)}};
  }
  absl::StatusOr<std::string> wrapped = WrapKey(master, data_key);
  absl::Status written = wrapped.status();
  if (written.ok()) {
    write.meta.emplace_back(kWrappedKey, *wrapped);
    write.audit.push_back(std::move(audit));
    written = store.WriteFlow(write, hash_fn);
  }
  if (!written.ok()) {
    if (to_file) unlink(change.next.key_file.c_str());
    return written;
  }
  if (!to_file && source == "key_file") {
    if (unlink(change.current.key_file.c_str()) != 0 && errno != ENOENT) {
      return absl::UnavailableError(
          absl::StrCat("the store's key is now protected by the passphrase, "
                       "but the old key file ",
                       change.current.key_file, " could not be removed (",
                       std::strerror(errno), "): remove it by hand"));
    }
    CB_RETURN_IF_ERROR(SyncParentDir(change.current.key_file));
  }
  return absl::OkStatus();
}

absl::Status ChangeStoreKeyAudited(Store& store, const KeyChange& change,
                                   AuditLog& audit, const Caller& caller) {
  AuditRecord event = EventBy(
      "store.rekeyed", caller, "ok",
      absl::StrCat("the store's key was protected by ",
                   change.current.passphrase.has_value() ? "a passphrase"
                                                         : "the key file",
                   "; now by ",
                   change.next.passphrase.has_value()
                       ? "a passphrase"
                       : absl::StrCat("the key file ", change.next.key_file)));
  absl::Status changed =
      ChangeStoreKey(store, change, audit.Stamped(event), audit.HashFn());
  if (!changed.ok()) {
    event.kind = "store.rekey_refused";
    event.outcome = absl::StatusCodeToString(changed.code());
    event.detail = std::string(changed.message());
    audit.Record(std::move(event)).IgnoreError();
  }
  return changed;
}

absl::StatusOr<std::unique_ptr<Sealer>> OpenDataKey(Store& store,
                                                    const KeySource& source) {
  CB_ASSIGN_OR_RETURN(std::string wrapped, GetMetaOrEmpty(store, kWrappedKey));
  CB_ASSIGN_OR_RETURN(std::string stored_source,
                      GetMetaOrEmpty(store, kKeySource));
  const bool use_passphrase = source.passphrase.has_value();
  const std::string want_source = use_passphrase ? "passphrase" : "key_file";
  const bool existing = !wrapped.empty();

  if (existing && !stored_source.empty() && stored_source != want_source) {
    return absl::FailedPreconditionError(
        stored_source == "passphrase"
            ? "this store is protected by a passphrase: start the broker with "
              "--passphrase_fd or --passphrase_prompt"
            : absl::StrCat("this store is protected by the key file (",
                           source.key_file,
                           " by default): start the broker without a "
                           "passphrase option"));
  }

  CB_ASSIGN_OR_RETURN(SecretBytes master,
                      LoadMasterKey(store, source, existing));
  if (existing) {
    absl::StatusOr<SecretBytes> data_key = UnwrapKey(master, wrapped);
    if (!data_key.ok()) {
      return absl::FailedPreconditionError(
          use_passphrase
              ? "the passphrase does not open this store: check that you typed "
                "the passphrase the store was created with"
              : absl::StrCat("the master key in ", source.key_file,
                             " does not open this store: check that it is the "
                             "key file this data directory was created with "
                             "(nothing was changed)"));
    }
    return std::make_unique<Sealer>(std::move(*data_key));
  }

  SecretBytes data_key = NewDataKey();
  CB_ASSIGN_OR_RETURN(std::string new_wrapped, WrapKey(master, data_key));
  CB_RETURN_IF_ERROR(store.PutMeta(kKeySource, want_source));
  CB_RETURN_IF_ERROR(store.PutMeta(kWrappedKey, new_wrapped));
  return std::make_unique<Sealer>(std::move(data_key));
}

absl::StatusOr<std::string> StoredKeySource(Store& store) {
  CB_ASSIGN_OR_RETURN(std::string wrapped, GetMetaOrEmpty(store, kWrappedKey));
  if (wrapped.empty()) return std::string();
  CB_ASSIGN_OR_RETURN(std::string source, GetMetaOrEmpty(store, kKeySource));
  // Stores made before the source was recorded used the key file.
  return source.empty() ? std::string("key_file") : source;
}

absl::Status VerifyPassphrase(Store& store, const SecretBytes& passphrase) {
  CB_ASSIGN_OR_RETURN(std::string source, StoredKeySource(store));
  if (source != "passphrase") {
    return absl::FailedPreconditionError(
        "this store is not protected by a passphrase");
  }
  CB_ASSIGN_OR_RETURN(std::string encoded, store.GetMeta(kKdfParams));
  CB_ASSIGN_OR_RETURN(PassphraseParams params, DecodeParams(encoded));
  CB_ASSIGN_OR_RETURN(std::string wrapped, store.GetMeta(kWrappedKey));
  CB_ASSIGN_OR_RETURN(SecretBytes master,
                      DeriveKeyFromPassphrase(passphrase, params));
  if (!UnwrapKey(master, wrapped).ok()) {
    return absl::PermissionDeniedError("the store passphrase is wrong");
  }
  return absl::OkStatus();
}

namespace {

// A token file is a few dozen bytes; anything longer is not ours.
constexpr size_t kMaxTokenFile = 4096;

// Reads the token in the open file `fd` straight into a secret (no
// std::string copy), without the surrounding whitespace.
absl::StatusOr<SecretBytes> ReadTokenFrom(int fd, const std::string& path) {
  SecretBytes buf = SecretBytes::Zeroed(kMaxTokenFile + 1);
  size_t used = 0;
  while (used < buf.size()) {
    ssize_t n = read(fd, buf.mutable_data() + used, buf.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot read the token file ", path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxTokenFile) {
    return absl::FailedPreconditionError(
        absl::StrCat("the token file ", path,
                     " is too long to be a credbroker token; delete it and "
                     "restart the broker to "
                     "create a new one"));
  }
  return SecretBytes(absl::StripAsciiWhitespace(buf.Reveal().substr(0, used)));
}

// Makes an existing token file `path` 0640 and owned by `group`. The file is
// this user's (it wrote it), so only the group changes hands.
absl::Status ShareWithGroup(const std::string& path, gid_t group) {
  if (chown(path.c_str(), static_cast<uid_t>(-1), group) != 0 ||
      chmod(path.c_str(), 0640) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot give the token file %s to group %d: %s; make its directory "
        "setgid for "
        "that group (chmod g+s) or the broker's user a member of it",
        path, group, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SecretBytes> LoadOrCreateToken(const std::string& path,
                                              std::optional<gid_t> group) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    // The owner's group may read it when that group is the clients' group;
    // nobody else may.
    const mode_t shared_ok =
        fstat(fd, &st) == 0 && group.has_value() && st.st_gid == *group ? 040
                                                                        : 0;
    if ((st.st_mode & 077 & ~shared_ok) != 0) {
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrFormat("the token file %s can be read by other users (mode "
                          "%04o): anyone who read it "
                          "can call the broker. Delete it to get a new token "
                          "at this start (then give "
                          "the new one to your clients), or, if no one else "
                          "could have read it, run "
                          "chmod 600 %s",
                          path, st.st_mode & 07777, path));
    }
    absl::StatusOr<SecretBytes> token = ReadTokenFrom(fd, path);
    close(fd);
    if (!token.ok()) return token.status();
    if (token->size() < 32) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the token file ", path,
          " is too short to be a credbroker token; delete it and restart the "
          "broker to create a new one"));
    }
    if (group.has_value()) CB_RETURN_IF_ERROR(ShareWithGroup(path, *group));
    return token;
  }
  if (errno != ENOENT) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read the token file ", path, ": ", std::strerror(errno)));
  }
  std::string fresh = NewToken();
  SecretBytes token = SecretBytes::TakeFrom(fresh);
  // No trailing newline: clients that send the file's bytes as a header
  // value (grpc-js, grpcio) refuse one.
  absl::Status written = WritePrivateFile(path, token.Reveal(), true);
  if (absl::IsAlreadyExists(written)) return LoadOrCreateToken(path, group);
  CB_RETURN_IF_ERROR(written);
  if (group.has_value()) CB_RETURN_IF_ERROR(ShareWithGroup(path, *group));
  return token;
}

}  // namespace credbroker
