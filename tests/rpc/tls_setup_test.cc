#include "broker/rpc/tls_setup.h"

#include <stdlib.h>

#include <atomic>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "broker/crypto/tls_cert.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class TlsSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cbtlss.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cert_ = dir_ + "/tls.crt";
    key_ = dir_ + "/tls.key";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string OnDiskFingerprint() {
    absl::StatusOr<std::string> pem = ReadFile(cert_);
    if (!pem.ok()) return "";
    absl::StatusOr<std::string> fp = CertificateFingerprint(*pem);
    return fp.ok() ? *fp : "";
  }

  std::string dir_, cert_, key_;
};

TEST_F(TlsSetupTest, TheRenewerRenewsOnItsTimerOnceTheCertificateIsDue) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TlsIdentity> first =
      LoadOrCreateSelfSigned(cert_, key_, start);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::string> key_before = ReadFile(key_);
  ASSERT_TRUE(key_before.ok());
  std::atomic<int64_t> days_later{0};
  TlsSettings settings;
  settings.refresh_interval = absl::Milliseconds(20);
  TlsRenewer renewer(cert_, key_, settings, [&] {
    return start + absl::Hours(24 * days_later.load());
  });
  // 340 days on, 25 days are left: less than the 30 of renew_before.
  days_later.store(340);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (OnDiskFingerprint() == first->fingerprint && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::StatusOr<TlsIdentity> renewed = LoadTlsIdentity(cert_, key_);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_NE(renewed->fingerprint, first->fingerprint);
  EXPECT_GE(renewed->not_after, start + absl::Hours(24 * (340 + 364)));
  EXPECT_EQ(*ReadFile(key_), *key_before);
}

TEST_F(TlsSetupTest, ConfigureTlsServesTheFilesAndRenewsOnlyItsOwnPair) {
  ServerOptions options;
  options.listen = {"unix:" + dir_ + "/b.sock", "127.0.0.1:0"};
  std::string note;
  TlsSettings settings;
  absl::StatusOr<std::unique_ptr<TlsRenewer>> own =
      ConfigureTls(dir_, settings, options, note);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_NE(*own, nullptr);
  EXPECT_EQ(options.tls_cert_file, cert_);
  EXPECT_EQ(options.tls_key_file, key_);
  EXPECT_TRUE(absl::StrContains(note, "(generated now)")) << note;
  EXPECT_TRUE(absl::StrContains(note, OnDiskFingerprint())) << note;

  // A pair the user names is served as is: nothing to renew.
  ServerOptions named_options;
  named_options.listen = {"127.0.0.1:0"};
  TlsSettings named;
  named.cert_file = cert_;
  named.key_file = key_;
  absl::StatusOr<std::unique_ptr<TlsRenewer>> none =
      ConfigureTls(dir_ + "/elsewhere", named, named_options, note);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);
  EXPECT_EQ(named_options.tls_cert_file, cert_);

  named.key_file.clear();
  EXPECT_EQ(ConfigureTls(dir_, named, named_options, note).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Unix sockets only: no TLS at all.
  ServerOptions unix_only;
  unix_only.listen = {"unix:" + dir_ + "/b.sock"};
  absl::StatusOr<std::unique_ptr<TlsRenewer>> no_tls =
      ConfigureTls(dir_, TlsSettings(), unix_only, note);
  ASSERT_TRUE(no_tls.ok());
  EXPECT_EQ(*no_tls, nullptr);
  EXPECT_TRUE(unix_only.tls_cert_file.empty());
}

TEST_F(TlsSetupTest, AMismatchedPairAtStartIsReplacedAndSaidOnStderr) {
  ASSERT_TRUE(LoadOrCreateSelfSigned(cert_, key_, absl::Now()).ok());
  absl::StatusOr<TlsIdentity> other =
      GenerateSelfSigned(SelfSignedOptions(), absl::Now());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WritePrivateFile(key_, other->key_pem.Reveal(), false).ok());
  ServerOptions options;
  options.listen = {"127.0.0.1:0"};
  std::string note;
  ::testing::internal::CaptureStderr();
  absl::StatusOr<std::unique_ptr<TlsRenewer>> renewer =
      ConfigureTls(dir_, TlsSettings(), options, note);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(renewer.ok()) << renewer.status();
  EXPECT_TRUE(absl::StrContains(err, "were replaced by a new pair")) << err;
  EXPECT_TRUE(absl::StrContains(err, "does not belong")) << err;
  EXPECT_FALSE(absl::StrContains(err, "PRIVATE KEY"));
  EXPECT_TRUE(LoadTlsIdentity(cert_, key_).ok());
}

}  // namespace
}  // namespace credbroker
