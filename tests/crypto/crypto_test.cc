#include "broker/crypto/crypto.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr size_t kNonce = 24;
constexpr size_t kTag = 16;

class CryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/crypto_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  static void WriteFile(const std::string& path, const std::string& contents,
                        mode_t mode) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
  }
  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
};

// --- InitCrypto ---------------------------------------------------------

TEST_F(CryptoTest, InitIsIdempotent) {
  EXPECT_TRUE(InitCrypto().ok());
  EXPECT_TRUE(InitCrypto().ok());
}

// --- Sealer ---------------------------------------------------------------

TEST_F(CryptoTest, SealOpenRoundTrip) {
  Sealer sealer(NewDataKey());
  SecretBytes plaintext("{\"secret_access_key\":\"wJalrXUtnFEMI\"}");
  std::string sealed = sealer.Seal(plaintext, "aws/default/3");
  EXPECT_EQ(sealed.size(), kNonce + plaintext.size() + kTag);
  EXPECT_THAT(sealed, Not(HasSubstr("wJalrXUtnFEMI")));
  absl::StatusOr<SecretBytes> opened =
      sealer.Open(sealed, "aws/default/3", "aws/default v3");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
}

TEST_F(CryptoTest, SealOpenEmptyAndLargePlaintext) {
  Sealer sealer(NewDataKey());
  SecretBytes empty;
  std::string sealed = sealer.Seal(empty, "ad");
  EXPECT_EQ(sealed.size(), kNonce + kTag);
  absl::StatusOr<SecretBytes> opened = sealer.Open(sealed, "ad", "x/y v1");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->empty());

  SecretBytes big(std::string(1 << 20, 'k'));
  absl::StatusOr<SecretBytes> big_opened =
      sealer.Open(sealer.Seal(big, "ad"), "ad", "x/y v2");
  ASSERT_TRUE(big_opened.ok());
  EXPECT_EQ(*big_opened, big);
}

TEST_F(CryptoTest, TamperingWithAnyByteIsDataLoss) {
  Sealer sealer(NewDataKey());
  SecretBytes plaintext("hunter2-but-longer");
  const std::string sealed = sealer.Seal(plaintext, "gcp/prod/1");
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] ^= 0x01;
    absl::StatusOr<SecretBytes> opened =
        sealer.Open(bad, "gcp/prod/1", "gcp/prod v1");
    ASSERT_FALSE(opened.ok()) << "byte " << i;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(opened.status().message(), HasSubstr("gcp/prod v1"));
    EXPECT_THAT(opened.status().message(), Not(HasSubstr("hunter2")));
  }
}

TEST_F(CryptoTest, TruncatedOrEmptyRecordIsDataLoss) {
  Sealer sealer(NewDataKey());
  const std::string sealed = sealer.Seal(SecretBytes("value"), "ad");
  for (size_t len :
       {size_t{0}, size_t{1}, kNonce, kNonce + kTag - 1, sealed.size() - 1}) {
    absl::StatusOr<SecretBytes> opened =
        sealer.Open(sealed.substr(0, len), "ad", "slack/default v2");
    ASSERT_FALSE(opened.ok()) << len;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(opened.status().message(), HasSubstr("slack/default v2"));
  }
  std::string extended = sealed + "x";
  EXPECT_EQ(sealer.Open(extended, "ad", "r").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(CryptoTest, WrongKeyIsDataLoss) {
  Sealer a(NewDataKey());
  Sealer b(NewDataKey());
  std::string sealed = a.Seal(SecretBytes("value"), "ad");
  absl::StatusOr<SecretBytes> opened = b.Open(sealed, "ad", "aws/default v3");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("aws/default v3"));
  EXPECT_THAT(opened.status().message(), HasSubstr("another key"));
}

TEST_F(CryptoTest, RecordMovedToAnotherIdentityIsDataLoss) {
  Sealer sealer(NewDataKey());
  std::string sealed = sealer.Seal(SecretBytes("value"), "aws/default/3");
  for (absl::string_view other :
       {"aws/default/4", "aws/prod/3", "gcp/default/3", "", "aws/default/3 "}) {
    absl::StatusOr<SecretBytes> opened =
        sealer.Open(sealed, other, "aws/prod v3");
    ASSERT_FALSE(opened.ok()) << other;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(opened.status().message(), HasSubstr("aws/prod v3"));
    EXPECT_THAT(opened.status().message(), HasSubstr("moved"));
    EXPECT_THAT(opened.status().message(), HasSubstr("tampered"));
  }
}

TEST_F(CryptoTest, EverySealUsesAFreshNonce) {
  Sealer sealer(NewDataKey());
  SecretBytes plaintext("same value");
  std::set<std::string> nonces;
  std::set<std::string> ciphertexts;
  constexpr int kSeals = 2000;
  for (int i = 0; i < kSeals; ++i) {
    std::string sealed = sealer.Seal(plaintext, "ad");
    nonces.insert(sealed.substr(0, kNonce));
    ciphertexts.insert(sealed);
  }
  EXPECT_EQ(nonces.size(), static_cast<size_t>(kSeals));
  EXPECT_EQ(ciphertexts.size(), static_cast<size_t>(kSeals));
}

TEST_F(CryptoTest, FingerprintIsKeyedAndStable) {
  SecretBytes key = NewDataKey();
  Sealer a(key);
  Sealer a_again(key);
  Sealer b(NewDataKey());
  SecretBytes value("AKIAIOSFODNN7EXAMPLE");
  std::string fp = a.Fingerprint(value);
  EXPECT_EQ(fp.size(), 16u);
  for (char c : fp) EXPECT_TRUE(std::isxdigit(c) && !std::isupper(c)) << fp;
  EXPECT_EQ(fp, a.Fingerprint(value));
  EXPECT_EQ(fp, a_again.Fingerprint(value));
  EXPECT_NE(fp, b.Fingerprint(value));
  EXPECT_NE(fp, a.Fingerprint(SecretBytes("AKIAIOSFODNN7EXAMPLF")));
  // Not an unkeyed hash of the value.
  EXPECT_FALSE(absl::StartsWith(Sha256Hex(value.Reveal()), fp));
  EXPECT_EQ(a.Fingerprint(SecretBytes()).size(), 16u);
}

// --- Wrap / unwrap --------------------------------------------------------

TEST_F(CryptoTest, WrapUnwrapRoundTrip) {
  SecretBytes master = NewDataKey();
  SecretBytes data_key = NewDataKey();
  absl::StatusOr<std::string> wrapped = WrapKey(master, data_key);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(wrapped->size(), kNonce + kKeyBytes + kTag);
  EXPECT_FALSE(absl::StrContains(*wrapped, data_key.Reveal()));
  absl::StatusOr<SecretBytes> unwrapped = UnwrapKey(master, *wrapped);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
  EXPECT_EQ(*unwrapped, data_key);
  // Wrapping twice gives different blobs (fresh nonce).
  EXPECT_NE(*wrapped, *WrapKey(master, data_key));
}

TEST_F(CryptoTest, UnwrapWithWrongMasterIsFailedPrecondition) {
  SecretBytes data_key = NewDataKey();
  std::string wrapped = *WrapKey(NewDataKey(), data_key);
  absl::StatusOr<SecretBytes> unwrapped = UnwrapKey(NewDataKey(), wrapped);
  ASSERT_FALSE(unwrapped.ok());
  EXPECT_EQ(unwrapped.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unwrapped.status().message(),
              HasSubstr("master key does not open this store"));
  EXPECT_THAT(unwrapped.status().message(), HasSubstr("--key_file"));
}

TEST_F(CryptoTest, UnwrapAlteredOrTruncatedBlobIsFailedPrecondition) {
  SecretBytes master = NewDataKey();
  std::string wrapped = *WrapKey(master, NewDataKey());
  std::string altered = wrapped;
  altered[kNonce + 3] ^= 0x80;
  EXPECT_EQ(UnwrapKey(master, altered).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(UnwrapKey(master, wrapped.substr(0, 10)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(UnwrapKey(master, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CryptoTest, WrappedKeyIsNotARecordAndViceVersa) {
  // A sealed record with the data key's bytes cannot pass as a wrapped key:
  // the associated data differs.
  SecretBytes master = NewDataKey();
  Sealer as_record(master);
  SecretBytes data_key = NewDataKey();
  std::string record = as_record.Seal(data_key, "aws/default/1");
  EXPECT_FALSE(UnwrapKey(master, record).ok());
  std::string wrapped = *WrapKey(master, data_key);
  EXPECT_FALSE(as_record.Open(wrapped, "aws/default/1", "aws/default v1").ok());
}

TEST_F(CryptoTest, WrapRejectsBadKeySizes) {
  EXPECT_EQ(WrapKey(SecretBytes("short"), NewDataKey()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WrapKey(NewDataKey(), SecretBytes("short")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(UnwrapKey(SecretBytes("short"), "x").ok());
}

TEST_F(CryptoTest, NewDataKeysAreRandom) {
  SecretBytes a = NewDataKey();
  SecretBytes b = NewDataKey();
  EXPECT_EQ(a.size(), kKeyBytes);
  EXPECT_NE(a, b);
}

// --- Key file -------------------------------------------------------------

TEST_F(CryptoTest, KeyFileCreatedThenReloaded) {
  const std::string path = dir_ + "/master.key";
  absl::StatusOr<SecretBytes> created = LoadOrCreateKeyFile(path, true);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->size(), kKeyBytes);

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Documented format: 64 lowercase hex characters and a newline.
  std::string contents = ReadAll(path);
  ASSERT_EQ(contents.size(), 65u);
  EXPECT_EQ(contents.back(), '\n');
  for (size_t i = 0; i < 64; ++i) {
    EXPECT_TRUE(std::isxdigit(contents[i]) && !std::isupper(contents[i]));
  }

  absl::StatusOr<SecretBytes> reloaded = LoadOrCreateKeyFile(path, false);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(*reloaded, *created);
  absl::StatusOr<SecretBytes> again = LoadOrCreateKeyFile(path, true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *created);
}

TEST_F(CryptoTest, KeyFileCreatedPrivateEvenWithPermissiveUmask) {
  mode_t old = umask(0);
  absl::StatusOr<SecretBytes> created = LoadOrCreateKeyFile(dir_ + "/k", true);
  umask(old);
  ASSERT_TRUE(created.ok());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(CryptoTest, KeyFileMissingWithoutCreateIsNotFound) {
  absl::StatusOr<SecretBytes> key =
      LoadOrCreateKeyFile(dir_ + "/absent.key", false);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(key.status().message(), HasSubstr("absent.key"));
  struct stat st;
  EXPECT_NE(stat((dir_ + "/absent.key").c_str(), &st), 0);
}

TEST_F(CryptoTest, KeyFileInMissingDirectoryFails) {
  absl::StatusOr<SecretBytes> key =
      LoadOrCreateKeyFile(dir_ + "/no/such/dir/k", true);
  EXPECT_FALSE(key.ok());
  EXPECT_NE(key.status().code(), absl::StatusCode::kOk);
}

TEST_F(CryptoTest, KeyFileReadableByOthersIsRefused) {
  const std::string path = dir_ + "/master.key";
  ASSERT_TRUE(LoadOrCreateKeyFile(path, true).ok());
  for (mode_t mode : {0640, 0604, 0660, 0644, 0602}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    absl::StatusOr<SecretBytes> key = LoadOrCreateKeyFile(path, false);
    ASSERT_FALSE(key.ok()) << std::oct << mode;
    EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(key.status().message(), HasSubstr("chmod 600"));
    EXPECT_THAT(key.status().message(), HasSubstr(path));
  }
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(LoadOrCreateKeyFile(path, false).ok());
}

TEST_F(CryptoTest, KeyFileWrongSizeOrFormatIsRefused) {
  const std::string path = dir_ + "/bad.key";
  for (const std::string& contents :
       {std::string(""), std::string(31, 'a'), std::string(33, 'a'),
        std::string(64, 'z') + "\n", std::string(63, 'a') + "\n",
        std::string(66, 'a'), std::string(64, 'a') + "\r\n",
        std::string(1000, 'a')}) {
    WriteFile(path, contents, 0600);
    absl::StatusOr<SecretBytes> key = LoadOrCreateKeyFile(path, true);
    ASSERT_FALSE(key.ok()) << contents.size();
    EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(key.status().message(), HasSubstr("not a credbroker key"));
    // A bad file is never replaced by a new key.
    EXPECT_EQ(ReadAll(path), contents);
  }
}

TEST_F(CryptoTest, KeyFileAcceptsHexWithoutNewlineAndRawBytes) {
  const std::string path = dir_ + "/k";
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "a5";
  WriteFile(path, hex, 0600);
  absl::StatusOr<SecretBytes> from_hex = LoadOrCreateKeyFile(path, false);
  ASSERT_TRUE(from_hex.ok()) << from_hex.status();
  EXPECT_EQ(from_hex->Reveal(), std::string(32, '\xa5'));

  WriteFile(path, std::string(32, '\xa5'), 0600);
  absl::StatusOr<SecretBytes> from_raw = LoadOrCreateKeyFile(path, false);
  ASSERT_TRUE(from_raw.ok()) << from_raw.status();
  EXPECT_EQ(*from_raw, *from_hex);
}

TEST_F(CryptoTest, KeyFileSymlinkIsRefused) {
  const std::string target = dir_ + "/real.key";
  const std::string link = dir_ + "/link.key";
  ASSERT_TRUE(LoadOrCreateKeyFile(target, true).ok());
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  absl::StatusOr<SecretBytes> key = LoadOrCreateKeyFile(link, true);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(key.status().message(), HasSubstr("symbolic link"));

  // A dangling symlink is not followed to create a file elsewhere.
  const std::string dangling = dir_ + "/dangling.key";
  ASSERT_EQ(symlink((dir_ + "/elsewhere").c_str(), dangling.c_str()), 0);
  EXPECT_FALSE(LoadOrCreateKeyFile(dangling, true).ok());
  struct stat st;
  EXPECT_NE(stat((dir_ + "/elsewhere").c_str(), &st), 0);
}

TEST_F(CryptoTest, KeyFileDirectoryIsRefused) {
  absl::StatusOr<SecretBytes> key = LoadOrCreateKeyFile(dir_, false);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CryptoTest, KeyFileEmptyPathIsInvalid) {
  EXPECT_EQ(LoadOrCreateKeyFile("", true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Passphrase -----------------------------------------------------------

TEST_F(CryptoTest, PassphraseParams) {
  PassphraseParams fast = NewPassphraseParams(true);
  EXPECT_EQ(fast.salt.size(), 16u);
  EXPECT_GT(fast.opslimit, 0u);
  EXPECT_GT(fast.memlimit, 0u);
  PassphraseParams moderate = NewPassphraseParams(false);
  EXPECT_GT(moderate.memlimit, fast.memlimit);
  EXPECT_NE(NewPassphraseParams(true).salt, fast.salt);
}

TEST_F(CryptoTest, PassphraseDerivationIsDeterministicPerSalt) {
  SecretBytes passphrase("correct horse battery staple");
  PassphraseParams params = NewPassphraseParams(true);
  absl::StatusOr<SecretBytes> k1 = DeriveKeyFromPassphrase(passphrase, params);
  absl::StatusOr<SecretBytes> k2 = DeriveKeyFromPassphrase(passphrase, params);
  ASSERT_TRUE(k1.ok()) << k1.status();
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k1->size(), kKeyBytes);
  EXPECT_EQ(*k1, *k2);

  PassphraseParams other = params;
  other.salt = NewPassphraseParams(true).salt;
  absl::StatusOr<SecretBytes> k3 = DeriveKeyFromPassphrase(passphrase, other);
  ASSERT_TRUE(k3.ok());
  EXPECT_NE(*k1, *k3);

  absl::StatusOr<SecretBytes> k4 = DeriveKeyFromPassphrase(
      SecretBytes("correct horse battery stapl"), params);
  ASSERT_TRUE(k4.ok());
  EXPECT_NE(*k1, *k4);
}

TEST_F(CryptoTest, PassphraseKeyWrapsDataKey) {
  PassphraseParams params = NewPassphraseParams(true);
  SecretBytes right = *DeriveKeyFromPassphrase(SecretBytes("right"), params);
  SecretBytes wrong = *DeriveKeyFromPassphrase(SecretBytes("wrong"), params);
  SecretBytes data_key = NewDataKey();
  std::string wrapped = *WrapKey(right, data_key);
  EXPECT_EQ(*UnwrapKey(right, wrapped), data_key);
  EXPECT_EQ(UnwrapKey(wrong, wrapped).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CryptoTest, PassphraseBadInputs) {
  PassphraseParams params = NewPassphraseParams(true);
  EXPECT_EQ(DeriveKeyFromPassphrase(SecretBytes(), params).status().code(),
            absl::StatusCode::kInvalidArgument);
  PassphraseParams bad_salt = params;
  bad_salt.salt = "short";
  EXPECT_EQ(DeriveKeyFromPassphrase(SecretBytes("p"), bad_salt).status().code(),
            absl::StatusCode::kInvalidArgument);
  PassphraseParams bad_limits = params;
  bad_limits.opslimit = 0;
  EXPECT_EQ(
      DeriveKeyFromPassphrase(SecretBytes("p"), bad_limits).status().code(),
      absl::StatusCode::kInvalidArgument);
  bad_limits = params;
  bad_limits.memlimit = uint64_t{1} << 62;
  EXPECT_EQ(
      DeriveKeyFromPassphrase(SecretBytes("p"), bad_limits).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// --- Tokens, ids, passwords, hashes --------------------------------------

bool IsUrlSafeBase64(absl::string_view s) {
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

TEST_F(CryptoTest, TokensAreUrlSafeAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    std::string token = NewToken();
    ASSERT_EQ(token.size(), 43u) << token;
    EXPECT_TRUE(IsUrlSafeBase64(token)) << token;
    EXPECT_TRUE(seen.insert(token).second);
  }
}

TEST_F(CryptoTest, RandomHex) {
  EXPECT_EQ(RandomHex(0), "");
  std::string id = RandomHex(16);
  ASSERT_EQ(id.size(), 32u);
  for (char c : id) EXPECT_TRUE(std::isxdigit(c) && !std::isupper(c));
  EXPECT_NE(RandomHex(16), id);
}

TEST_F(CryptoTest, RandomBytesFillsBuffer) {
  uint8_t a[64] = {};
  uint8_t b[64] = {};
  RandomBytes(a, sizeof(a));
  RandomBytes(b, sizeof(b));
  EXPECT_NE(std::string(a, a + 64), std::string(b, b + 64));
  RandomBytes(nullptr, 0);  // No-op.
}

TEST_F(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_FALSE(ConstantTimeEquals("token", "tokem"));
  EXPECT_FALSE(ConstantTimeEquals("token", "Token"));
  EXPECT_FALSE(ConstantTimeEquals("token", "token2"));
  EXPECT_FALSE(ConstantTimeEquals("token2", "token"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_FALSE(ConstantTimeEquals("x", ""));
  std::string with_nul("a\0b", 3);
  EXPECT_TRUE(ConstantTimeEquals(with_nul, std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(with_nul, std::string("a\0c", 3)));
}

TEST_F(CryptoTest, GeneratedPasswordsHaveLengthAndEveryClass) {
  const std::string symbols = "-_.~!@#%^*+=";
  std::set<std::string> seen;
  for (size_t length : {4, 5, 8, 16, 32, 64, 128}) {
    for (int i = 0; i < 50; ++i) {
      SecretBytes password = GeneratePassword(length);
      std::string p(password.Reveal());
      ASSERT_EQ(p.size(), length);
      bool lower = false, upper = false, digit = false, symbol = false;
      for (char c : p) {
        if (std::islower(static_cast<unsigned char>(c))) {
          lower = true;
        } else if (std::isupper(static_cast<unsigned char>(c))) {
          upper = true;
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
          digit = true;
        } else if (symbols.find(c) != std::string::npos) {
          symbol = true;
        } else {
          ADD_FAILURE() << "unexpected character " << static_cast<int>(c);
        }
      }
      EXPECT_TRUE(lower && upper && digit && symbol) << p;
      if (length >= 16) {
        EXPECT_TRUE(seen.insert(p).second);
      }
    }
  }
}

TEST_F(CryptoTest, ShortPasswords) {
  EXPECT_TRUE(GeneratePassword(0).empty());
  EXPECT_EQ(GeneratePassword(1).size(), 1u);
  SecretBytes three = GeneratePassword(3);
  ASSERT_EQ(three.size(), 3u);
}

TEST_F(CryptoTest, Sha256HexKnownAnswers) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(CryptoTest, DigestOfKnownAnswers) {
  auto hex = [](const Digest& d) {
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  };
  // BLAKE2b-256 (RFC 7693 with a 32-byte output).
  EXPECT_EQ(hex(DigestOf("")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(hex(DigestOf("abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  EXPECT_NE(DigestOf(std::string("a\0b", 3)), DigestOf(std::string("a\0c", 3)));
}

}  // namespace
}  // namespace credbroker
