#include "broker/rpc/answer_cache.h"

#include <stdlib.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/crypto/crypto.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

class AnswerCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbanswers.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = absl::FromUnixSeconds(1'800'000'000);
    auto store =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
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

  void PutAws(const std::string& profile) {
    PutCredentialInput in;
    in.provider = "aws";
    in.profile = profile;
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  }

  // Reads aws/`profile` as GetCredential does, keeps its answer (the
  // version, as text) under its key, and says whether it is found again.
  bool KeptAndFound(const std::string& profile) {
    const std::string key = AnswerCache::Key('g', "aws", profile, 0);
    CredentialManager::AnswerLife life;
    absl::StatusOr<CredentialSummary> s =
        manager_->Get("aws", profile, 0, &life);
    if (!s.ok()) return false;
    cache_.Keep(key, grpc::Slice(absl::StrCat(s->version)), life);
    return Found(profile).has_value();
  }
  std::optional<std::string> Found(const std::string& profile) {
    std::optional<grpc::Slice> kept =
        cache_.Find(AnswerCache::Key('g', "aws", profile, 0), *manager_);
    if (!kept.has_value()) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(kept->begin()),
                       kept->size());
  }

  std::string dir_;
  absl::Time now_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sealer> sealer_;
  std::unique_ptr<CredentialManager> manager_;
  AnswerCache cache_;
};

// A kept answer is sent again until the store's next commit, whatever its
// kind (a new version, a rollback, a default profile, a delete, an
// approval's flow write), and then never again.
TEST_F(AnswerCacheTest, EveryKindOfWriteEndsTheKeptAnswers) {
  PutAws("default");
  PutAws("other");
  auto ends_kept = [&](const char* what, auto write) {
    ASSERT_TRUE(KeptAndFound("")) << what;
    ASSERT_TRUE(KeptAndFound("other")) << what;
    EXPECT_EQ(Found(""), Found(""));  // Found again, unchanged.
    write();
    EXPECT_FALSE(Found("").has_value()) << what;
    EXPECT_FALSE(Found("other").has_value()) << what;
  };
  ends_kept("put", [&] { PutAws("default"); });
  EXPECT_TRUE(KeptAndFound(""));
  EXPECT_EQ(Found(""), "2");
  ends_kept("rollback",
            [&] { ASSERT_TRUE(manager_->Rollback("aws", "", 1).ok()); });
  ends_kept("default profile", [&] {
    ASSERT_TRUE(manager_->SetDefaultProfile("aws", "other").ok());
  });
  ends_kept("approval", [&] {
    FlowWrite flow;
    AuditRecord event;
    event.kind = "request.approved";
    flow.audit.push_back(event);
    ASSERT_TRUE(
        store_
            ->WriteFlow(flow,
                        [](const AuditRecord&) { return std::string("h"); })
            .ok());
  });
  ends_kept("delete",
            [&] { ASSERT_TRUE(manager_->Delete("aws", "default").ok()); });
  EXPECT_FALSE(KeptAndFound("default"));  // NOT_FOUND is not kept.
}

TEST_F(AnswerCacheTest, AKeptAnswerEndsWhenTheClockMovesItOn) {
  PutAws("default");
  ASSERT_TRUE(KeptAndFound("default"));
  now_ += absl::Hours(24);  // days_until_rotation is one less.
  EXPECT_FALSE(Found("default").has_value());
}

TEST_F(AnswerCacheTest, AFullCacheDropsAnEighthNotEverything) {
  PutAws("default");
  CredentialManager::AnswerLife life;
  ASSERT_TRUE(manager_->Get("aws", "", 0, &life).ok());
  for (size_t i = 0; i < AnswerCache::kMaxEntries; ++i)
    cache_.Keep(absl::StrCat("k", i), grpc::Slice("x"), life);
  EXPECT_EQ(cache_.size(), AnswerCache::kMaxEntries);
  cache_.Keep("one more", grpc::Slice("y"), life);
  EXPECT_EQ(cache_.size(),
            AnswerCache::kMaxEntries - AnswerCache::kMaxEntries / 8 + 1);
  // An answer read with no mark is never kept.
  cache_.Keep("unmarked", grpc::Slice("z"), CredentialManager::AnswerLife());
  EXPECT_FALSE(cache_.Find("unmarked", *manager_).has_value());
}

}  // namespace
}  // namespace credbroker
