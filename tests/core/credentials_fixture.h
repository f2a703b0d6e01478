// The CredentialManager tests' fixture: a manager over a SqliteStore in a
// temporary directory that counts the credential reads reaching it, an
// injected clock, and fake AWS keys.
#ifndef CREDBROKER_TESTS_CORE_CREDENTIALS_FIXTURE_H_
#define CREDBROKER_TESTS_CORE_CREDENTIALS_FIXTURE_H_

#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "broker/core/credentials.h"
#include "broker/crypto/crypto.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace testing {

inline constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
inline constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

class CredentialManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbcore.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = absl::FromUnixSeconds(1'800'000'000);
    auto store =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(store.ok()) << store.status();
    auto counting = std::make_unique<CountingStore>(std::move(*store));
    counting_ = counting.get();
    store_ = std::move(counting);
    sealer_ = std::make_unique<Sealer>(NewDataKey());
    manager_ = std::make_unique<CredentialManager>(store_.get(), sealer_.get(),
                                                   &ProviderRegistry::Default(),
                                                   [this] { return now_; });
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  PutCredentialInput Aws(const std::string& profile = "") {
    PutCredentialInput in;
    in.provider = "aws";
    in.profile = profile;
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    return in;
  }

  // Counts the reads of one credential that reach the database.
  class CountingStore : public ForwardingStore {
   public:
    using ForwardingStore::ForwardingStore;
    absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                   absl::string_view profile,
                                                   int64_t version) override {
      ++reads;
      return ForwardingStore::GetCredential(provider, profile, version);
    }
    std::atomic<int> reads{0};
  };

  std::string dir_;
  CountingStore* counting_ = nullptr;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sealer> sealer_;
  absl::Time now_;
  std::unique_ptr<CredentialManager> manager_;
};

inline const MaskedField* FindField(const CredentialSummary& s,
                                    const std::string& name) {
  for (const auto& f : s.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

inline PutCredentialInput AwsWith(const std::string& profile,
                                  const std::string& key_id,
                                  const std::string& secret) {
  PutCredentialInput in;
  in.provider = "aws";
  in.profile = profile;
  in.values.emplace("access_key_id", SecretBytes(key_id));
  in.values.emplace("secret_access_key", SecretBytes(secret));
  return in;
}

inline constexpr char kKeyId2[] = "AKIAI44QH8DHBEXAMPLE";
inline constexpr char kSecret2[] = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CORE_CREDENTIALS_FIXTURE_H_
