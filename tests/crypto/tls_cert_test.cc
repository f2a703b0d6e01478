#include "broker/crypto/tls_cert.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "broker/crypto/crypto.h"
#include "broker/crypto/password_hash.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class TlsCertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cbtls.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cert_ = dir_ + "/tls.crt";
    key_ = dir_ + "/tls.key";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  int Mode(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777)
                                        : -1;
  }
  std::string dir_, cert_, key_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(TlsCertTest, GeneratedOnceThenReused) {
  absl::StatusOr<TlsIdentity> first = LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->generated);
  EXPECT_EQ(Mode(key_), 0600);
  EXPECT_EQ(Mode(cert_), 0600);
  EXPECT_TRUE(absl::StartsWith(first->cert_pem, "-----BEGIN CERTIFICATE-----"));
  EXPECT_EQ(first->fingerprint.size(), 32u * 3 - 1);  // "AB:" x 32.
  EXPECT_EQ(first->not_after, now_ + absl::Hours(24 * 365));
  absl::StatusOr<TlsIdentity> again = LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->generated);
  EXPECT_EQ(again->fingerprint, first->fingerprint);
  EXPECT_EQ(again->key_pem, first->key_pem);
  absl::StatusOr<std::string> fp = CertificateFingerprint(again->cert_pem);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(*fp, first->fingerprint);
}

TEST_F(TlsCertTest, RenewedWhenCloseToExpiryWithTheSameKey) {
  absl::StatusOr<TlsIdentity> first = LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::string> key_before = ReadFile(key_);
  ASSERT_TRUE(key_before.ok());
  const absl::Time later_now = now_ + absl::Hours(24 * 340);
  absl::StatusOr<TlsIdentity> later =
      LoadOrCreateSelfSigned(cert_, key_, later_now);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(later->generated);
  EXPECT_TRUE(later->renewed);
  EXPECT_TRUE(later->replaced.empty()) << later->replaced;
  EXPECT_NE(later->fingerprint, first->fingerprint);
  EXPECT_EQ(later->not_after, later_now + absl::Hours(24 * 365));
  // Only the certificate changed: the key file is the same bytes, and the
  // pair on disk is the renewed one and matches.
  EXPECT_EQ(*ReadFile(key_), *key_before);
  absl::StatusOr<TlsIdentity> on_disk = LoadTlsIdentity(cert_, key_);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status();
  EXPECT_EQ(on_disk->fingerprint, later->fingerprint);
  EXPECT_EQ(Mode(cert_), 0600);
}

// An interrupted write (a new key without its certificate), a foreign key
// or a certificate that does not parse: a new pair, and the reason.
TEST_F(TlsCertTest, AMismatchedOrDamagedPairIsReplacedAndSaysWhy) {
  ASSERT_TRUE(LoadOrCreateSelfSigned(cert_, key_, now_).ok());
  absl::StatusOr<TlsIdentity> other =
      GenerateSelfSigned(SelfSignedOptions(), now_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WritePrivateFile(key_, other->key_pem.Reveal(), false).ok());
  absl::StatusOr<TlsIdentity> fixed = LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_TRUE(fixed->generated);
  EXPECT_TRUE(absl::StrContains(fixed->replaced, "does not belong"))
      << fixed->replaced;
  EXPECT_FALSE(absl::StrContains(fixed->replaced, "PRIVATE KEY"));
  EXPECT_NE(fixed->key_pem, other->key_pem);
  ASSERT_TRUE(LoadTlsIdentity(cert_, key_).ok());
  EXPECT_EQ(Mode(key_), 0600);

  ASSERT_TRUE(WritePrivateFile(cert_, "not a certificate", false).ok());
  absl::StatusOr<TlsIdentity> reparsed =
      LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_TRUE(absl::StrContains(reparsed->replaced, "does not parse"))
      << reparsed->replaced;
  ASSERT_TRUE(LoadTlsIdentity(cert_, key_).ok());

  ASSERT_EQ(unlink(cert_.c_str()), 0);
  absl::StatusOr<TlsIdentity> remade =
      LoadOrCreateSelfSigned(cert_, key_, now_);
  ASSERT_TRUE(remade.ok()) << remade.status();
  EXPECT_TRUE(absl::StrContains(remade->replaced, "is missing"))
      << remade->replaced;
  ASSERT_TRUE(LoadTlsIdentity(cert_, key_).ok());
}

// Written through a temporary file and a rename: nothing else is left in
// the directory, the key is 0600, and a key others can read is refused
// rather than replaced.
TEST_F(TlsCertTest, WrittenAtomicallyAndPrivately) {
  ASSERT_TRUE(LoadOrCreateSelfSigned(cert_, key_, now_).ok());
  ASSERT_TRUE(
      LoadOrCreateSelfSigned(cert_, key_, now_ + absl::Hours(24 * 340)).ok());
  std::vector<std::string> names;
  DIR* dir = opendir(dir_.c_str());
  ASSERT_NE(dir, nullptr);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"tls.crt", "tls.key"}));
  EXPECT_EQ(Mode(key_), 0600);
  chmod(key_.c_str(), 0640);
  absl::StatusOr<TlsIdentity> exposed =
      LoadOrCreateSelfSigned(cert_, key_, now_);
  EXPECT_EQ(exposed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(exposed.status().message(), "chmod 600"));
}

TEST_F(TlsCertTest, MismatchedOrExposedKeyIsRefused) {
  ASSERT_TRUE(LoadOrCreateSelfSigned(cert_, key_, now_).ok());
  absl::StatusOr<TlsIdentity> other =
      GenerateSelfSigned(SelfSignedOptions(), now_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WritePrivateFile(key_, other->key_pem.Reveal(), false).ok());
  absl::StatusOr<TlsIdentity> mismatch = LoadTlsIdentity(cert_, key_);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(mismatch.status().message(), "does not belong"));
  // No key material in the message.
  EXPECT_FALSE(absl::StrContains(mismatch.status().message(), "PRIVATE KEY"));
  chmod(key_.c_str(), 0644);
  EXPECT_EQ(LoadTlsIdentity(cert_, key_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      LoadTlsIdentity(dir_ + "/absent.crt", key_).status().code(),
      absl::StatusCode::kFailedPrecondition);  // Key check first: still 0644.
  chmod(key_.c_str(), 0600);
  EXPECT_EQ(LoadTlsIdentity(dir_ + "/absent.crt", key_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(PasswordHashTest, Argon2idHashVerifiesOnlyTheSamePassword) {
  ASSERT_TRUE(InitCrypto().ok());
  absl::StatusOr<std::string> hash = HashPassword(SecretBytes("1234"));
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(absl::StartsWith(*hash, "$argon2id$"));
  EXPECT_FALSE(absl::StrContains(*hash, "1234"));
  EXPECT_TRUE(*VerifyPassword(*hash, SecretBytes("1234")));
  EXPECT_FALSE(*VerifyPassword(*hash, SecretBytes("1235")));
  EXPECT_FALSE(VerifyPassword("plain", SecretBytes("1234")).ok());
  EXPECT_FALSE(HashPassword(SecretBytes("")).ok());
}

}  // namespace
}  // namespace credbroker
