#include "broker/crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "broker/common/status_macros.h"

namespace credbroker {
namespace {

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
              "kKeyBytes must match the AEAD key size");
static_assert(kKeyBytes == crypto_kdf_KEYBYTES,
              "kKeyBytes must match the KDF key size");

// Associated data of the wrapped data key: a wrapped key is never mistaken
// for (or swapped with) a sealed record.
constexpr char kWrapAssociatedData[] = "credbroker data key v1";
// crypto_kdf context (exactly 8 bytes) and subkey id of the fingerprint key.
constexpr char kFingerprintContext[crypto_kdf_CONTEXTBYTES + 1] = "cbfprint";
constexpr uint64_t kFingerprintSubkeyId = 1;
constexpr size_t kFingerprintBytes = 8;
// The audit chain's MAC key: another subkey of the data key.
constexpr char kAuditContext[crypto_kdf_CONTEXTBYTES + 1] = "cbauditc";
constexpr uint64_t kAuditSubkeyId = 2;

// Key file: 64 lowercase hex characters and a newline (what we write), or the
// same without the newline, or 32 raw bytes (accepted on read).
constexpr size_t kHexKeyChars = 2 * kKeyBytes;
constexpr off_t kMaxKeyFileBytes = 256;

constexpr char kPasswordSymbols[] = "-_.~!@#%^*+=";
constexpr char kLower[] = "abcdefghijklmnopqrstuvwxyz";
constexpr char kUpper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr char kDigits[] = "0123456789";

// sodium_init() once; every entry point calls this so that a caller who forgot
// InitCrypto() still gets a seeded CSPRNG and the fast implementations.
bool EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "credbroker: fatal crypto error: %s\n", what);
  std::abort();
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string ErrnoText(int err) { return std::strerror(err); }

// AEAD-seals `plaintext` under `key` with a fresh random nonce.
std::string AeadSeal(const SecretBytes& key, const uint8_t* plaintext,
                     size_t size, absl::string_view associated_data) {
  std::string out(kNonceBytes + size + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(&out[0]);
  randombytes_buf(nonce, kNonceBytes);
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          nonce + kNonceBytes, &written, plaintext, size,
          Bytes(associated_data), associated_data.size(), nullptr, nonce,
          key.data()) != 0 ||
      written != size + kTagBytes) {
    Fatal("crypto_aead_xchacha20poly1305_ietf_encrypt failed");
  }
  return out;
}

// Opens nonce||ciphertext; false when it does not authenticate (wrong key,
// altered bytes, other associated data) or is too short.
bool AeadOpen(const SecretBytes& key, absl::string_view sealed,
              absl::string_view associated_data, SecretBytes* out) {
  if (key.size() != kKeyBytes) return false;
  if (sealed.size() < kNonceBytes + kTagBytes) return false;
  const unsigned char* nonce = Bytes(sealed);
  const size_t ciphertext_size = sealed.size() - kNonceBytes;
  SecretBytes plaintext = SecretBytes::Zeroed(ciphertext_size - kTagBytes);
  // Zeroed(0) has no buffer; libsodium still wants a writable pointer.
  unsigned char empty_sink = 0;
  unsigned char* dest =
      plaintext.empty() ? &empty_sink : plaintext.mutable_data();
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          dest, &written, nullptr, nonce + kNonceBytes, ciphertext_size,
          Bytes(associated_data), associated_data.size(), nonce,
          key.data()) != 0) {
    return false;  // libsodium leaves nothing of the plaintext behind.
  }
  if (written != plaintext.size()) return false;
  *out = std::move(plaintext);
  return true;
}

std::string ToHex(const uint8_t* data, size_t size) {
  std::string hex(2 * size + 1, '\0');
  sodium_bin2hex(&hex[0], hex.size(), data, size);
  hex.resize(2 * size);
  return hex;
}

// Decodes the contents of a key file (see kHexKeyChars) into a key.
absl::StatusOr<SecretBytes> ParseKeyFile(const SecretBytes& contents,
                                         const std::string& path) {
  if (contents.size() == kKeyBytes) return contents;  // Raw 32 bytes.
  size_t hex_chars = contents.size();
  if (hex_chars == kHexKeyChars + 1 && contents.data()[kHexKeyChars] == '\n') {
    hex_chars = kHexKeyChars;
  }
  SecretBytes key = SecretBytes::Zeroed(kKeyBytes);
  size_t decoded = 0;
  const char* end = nullptr;
  if (hex_chars != kHexKeyChars ||
      sodium_hex2bin(key.mutable_data(), key.size(),
                     reinterpret_cast<const char*>(contents.data()), hex_chars,
                     nullptr, &decoded, &end) != 0 ||
      decoded != kKeyBytes ||
      end != reinterpret_cast<const char*>(contents.data()) + hex_chars) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the master key file %s is not a credbroker key (%d bytes; expected "
        "64 hex characters and a newline, or 32 raw bytes): restore the key "
        "file from your backup, or point --key_file at the right file",
        path, contents.size()));
  }
  return key;
}

absl::StatusOr<SecretBytes> ReadKeyFile(const std::string& path, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot stat the master key file ", path, ": ", ErrnoText(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the master key file ", path,
        " is not a regular file: point --key_file at the key file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the master key file %s is accessible by other users (mode %04o): "
        "run `chmod 600 %s` and check that nobody else copied it",
        path, st.st_mode & 07777, path));
  }
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the master key file ", path,
        " is owned by another user: it must belong to the user running the "
        "broker"));
  }
  if (st.st_size > kMaxKeyFileBytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the master key file %s is not a credbroker key (%d bytes; expected "
        "65): point --key_file at the right file",
        path, static_cast<int64_t>(st.st_size)));
  }
  // Read straight into wiped memory, one byte more than the size we saw so
  // that a file growing under us is noticed.
  SecretBytes buffer = SecretBytes::Zeroed(kMaxKeyFileBytes + 1);
  size_t total = 0;
  while (total < buffer.size()) {
    ssize_t n = read(fd, buffer.mutable_data() + total, buffer.size() - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot read the master key file ", path, ": ", ErrnoText(errno)));
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  SecretBytes contents(
      absl::string_view(reinterpret_cast<const char*>(buffer.data()), total));
  return ParseKeyFile(contents, path);
}

absl::Status FsyncDirectoryOf(const std::string& path) {
  std::string dir = ".";
  size_t slash = path.rfind('/');
  if (slash == 0) {
    dir = "/";
  } else if (slash != std::string::npos) {
    dir = path.substr(0, slash);
  }
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open directory ", dir, " to sync it: ", ErrnoText(errno)));
  }
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot sync directory ", dir, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

// Creates the key file exclusively; ALREADY_EXISTS when another process won
// the race.
absl::StatusOr<SecretBytes> CreateKeyFile(const std::string& path) {
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) return absl::AlreadyExistsError(path);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the master key file ", path, ": ", ErrnoText(err),
        " (the directory must exist and be writable)"));
  }
  SecretBytes key = SecretBytes::Zeroed(kKeyBytes);
  randombytes_buf(key.mutable_data(), key.size());
  SecretBytes hex = SecretBytes::Zeroed(kHexKeyChars + 1);
  sodium_bin2hex(reinterpret_cast<char*>(hex.mutable_data()), hex.size(),
                 key.data(), key.size());
  hex.mutable_data()[kHexKeyChars] = '\n';  // Replaces the NUL.

  auto fail = [&](absl::string_view what, int err) {
    close(fd);
    unlink(path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write the master key file ", path, ": ", what,
                     ": ", ErrnoText(err)));
  };
  // umask cannot widen the mode, but make sure it is exactly 0600.
  if (fchmod(fd, 0600) != 0) return fail("chmod", errno);
  size_t total = 0;
  while (total < hex.size()) {
    ssize_t n = write(fd, hex.data() + total, hex.size() - total);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    total += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync", errno);
  if (close(fd) != 0) {
    int err = errno;
    unlink(path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write the master key file ", path,
                     ": close: ", ErrnoText(err)));
  }
  CB_RETURN_IF_ERROR(FsyncDirectoryOf(path));
  return key;
}

}  // namespace

absl::Status InitCrypto() {
  if (!EnsureSodium()) {
    return absl::InternalError(
        "libsodium failed to initialize (sodium_init): no usable random "
        "source?");
  }
  return absl::OkStatus();
}

absl::StatusOr<SecretBytes> LoadOrCreateKeyFile(const std::string& path,
                                                bool create) {
  CB_RETURN_IF_ERROR(InitCrypto());
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "no master key file path given: set --key_file");
  }
  // Two passes at most: a concurrent creator may win between our open and
  // our create.
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      absl::StatusOr<SecretBytes> key = ReadKeyFile(path, fd);
      close(fd);
      return key;
    }
    int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the master key file ", path,
          " is a symbolic link: point --key_file at the file itself"));
    }
    if (err != ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot open the master key file ", path, ": ", ErrnoText(err)));
    }
    if (!create) {
      return absl::NotFoundError(
          absl::StrCat("the master key file ", path, " does not exist"));
    }
    absl::StatusOr<SecretBytes> created = CreateKeyFile(path);
    if (!absl::IsAlreadyExists(created.status())) return created;
  }
  return absl::UnavailableError(absl::StrCat(
      "the master key file ", path,
      " keeps appearing and disappearing: is another broker starting?"));
}

PassphraseParams NewPassphraseParams(bool fast) {
  EnsureSodium();
  PassphraseParams params;
  params.salt.resize(crypto_pwhash_SALTBYTES);
  randombytes_buf(&params.salt[0], params.salt.size());
  params.opslimit = fast ? crypto_pwhash_OPSLIMIT_INTERACTIVE
                         : crypto_pwhash_OPSLIMIT_MODERATE;
  params.memlimit = fast ? crypto_pwhash_MEMLIMIT_INTERACTIVE
                         : crypto_pwhash_MEMLIMIT_MODERATE;
  return params;
}

absl::StatusOr<SecretBytes> DeriveKeyFromPassphrase(
    const SecretBytes& passphrase, const PassphraseParams& params) {
  CB_RETURN_IF_ERROR(InitCrypto());
  if (passphrase.empty()) {
    return absl::InvalidArgumentError(
        "the passphrase is empty: type the store's passphrase");
  }
  if (passphrase.size() > crypto_pwhash_PASSWD_MAX) {
    return absl::InvalidArgumentError("the passphrase is too long");
  }
  if (params.salt.size() != crypto_pwhash_SALTBYTES) {
    return absl::InvalidArgumentError(
        absl::StrFormat("passphrase salt must be %d bytes, got %d",
                        crypto_pwhash_SALTBYTES, params.salt.size()));
  }
  // Reject parameters libsodium would refuse, or that would let a damaged
  // store make us allocate without bound.
  constexpr uint64_t kMaxOpslimit =
      uint64_t{crypto_pwhash_OPSLIMIT_SENSITIVE} * 4;
  constexpr uint64_t kMaxMemlimit =
      uint64_t{crypto_pwhash_MEMLIMIT_SENSITIVE} * 4;  // 4 GiB.
  if (params.opslimit < crypto_pwhash_OPSLIMIT_MIN ||
      params.opslimit > kMaxOpslimit ||
      params.memlimit < crypto_pwhash_MEMLIMIT_MIN ||
      params.memlimit > kMaxMemlimit ||
      params.memlimit > std::numeric_limits<size_t>::max()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Argon2id parameters out of range (opslimit %d, memlimit %d)",
        params.opslimit, params.memlimit));
  }
  SecretBytes key = SecretBytes::Zeroed(kKeyBytes);
  if (crypto_pwhash(key.mutable_data(), key.size(),
                    reinterpret_cast<const char*>(passphrase.data()),
                    passphrase.size(), Bytes(params.salt), params.opslimit,
                    static_cast<size_t>(params.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "Argon2id could not allocate %d MiB to derive the key from the "
        "passphrase",
        params.memlimit >> 20));
  }
  return key;
}

absl::StatusOr<std::string> WrapKey(const SecretBytes& master,
                                    const SecretBytes& data_key) {
  CB_RETURN_IF_ERROR(InitCrypto());
  if (master.size() != kKeyBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "master key must be %d bytes, got %d", kKeyBytes, master.size()));
  }
  if (data_key.size() != kKeyBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "data key must be %d bytes, got %d", kKeyBytes, data_key.size()));
  }
  return AeadSeal(master, data_key.data(), data_key.size(),
                  kWrapAssociatedData);
}

absl::StatusOr<SecretBytes> UnwrapKey(const SecretBytes& master,
                                      absl::string_view wrapped) {
  CB_RETURN_IF_ERROR(InitCrypto());
  SecretBytes data_key;
  if (!AeadOpen(master, wrapped, kWrapAssociatedData, &data_key) ||
      data_key.size() != kKeyBytes) {
    return absl::FailedPreconditionError(
        "the master key does not open this store: check the key file "
        "(--key_file) or passphrase; the wrapped data key was not changed");
  }
  return data_key;
}

SecretBytes NewDataKey() {
  EnsureSodium();
  SecretBytes key = SecretBytes::Zeroed(kKeyBytes);
  crypto_aead_xchacha20poly1305_ietf_keygen(key.mutable_data());
  return key;
}

Sealer::Sealer(SecretBytes data_key) : key_(std::move(data_key)) {
  if (!EnsureSodium()) Fatal("sodium_init failed");
  if (key_.size() != kKeyBytes) Fatal("Sealer needs a 32-byte data key");
  fingerprint_key_ = SecretBytes::Zeroed(crypto_generichash_KEYBYTES);
  if (crypto_kdf_derive_from_key(fingerprint_key_.mutable_data(),
                                 fingerprint_key_.size(), kFingerprintSubkeyId,
                                 kFingerprintContext, key_.data()) != 0) {
    Fatal("crypto_kdf_derive_from_key failed");
  }
  audit_key_ = SecretBytes::Zeroed(crypto_generichash_KEYBYTES);
  if (crypto_kdf_derive_from_key(audit_key_.mutable_data(), audit_key_.size(),
                                 kAuditSubkeyId, kAuditContext,
                                 key_.data()) != 0) {
    Fatal("crypto_kdf_derive_from_key failed");
  }
}

std::string Sealer::AuditMac(absl::string_view data) const {
  uint8_t mac[crypto_generichash_BYTES];
  crypto_generichash(mac, sizeof(mac),
                     reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                     audit_key_.data(), audit_key_.size());
  return ToHex(mac, sizeof(mac));
}

std::string Sealer::Seal(const SecretBytes& plaintext,
                         absl::string_view associated_data) const {
  return AeadSeal(key_, plaintext.data(), plaintext.size(), associated_data);
}

absl::StatusOr<SecretBytes> Sealer::Open(absl::string_view sealed,
                                         absl::string_view associated_data,
                                         absl::string_view record_name) const {
  SecretBytes plaintext;
  if (!AeadOpen(key_, sealed, associated_data, &plaintext)) {
    return absl::DataLossError(absl::StrCat(
        "stored credential ", record_name,
        " cannot be opened: it was tampered with, moved from another record, "
        "or sealed under another key"));
  }
  return plaintext;
}

std::string Sealer::Fingerprint(const SecretBytes& value) const {
  // BLAKE2b's shortest output is 16 bytes; the fingerprint is its first 8.
  uint8_t hash[crypto_generichash_BYTES_MIN];
  static_assert(kFingerprintBytes <= sizeof(hash), "fingerprint too long");
  crypto_generichash(hash, sizeof(hash), value.data(), value.size(),
                     fingerprint_key_.data(), fingerprint_key_.size());
  return ToHex(hash, kFingerprintBytes);
}

std::string NewToken() {
  EnsureSodium();
  uint8_t raw[32];
  randombytes_buf(raw, sizeof(raw));
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  char encoded[sodium_base64_ENCODED_LEN(sizeof(raw), kVariant)];
  sodium_bin2base64(encoded, sizeof(encoded), raw, sizeof(raw), kVariant);
  sodium_memzero(raw, sizeof(raw));
  std::string token(encoded);
  sodium_memzero(encoded, sizeof(encoded));
  return token;
}

std::string RandomHex(size_t bytes) {
  EnsureSodium();
  std::string raw(bytes, '\0');
  if (bytes > 0) randombytes_buf(&raw[0], bytes);
  return ToHex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.empty() && b.empty()) return true;
  if (a.size() != b.size()) {
    // Same amount of work as a comparison of `a` with an equal-length value,
    // so that only the length difference is observable.
    if (!a.empty()) {
      volatile int sink = sodium_memcmp(a.data(), a.data(), a.size());
      (void)sink;
    }
    return false;
  }
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void RandomBytes(uint8_t* out, size_t size) {
  EnsureSodium();
  if (size > 0) randombytes_buf(out, size);
}

SecretBytes GeneratePassword(size_t length) {
  EnsureSodium();
  const std::string alphabet =
      absl::StrCat(kLower, kUpper, kDigits, kPasswordSymbols);
  const absl::string_view classes[] = {kLower, kUpper, kDigits,
                                       kPasswordSymbols};
  constexpr size_t kClasses = sizeof(classes) / sizeof(classes[0]);
  SecretBytes password = SecretBytes::Zeroed(length);
  // Rejection sampling over whole passwords: draw uniformly from the
  // alphabet and start over until every class appears (when the length
  // allows it). The result is uniform over the passwords that qualify.
  while (true) {
    bool seen[kClasses] = {};
    for (size_t i = 0; i < length; ++i) {
      char c =
          alphabet[randombytes_uniform(static_cast<uint32_t>(alphabet.size()))];
      password.mutable_data()[i] = static_cast<uint8_t>(c);
      for (size_t k = 0; k < kClasses; ++k) {
        if (classes[k].find(c) != absl::string_view::npos) seen[k] = true;
      }
    }
    size_t distinct = 0;
    for (bool s : seen) distinct += s ? 1 : 0;
    if (distinct >= std::min(length, kClasses)) break;
  }
  return password;
}

std::string Sha256Hex(absl::string_view data) {
  EnsureSodium();
  uint8_t hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, Bytes(data), data.size());
  return ToHex(hash, sizeof(hash));
}

Digest DigestOf(absl::string_view data) {
  EnsureSodium();
  static_assert(std::tuple_size<Digest>::value == crypto_generichash_BYTES);
  Digest digest;
  crypto_generichash(digest.data(), digest.size(), Bytes(data), data.size(),
                     nullptr, 0);
  return digest;
}

}  // namespace credbroker
