// SqliteStore: credential versions put, read, listed and deleted; meta.
#include "broker/store/sqlite_store.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/sqlite_store_fixture.h"

namespace credbroker {
namespace testing {
namespace {

using ::testing::HasSubstr;

// --- Put / Get ------------------------------------------------------------

TEST_F(SqliteStoreTest, PutAssignsConsecutiveVersions) {
  absl::Time before = absl::Now();
  for (int64_t v = 1; v <= 5; ++v) {
    int64_t seen = -1;
    absl::StatusOr<CredentialRecord> r =
        store_->PutCredential("aws", "default", absl::Hours(24 * 30),
                              FakeSeal("aws", "default", &seen));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(seen, v);
    EXPECT_EQ(r->version, v);
    EXPECT_EQ(r->version_count, v);
    EXPECT_EQ(r->provider, "aws");
    EXPECT_EQ(r->profile, "default");
    EXPECT_EQ(r->sealed, SealedFor("aws", "default", v));
    EXPECT_EQ(r->fingerprint, absl::StrCat("fp", v));
    EXPECT_EQ(r->rotation_period, absl::Hours(24 * 30));
    EXPECT_GE(r->created_at, before - absl::Seconds(1));
    EXPECT_LE(r->first_created_at, r->created_at);
  }
  // Another profile of the same provider numbers on its own.
  EXPECT_EQ(Put("aws", "prod").version, 1);
  EXPECT_EQ(Put("gcp", "default").version, 1);
}

TEST_F(SqliteStoreTest, GetLatestAndSpecificVersions) {
  CredentialRecord v1 = Put("aws", "default", absl::Hours(1));
  Put("aws", "default", absl::Hours(2));
  CredentialRecord v3 = Put("aws", "default", absl::Hours(3));

  absl::StatusOr<CredentialRecord> latest =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 3);
  EXPECT_EQ(latest->version_count, 3);
  EXPECT_EQ(latest->sealed, SealedFor("aws", "default", 3));
  EXPECT_EQ(latest->fingerprint, "fp3");
  EXPECT_EQ(latest->rotation_period, absl::Hours(3));
  EXPECT_EQ(latest->created_at, v3.created_at);
  EXPECT_EQ(latest->first_created_at, v1.created_at);

  absl::StatusOr<CredentialRecord> second =
      store_->GetCredential("aws", "default", 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, 2);
  EXPECT_EQ(second->sealed, SealedFor("aws", "default", 2));
  EXPECT_EQ(second->rotation_period, absl::Hours(2));
  EXPECT_EQ(second->first_created_at, v1.created_at);
  EXPECT_EQ(second->version_count, 3);
}

// Reads use their own connection: a credential and a metadata value can be
// read while a write transaction is open (here held open inside the seal
// step), and they see what was committed before it, not what it writes.
TEST_F(SqliteStoreTest, ReadsDoNotWaitForAnOpenWriteTransaction) {
  Put("aws", "default", absl::Hours(1));
  ASSERT_TRUE(store_->PutMeta("default_profile/aws", "default").ok());
  absl::Notification in_transaction, release;
  std::thread writer([&] {
    absl::StatusOr<CredentialRecord> r = store_->PutCredential(
        "aws", "default", absl::Hours(2),
        [&](int64_t version)
            -> absl::StatusOr<std::pair<std::string, std::string>> {
          in_transaction.Notify();
          release.WaitForNotification();
          return std::make_pair(SealedFor("aws", "default", version),
                                absl::StrCat("fp", version));
        });
    EXPECT_TRUE(r.ok()) << r.status();
  });
  in_transaction.WaitForNotification();
  // The writer holds its connection until `release`: these must not wait.
  absl::StatusOr<CredentialRecord> during =
      store_->GetCredential("aws", "default", 0);
  absl::StatusOr<std::string> meta = store_->GetMeta("default_profile/aws");
  absl::StatusOr<std::vector<CredentialRecord>> listed =
      store_->ListCredentials({});
  absl::StatusOr<std::vector<CredentialRecord>> versions =
      store_->ListVersions("aws", "default");
  release.Notify();
  writer.join();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].version, 1);
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_EQ(versions->size(), 1u);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->version, 1);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(*meta, "default");
  // Once committed, the next read sees the new version.
  absl::StatusOr<CredentialRecord> after =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version, 2);
  EXPECT_EQ(after->sealed, SealedFor("aws", "default", 2));
}

TEST_F(SqliteStoreTest, GetMissingIsNotFound) {
  absl::StatusOr<CredentialRecord> none =
      store_->GetCredential("aws", "prod", 0);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(none.status().message(), "no credential stored for aws/prod");

  Put("aws", "prod");
  absl::StatusOr<CredentialRecord> v4 = store_->GetCredential("aws", "prod", 4);
  EXPECT_EQ(v4.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(v4.status().message(),
            "no credential stored for aws/prod version 4");
}

TEST_F(SqliteStoreTest, InvalidArguments) {
  EXPECT_EQ(
      store_->PutCredential("", "p", absl::ZeroDuration(), FakeSeal("", "p"))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_
          ->PutCredential("aws", "", absl::ZeroDuration(), FakeSeal("aws", ""))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->PutCredential("aws", "p", absl::Seconds(-1), FakeSeal("aws", "p"))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetCredential("aws", "default", -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  ListCredentialsOptions options;
  options.limit = 0;
  EXPECT_EQ(store_->ListCredentials(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutMeta("", "v").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, OddNamesAndBinarySealedBytesRoundTrip) {
  const std::string provider = "custom";
  const std::string profile = "it's \"quoted\"; DROP TABLE credentials; --";
  std::string sealed(256, '\0');
  for (int i = 0; i < 256; ++i) sealed[i] = static_cast<char>(i);
  absl::StatusOr<CredentialRecord> r = store_->PutCredential(
      provider, profile, absl::ZeroDuration(),
      [&](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
        return std::make_pair(sealed, "fp");
      });
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<CredentialRecord> got =
      store_->GetCredential(provider, profile, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->profile, profile);
  EXPECT_EQ(got->sealed, sealed);

  // An empty sealed blob stays an empty blob.
  absl::StatusOr<CredentialRecord> empty = store_->PutCredential(
      provider, "empty", absl::ZeroDuration(),
      [&](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
        return std::make_pair(std::string(), std::string());
      });
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(store_->GetCredential(provider, "empty", 1)->sealed, "");
}

// --- Seal failures --------------------------------------------------------

TEST_F(SqliteStoreTest, SealFailureRollsBack) {
  Put("aws", "default");
  auto failing =
      [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
    return absl::InternalError("sealer exploded");
  };
  absl::StatusOr<CredentialRecord> r =
      store_->PutCredential("aws", "default", absl::ZeroDuration(), failing);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r.status().message(), "sealer exploded");
  r = store_->PutCredential("aws", "fresh", absl::ZeroDuration(), failing);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);

  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
  EXPECT_EQ(store_->GetCredential("aws", "fresh", 0).status().code(),
            absl::StatusCode::kNotFound);
  ListCredentialsOptions options;
  EXPECT_EQ(store_->ListCredentials(options)->size(), 1u);
  // The transaction was closed: later writes work and number on.
  EXPECT_EQ(Put("aws", "default").version, 2);
  EXPECT_EQ(Put("aws", "fresh").version, 1);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

// --- List -----------------------------------------------------------------

TEST_F(SqliteStoreTest, ListReturnsLatestPerProfileInOrder) {
  Put("gcp", "b");
  Put("aws", "z");
  Put("aws", "a");
  Put("aws", "a");
  Put("gcp", "a");
  Put("aws", "z");
  Put("aws", "z");
  Put("slack", "default");

  ListCredentialsOptions options;
  absl::StatusOr<std::vector<CredentialRecord>> all =
      store_->ListCredentials(options);
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> names;
  for (const CredentialRecord& r : *all) {
    names.push_back(absl::StrCat(r.provider, "/", r.profile, "@", r.version,
                                 "#", r.version_count));
    EXPECT_EQ(r.sealed, SealedFor(r.provider, r.profile, r.version));
  }
  EXPECT_THAT(names,
              ::testing::ElementsAre("aws/a@2#2", "aws/z@3#3", "gcp/a@1#1",
                                     "gcp/b@1#1", "slack/default@1#1"));

  options.provider = "gcp";
  absl::StatusOr<std::vector<CredentialRecord>> gcp =
      store_->ListCredentials(options);
  ASSERT_TRUE(gcp.ok());
  ASSERT_EQ(gcp->size(), 2u);
  EXPECT_EQ((*gcp)[0].profile, "a");
  EXPECT_EQ((*gcp)[1].profile, "b");

  options.provider = "azure";
  EXPECT_TRUE(store_->ListCredentials(options)->empty());
}

TEST_F(SqliteStoreTest, ListPagesWithKeyset) {
  std::vector<std::string> expected;
  for (const char* provider : {"auth0", "aws", "gcp"}) {
    for (int i = 0; i < 7; ++i) {
      std::string profile = absl::StrFormat("p%02d", i);
      Put(provider, profile);
      expected.push_back(absl::StrCat(provider, "/", profile));
    }
  }
  for (int page_size : {1, 2, 5, 7, 100}) {
    ListCredentialsOptions options;
    options.limit = page_size;
    std::vector<std::string> got;
    for (int pages = 0; pages < 100; ++pages) {
      absl::StatusOr<std::vector<CredentialRecord>> page =
          store_->ListCredentials(options);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->size(), static_cast<size_t>(page_size));
      if (page->empty()) break;
      for (const CredentialRecord& r : *page) {
        got.push_back(absl::StrCat(r.provider, "/", r.profile));
      }
      options.after_provider = page->back().provider;
      options.after_profile = page->back().profile;
    }
    EXPECT_EQ(got, expected) << "page size " << page_size;
  }

  // Paging within one provider.
  ListCredentialsOptions options;
  options.provider = "aws";
  options.limit = 3;
  options.after_provider = "aws";
  options.after_profile = "p02";
  absl::StatusOr<std::vector<CredentialRecord>> page =
      store_->ListCredentials(options);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].profile, "p03");
  EXPECT_EQ((*page)[2].profile, "p05");
  // A cursor before the provider starts at its first profile; after it,
  // nothing.
  options.after_provider = "auth0";
  options.after_profile = "zzz";
  EXPECT_EQ(store_->ListCredentials(options)->front().profile, "p00");
  options.after_provider = "azure";
  options.after_profile = "";
  EXPECT_TRUE(store_->ListCredentials(options)->empty());
  // A cursor that is not a stored profile still resumes in order.
  ListCredentialsOptions between;
  between.after_provider = "aws";
  between.after_profile = "p03x";
  EXPECT_EQ(store_->ListCredentials(between)->front().profile, "p04");
}

TEST_F(SqliteStoreTest, ListVersionsOldestFirst) {
  EXPECT_TRUE(store_->ListVersions("aws", "default")->empty());
  for (int i = 0; i < 4; ++i) Put("aws", "default");
  Put("aws", "other");
  absl::StatusOr<std::vector<CredentialRecord>> versions =
      store_->ListVersions("aws", "default");
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ((*versions)[i].version, i + 1);
    EXPECT_EQ((*versions)[i].sealed, SealedFor("aws", "default", i + 1));
    EXPECT_EQ((*versions)[i].first_created_at, (*versions)[0].created_at);
  }
}

// --- Delete ---------------------------------------------------------------

TEST_F(SqliteStoreTest, DeleteRemovesEveryVersion) {
  for (int i = 0; i < 3; ++i) Put("aws", "default");
  Put("aws", "prod");
  absl::StatusOr<int64_t> deleted = store_->DeleteCredential("aws", "default");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);
  EXPECT_EQ(store_->GetCredential("aws", "default", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCredential("aws", "default", 2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListVersions("aws", "default")->empty());
  EXPECT_EQ(store_->GetCredential("aws", "prod", 0)->version, 1);

  absl::StatusOr<int64_t> again = store_->DeleteCredential("aws", "default");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(again.status().message(), HasSubstr("aws/default"));

  // Numbering restarts, with a new first_created_at.
  CredentialRecord fresh = Put("aws", "default");
  EXPECT_EQ(fresh.version, 1);
  EXPECT_EQ(fresh.version_count, 1);
  EXPECT_EQ(fresh.first_created_at, fresh.created_at);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

// --- Meta -----------------------------------------------------------------

TEST_F(SqliteStoreTest, MetaGetPut) {
  EXPECT_EQ(store_->GetMeta("wrapped_data_key").status().code(),
            absl::StatusCode::kNotFound);
  std::string binary("\0\x01\xfe\xff wrapped", 12);
  ASSERT_TRUE(store_->PutMeta("wrapped_data_key", binary).ok());
  EXPECT_EQ(*store_->GetMeta("wrapped_data_key"), binary);
  ASSERT_TRUE(store_->PutMeta("wrapped_data_key", "replaced").ok());
  EXPECT_EQ(*store_->GetMeta("wrapped_data_key"), "replaced");
  ASSERT_TRUE(store_->PutMeta("empty", "").ok());
  absl::StatusOr<std::string> empty = store_->GetMeta("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, "");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
