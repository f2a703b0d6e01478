#include "broker/store/sqlite_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
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

namespace credbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string SealedFor(absl::string_view provider, absl::string_view profile,
                      int64_t version) {
  return absl::StrCat("sealed:", provider, "/", profile, "/", version,
                      std::string("\0\xff", 2));
}

// A SealFn that records the version it was asked for.
Store::SealFn FakeSeal(std::string provider, std::string profile,
                       int64_t* seen = nullptr) {
  return [=](int64_t version)
             -> absl::StatusOr<std::pair<std::string, std::string>> {
    if (seen != nullptr) *seen = version;
    return std::make_pair(SealedFor(provider, profile, version),
                          absl::StrCat("fp", version));
  };
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/credbroker.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  CredentialRecord Put(const std::string& provider, const std::string& profile,
                       absl::Duration rotation = absl::ZeroDuration()) {
    absl::StatusOr<CredentialRecord> r = store_->PutCredential(
        provider, profile, rotation, FakeSeal(provider, profile));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CredentialRecord{};
  }

  // Runs `sql` on the database file through a separate raw connection.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  std::string RawQuery(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }

  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 0777;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

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

// --- Persistence and files ------------------------------------------------

TEST_F(SqliteStoreTest, ReopenKeepsEverything) {
  CredentialRecord v1 = Put("aws", "default", absl::Hours(48));
  Put("aws", "default", absl::Hours(48));
  Put("github", "bot");
  ASSERT_TRUE(store_->PutMeta("key_source", "key_file").ok());
  Reopen();
  absl::StatusOr<CredentialRecord> latest =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->version_count, 2);
  EXPECT_EQ(latest->first_created_at, v1.created_at);
  EXPECT_EQ(latest->rotation_period, absl::Hours(48));
  EXPECT_EQ(*store_->GetMeta("key_source"), "key_file");
  EXPECT_EQ(store_->ListCredentials(ListCredentialsOptions())->size(), 2u);
  EXPECT_EQ(Put("aws", "default").version, 3);
}

TEST_F(SqliteStoreTest, FreshDatabaseIsPrivateAndConfigured) {
  Put("aws", "default");
  EXPECT_EQ(ModeOf(path_), 0600u);
  // The WAL and shared-memory files inherit the database's mode.
  for (const char* suffix : {"-wal", "-shm"}) {
    mode_t mode = ModeOf(path_ + suffix);
    if (mode != 0) {
      EXPECT_EQ(mode, 0600u) << suffix;
    }
  }
  EXPECT_EQ(RawQuery("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawQuery("PRAGMA user_version"),
            std::to_string(kSqliteSchemaVersion));
  // The schema's indexes after every step (step 5 dropped requests_by_need).
  EXPECT_EQ(
      RawQuery(
          "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema"
          " WHERE type = 'index' AND sql IS NOT NULL ORDER BY name)"),
      "audit_events_by_time,grants_by_created,requests_by_created,"
      "requests_by_decided,standing_approvals_by_created");
}

TEST_F(SqliteStoreTest, CreatedPrivateUnderPermissiveUmask) {
  store_.reset();
  const std::string other = dir_ + "/umask.db";
  mode_t old = umask(0);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(other);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)
                  ->PutCredential("aws", "x", absl::ZeroDuration(),
                                  FakeSeal("aws", "x"))
                  .ok());
  umask(old);
  EXPECT_EQ(ModeOf(other), 0600u);
  EXPECT_EQ(ModeOf(other + "-wal"), 0600u);
  // The log's index is kept in the broker's memory (unix-excl): no -shm.
  EXPECT_EQ(access((other + "-shm").c_str(), F_OK), -1);
}

TEST_F(SqliteStoreTest, LooseExistingDatabaseIsTightened) {
  store_.reset();
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  Reopen();
  EXPECT_EQ(ModeOf(path_), 0600u);
}

TEST_F(SqliteStoreTest, SymlinkIsRefused) {
  store_.reset();
  const std::string link = dir_ + "/link.db";
  ASSERT_EQ(symlink(path_.c_str(), link.c_str()), 0);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(link);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("symbolic link"));
}

TEST_F(SqliteStoreTest, MissingDirectoryIsFailedPrecondition) {
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore(dir_ + "/missing/credbroker.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("missing/credbroker.db"));
}

TEST_F(SqliteStoreTest, NotADatabaseIsDataLoss) {
  const std::string junk = dir_ + "/junk.db";
  FILE* f = fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  for (int i = 0; i < 200; ++i) fputs("this is not an sqlite database\n", f);
  fclose(f);
  chmod(junk.c_str(), 0600);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(junk);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss)
      << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("not a credbroker database"));
}

// --- Schema versions ------------------------------------------------------

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  Put("aws", "default");
  store_.reset();
  RawExec("PRAGMA user_version = 99");
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      store.status().message(),
      HasSubstr(absl::StrCat("created by a newer credbroker (schema 99, "
                             "this build knows ",
                             kSqliteSchemaVersion, ")")));
  // Refusing did not touch the database.
  EXPECT_EQ(RawQuery("PRAGMA user_version"), "99");
  EXPECT_EQ(RawQuery("SELECT count(*) FROM credentials"), "1");
}

TEST_F(SqliteStoreTest, CurrentSchemaIsNotReapplied) {
  Put("aws", "default");
  Reopen();
  Reopen();
  EXPECT_EQ(RawQuery("PRAGMA user_version"),
            std::to_string(kSqliteSchemaVersion));
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
}

TEST_F(SqliteStoreTest, EmptyExistingFileIsInitialized) {
  store_.reset();
  const std::string empty = dir_ + "/empty.db";
  int fd = open(empty.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(empty);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->CheckIntegrity().ok());
}

// Schema 2 exactly as released (migrations 1 and 2), for the upgrade test.
constexpr char kSchemaVersion2Sql[] = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL
);
CREATE TABLE credential_profiles (
  provider         TEXT NOT NULL,
  profile          TEXT NOT NULL,
  latest_version   INTEGER NOT NULL,
  version_count    INTEGER NOT NULL,
  first_created_at INTEGER NOT NULL,  -- Unix micros.
  PRIMARY KEY (provider, profile)
) WITHOUT ROWID;
CREATE TABLE credentials (
  provider          TEXT NOT NULL,
  profile           TEXT NOT NULL,
  version           INTEGER NOT NULL CHECK (version > 0),
  sealed            BLOB NOT NULL,
  fingerprint       TEXT NOT NULL,
  created_at        INTEGER NOT NULL,  -- Unix micros.
  rotation_period_s INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (provider, profile, version),
  FOREIGN KEY (provider, profile)
    REFERENCES credential_profiles (provider, profile)
);
CREATE TABLE audit_events (
  sequence   INTEGER PRIMARY KEY,  -- 1, 2, ...: the chain order.
  time_us    INTEGER NOT NULL,     -- Unix micros.
  kind       TEXT NOT NULL,
  role       TEXT NOT NULL,
  peer       TEXT NOT NULL,
  provider   TEXT NOT NULL,
  profile    TEXT NOT NULL,
  request_id TEXT NOT NULL,
  grant_id   TEXT NOT NULL,
  action     TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  detail     TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (time_us);
)sql";

TEST_F(SqliteStoreTest, MigratesSchemaVersion2Database) {
  store_.reset();
  ASSERT_EQ(unlink(path_.c_str()), 0);
  RawExec(absl::StrCat(
      "BEGIN;", kSchemaVersion2Sql,
      "INSERT INTO meta VALUES ('key_source', 'key_file');"
      "INSERT INTO credential_profiles VALUES ('aws', 'default', 1, 1, 5);"
      "INSERT INTO credentials VALUES ('aws', 'default', 1, x'00ff', 'fp1',"
      " 5, 3600);"
      "INSERT INTO audit_events VALUES (1, 7, 'credential.put', 'approver',"
      " '', 'aws', 'default', '', '', '', 'ok', '', '', 'h1');"
      "PRAGMA user_version = 2; COMMIT;"));
  Reopen();
  EXPECT_EQ(RawQuery("PRAGMA user_version"),
            std::to_string(kSqliteSchemaVersion));
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  // Step 3 made the index, step 5 dropped it.
  EXPECT_EQ(
      RawQuery(
          "SELECT count(*) FROM sqlite_schema WHERE name = 'requests_by_need'"),
      "0");

  // Old data survives.
  absl::StatusOr<CredentialRecord> credential =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(credential.ok()) << credential.status();
  EXPECT_EQ(credential->sealed, std::string("\0\xff", 2));
  EXPECT_EQ(credential->rotation_period, absl::Hours(1));
  EXPECT_EQ(*store_->GetMeta("key_source"), "key_file");
  EXPECT_EQ(Put("aws", "default").version, 2);

  // The new tables work, and the audit chain continues.
  FlowWrite write;
  RequestRecord request;
  request.request_id = "r-1";
  request.created_at = absl::FromUnixSeconds(1700000000);
  write.requests = {request};
  AuditRecord event;
  event.kind = "request.added";
  write.audit = {event};
  ASSERT_TRUE(store_
                  ->WriteFlow(write,
                              [](const AuditRecord& e) {
                                return absl::StrCat("h", e.sequence, "<",
                                                    e.prev_hash);
                              })
                  .ok());
  EXPECT_EQ(store_->ListRequests(true)->size(), 1u);
  absl::StatusOr<std::vector<AuditRecord>> audit =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[1].sequence, 2);
  EXPECT_EQ((*audit)[1].prev_hash, "h1");

  // The migrated schema is the one a fresh database gets.
  const std::string schema_sql =
      "SELECT group_concat(type || ' ' || name || ': ' || ifnull(sql, ''),"
      " char(10)) FROM (SELECT * FROM sqlite_master ORDER BY name)";
  const std::string migrated = RawQuery(schema_sql);
  EXPECT_THAT(migrated, HasSubstr("CREATE TABLE standing_approvals"));
  store_.reset();
  const std::string migrated_path = path_;
  path_ = dir_ + "/fresh.db";
  Reopen();
  EXPECT_EQ(RawQuery(schema_sql), migrated);
  path_ = migrated_path;
}

// --- Integrity ------------------------------------------------------------

// A credential and its audit event land in one transaction: both, chained
// after the events before them, or (the event cannot be written) neither.
TEST_F(SqliteStoreTest, PutWithItsAuditEventIsOneTransaction) {
  auto hash = [](const AuditRecord& e) {
    return absl::StrCat("h", e.sequence, "<", e.prev_hash);
  };
  AuditRecord before;
  before.kind = "call.refused";
  ASSERT_TRUE(store_->AppendAudit(before, hash).ok());
  auto audit_of = [](const CredentialRecord& r) {
    AuditRecord e;
    e.kind = "credential.put";
    e.provider = r.provider;
    e.profile = r.profile;
    e.detail =
        absl::StrCat("version ", r.version, ", fingerprint ", r.fingerprint);
    return e;
  };
  absl::StatusOr<CredentialRecord> put =
      store_->PutCredential("aws", "default", absl::ZeroDuration(),
                            FakeSeal("aws", "default"), audit_of, hash);
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<std::vector<AuditRecord>> listed =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].kind, "credential.put");
  EXPECT_EQ((*listed)[1].detail, "version 1, fingerprint fp1");
  EXPECT_EQ((*listed)[1].sequence, 2);
  EXPECT_EQ((*listed)[1].prev_hash, "h1<");

  // No hash function: the event cannot be written, so the version is not.
  absl::StatusOr<CredentialRecord> refused =
      store_->PutCredential("aws", "default", absl::ZeroDuration(),
                            FakeSeal("aws", "default"), audit_of, nullptr);
  EXPECT_FALSE(refused.ok());
  absl::StatusOr<CredentialRecord> latest =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 1);
  EXPECT_EQ(store_->ListAudit(AuditQuery())->size(), 2u);
}

// The disk reserve is a private file of the asked size beside the database,
// kept across reopening and removed when the reserve is turned off.
TEST_F(SqliteStoreTest, ReserveSpaceKeepsAPrivateFileOfThatSize) {
  const std::string reserve = path_ + ".reserve";
  ASSERT_TRUE(store_->ReserveSpace(256 * 1024).ok());
  struct stat st;
  ASSERT_EQ(stat(reserve.c_str(), &st), 0);
  EXPECT_GE(st.st_blocks * 512, 256 * 1024);  // Allocated, not a sparse hole.
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Writes go on as usual while the reserve is in place.
  Put("aws", "default", absl::Hours(1));
  Reopen();
  ASSERT_TRUE(store_->ReserveSpace(256 * 1024).ok());
  ASSERT_EQ(stat(reserve.c_str(), &st), 0);
  EXPECT_GE(st.st_size, 256 * 1024);
  ASSERT_TRUE(store_->ReserveSpace(0).ok());
  EXPECT_NE(stat(reserve.c_str(), &st), 0);
  // A reserve that cannot be made (here: a directory in the way) is an
  // error, and the store carries on without one: writes are not refused.
  ASSERT_EQ(mkdir(reserve.c_str(), 0700), 0);
  EXPECT_FALSE(store_->ReserveSpace(256 * 1024).ok());
  Put("aws", "second", absl::Hours(1));
  ASSERT_EQ(rmdir(reserve.c_str()), 0);
}

TEST_F(SqliteStoreTest, AuditEventsAppendInChainOrder) {
  int calls = 0;
  auto hash = [&](const AuditRecord& e) {
    ++calls;
    return absl::StrCat("h", e.sequence, "<", e.prev_hash);
  };
  AuditRecord e;
  e.kind = "credential.put";
  e.provider = "aws";
  e.time = absl::FromUnixSeconds(100);
  absl::StatusOr<AuditRecord> first = store_->AppendAudit(e, hash);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->sequence, 1);
  EXPECT_EQ(first->prev_hash, "");
  EXPECT_EQ(first->hash, "h1<");
  e.kind = "call.refused";
  e.provider = "";
  e.time = absl::FromUnixSeconds(200);
  absl::StatusOr<AuditRecord> second = store_->AppendAudit(e, hash);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->sequence, 2);
  EXPECT_EQ(second->prev_hash, "h1<");
  EXPECT_EQ(calls, 2);

  Reopen();
  AuditQuery all;
  absl::StatusOr<std::vector<AuditRecord>> listed = store_->ListAudit(all);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].hash, "h2<h1<");
  EXPECT_EQ((*listed)[0].time, absl::FromUnixSeconds(100));
  AuditQuery by_provider;
  by_provider.provider = "aws";
  EXPECT_EQ(store_->ListAudit(by_provider)->size(), 1u);
  AuditQuery by_prefix;
  by_prefix.kind = "call.";
  EXPECT_EQ(store_->ListAudit(by_prefix)->size(), 1u);
  AuditQuery after;
  after.after_sequence = 1;
  EXPECT_EQ(store_->ListAudit(after)->front().sequence, 2);
  AuditQuery bad;
  bad.limit = 0;
  EXPECT_EQ(store_->ListAudit(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, IntegrityCheckPassesOnHealthyStore) {
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  for (int i = 0; i < 20; ++i) Put("aws", absl::StrCat("p", i));
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_F(SqliteStoreTest, CorruptionIsDataLoss) {
  // Enough rows for several b-tree pages, then checkpoint into the main file.
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<CredentialRecord> r = store_->PutCredential(
        "custom", absl::StrFormat("profile-%04d", i), absl::ZeroDuration(),
        [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
          return std::make_pair(std::string(200, 's'), "fp");
        });
    ASSERT_TRUE(r.ok());
  }
  store_.reset();  // Closing the last connection checkpoints the WAL.
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_GT(st.st_size, 4 * 4096);
  // Scribble over the middle pages (not the header page).
  int fd = open(path_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string garbage(4096 * 2, '\x5a');
  ASSERT_EQ(pwrite(fd, garbage.data(), garbage.size(), 2 * 4096),
            static_cast<ssize_t>(garbage.size()));
  close(fd);

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
  absl::Status status =
      store.ok() ? (*store)->CheckIntegrity() : store.status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), Not(HasSubstr("sssss")));
}

// --- Concurrency ----------------------------------------------------------

TEST_F(SqliteStoreTest, ConcurrentPutsGetDistinctConsecutiveVersions) {
  constexpr int kThreads = 6;
  constexpr int kPutsPerThread = 20;
  std::vector<std::vector<int64_t>> versions(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPutsPerThread; ++i) {
        absl::StatusOr<CredentialRecord> r = store_->PutCredential(
            "aws", "shared", absl::ZeroDuration(), FakeSeal("aws", "shared"));
        if (!r.ok()) {
          ++failures;
          continue;
        }
        versions[t].push_back(r->version);
        // Readers interleave with writers.
        if (!store_->GetCredential("aws", "shared", 0).ok()) ++failures;
        if (!store_->ListCredentials(ListCredentialsOptions()).ok()) ++failures;
        // Each thread also writes its own profile.
        if (!store_
                 ->PutCredential("gcp", absl::StrCat("t", t),
                                 absl::ZeroDuration(),
                                 FakeSeal("gcp", absl::StrCat("t", t)))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> all;
  for (const auto& per_thread : versions) {
    // Each thread sees its own versions increase.
    EXPECT_TRUE(std::is_sorted(per_thread.begin(), per_thread.end()));
    all.insert(per_thread.begin(), per_thread.end());
  }
  constexpr int kTotal = kThreads * kPutsPerThread;
  ASSERT_EQ(all.size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kTotal);
  absl::StatusOr<std::vector<CredentialRecord>> history =
      store_->ListVersions("aws", "shared");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), static_cast<size_t>(kTotal));
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ((*history)[i].version, i + 1);
    EXPECT_EQ((*history)[i].sealed, SealedFor("aws", "shared", i + 1));
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store_->GetCredential("gcp", absl::StrCat("t", t), 0)->version,
              kPutsPerThread);
  }
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileShareVersions) {
  // Two connections (as two broker processes on a shared file would have):
  // BEGIN IMMEDIATE and the busy timeout keep numbering consistent.
  absl::StatusOr<std::unique_ptr<Store>> second = OpenSqliteStore(path_);
  ASSERT_TRUE(second.ok()) << second.status();
  std::thread a([&] {
    for (int i = 0; i < 25; ++i) Put("aws", "default");
  });
  std::thread b([&] {
    for (int i = 0; i < 25; ++i) {
      EXPECT_TRUE((*second)
                      ->PutCredential("aws", "default", absl::ZeroDuration(),
                                      FakeSeal("aws", "default"))
                      .ok());
    }
  });
  a.join();
  b.join();
  absl::StatusOr<std::vector<CredentialRecord>> history =
      store_->ListVersions("aws", "default");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ((*history)[i].version, i + 1);
}

TEST_F(SqliteStoreTest, WriterWaitsForAnotherConnectionsLock) {
  Put("aws", "default");
  // Another connection holds the write lock briefly: the store waits for it
  // (busy timeout) instead of failing.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  absl::Time start = absl::Now();
  CredentialRecord r = Put("aws", "default");
  release.join();
  sqlite3_close(other);
  EXPECT_EQ(r.version, 2);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
}

TEST_F(SqliteStoreTest, LockHeldTooLongIsUnavailable) {
  Put("aws", "default");
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::StatusOr<CredentialRecord> r = store_->PutCredential(
      "aws", "default", absl::ZeroDuration(), FakeSeal("aws", "default"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("locked"));
  // Reads are not blocked by a writer in WAL mode.
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(Put("aws", "default").version, 2);
}

TEST_F(SqliteStoreTest, DiskFullIsResourceExhaustedAndLosesNothing) {
  Put("aws", "default");
  Put("aws", "default");
  store_.reset();
  // In a child (file size limits are per process): cap file growth a little
  // above the current files, then try to store a large credential.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    if (!store.ok()) _exit(10);
    off_t largest = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st;
      if (stat((path_ + suffix).c_str(), &st) == 0) {
        largest = std::max(largest, st.st_size);
      }
    }
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(largest + 64 * 1024);
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(11);
    absl::StatusOr<CredentialRecord> r = (*store)->PutCredential(
        "aws", "default", absl::ZeroDuration(),
        [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
          return std::make_pair(std::string(4 << 20, 'x'), "fp");
        });
    if (r.ok()) _exit(12);
    if (r.status().code() != absl::StatusCode::kResourceExhausted) _exit(13);
    if (r.status().message().find("disk full") == absl::string_view::npos) {
      _exit(14);
    }
    if (r.status().message().find("xxxx") != absl::string_view::npos) {
      _exit(15);
    }
    // The store is still usable for reads.
    absl::StatusOr<CredentialRecord> latest =
        (*store)->GetCredential("aws", "default", 0);
    if (!latest.ok() || latest->version != 2) _exit(16);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);

  Reopen();
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  absl::StatusOr<CredentialRecord> latest =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->sealed, SealedFor("aws", "default", 2));
  EXPECT_EQ(Put("aws", "default").version, 3);
}

// --- Scale ----------------------------------------------------------------

TEST_F(SqliteStoreTest, ListingPagesThroughManyProfiles) {
  constexpr int kProfiles = 100000;
  store_.reset();
  // Bulk-load through a raw connection in one transaction (the store's own
  // writes each wait for fsync); two versions per profile.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_stmt* profile = nullptr;
    sqlite3_stmt* version = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(
            db, "INSERT INTO credential_profiles VALUES (?1, ?2, 2, 2, 1)", -1,
            &profile, nullptr),
        SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(
                  db,
                  "INSERT INTO credentials VALUES (?1, ?2, ?3, x'00', 'fp', "
                  "?3, 0)",
                  -1, &version, nullptr),
              SQLITE_OK);
    for (int i = 0; i < kProfiles; ++i) {
      std::string name = absl::StrFormat("p%06d", i);
      const char* provider = i % 2 == 0 ? "aws" : "gcp";
      sqlite3_bind_text(profile, 1, provider, -1, SQLITE_STATIC);
      sqlite3_bind_text(profile, 2, name.c_str(), -1, SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(profile), SQLITE_DONE);
      sqlite3_reset(profile);
      for (int v = 1; v <= 2; ++v) {
        sqlite3_bind_text(version, 1, provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(version, 2, name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(version, 3, v);
        ASSERT_EQ(sqlite3_step(version), SQLITE_DONE);
        sqlite3_reset(version);
      }
    }
    sqlite3_finalize(profile);
    sqlite3_finalize(version);
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  Reopen();

  // A page deep into the keyspace starts right after the cursor.
  ListCredentialsOptions options;
  options.limit = 100;
  options.after_provider = "gcp";
  options.after_profile = "p090001";
  constexpr int kRepeats = 5;
  for (int i = 0; i < kRepeats; ++i) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(options);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->size(), 100u);
    EXPECT_EQ(page->front().profile, "p090003");
    EXPECT_EQ(page->front().version, 2);
  }

  // The same deep in one provider's profiles.
  options.provider = "aws";
  options.after_provider = "aws";
  options.after_profile = "p090000";
  for (int i = 0; i < kRepeats; ++i) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(options);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->size(), 100u);
    EXPECT_EQ(page->front().profile, "p090002");
    EXPECT_EQ(page->back().profile, "p090200");
  }

  options.after_profile = "p099990";
  absl::StatusOr<std::vector<CredentialRecord>> tail =
      store_->ListCredentials(options);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 4u);  // p099992 .. p099998
  EXPECT_EQ(tail->back().profile, "p099998");

  // Walking every page visits each profile once.
  ListCredentialsOptions walk;
  walk.limit = 1000;
  int seen = 0;
  while (true) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(walk);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    seen += static_cast<int>(page->size());
    walk.after_provider = page->back().provider;
    walk.after_profile = page->back().profile;
  }
  EXPECT_EQ(seen, kProfiles);
}

// --- Approval flow --------------------------------------------------------

// An audit hash that shows the chain: "h<sequence><kind><<prev_hash>".
std::string ChainHash(const AuditRecord& e) {
  return absl::StrCat("h", e.sequence, e.kind, "<", e.prev_hash);
}

AuditRecord Event(absl::string_view kind) {
  AuditRecord e;
  e.time = absl::FromUnixMicros(1700000000000001);
  e.kind = std::string(kind);
  e.role = "approver";
  e.request_id = "r-1";
  e.outcome = "ok";
  return e;
}

RequestRecord Request(absl::string_view id, absl::Time created_at) {
  RequestRecord r;
  r.request_id = std::string(id);
  r.session_key = "session-1";
  r.need_id = absl::StrCat("need-", id);
  r.provider = "aws";
  r.profile = "default";
  r.action = "deploy to AWS in us-east-1";
  r.created_at = created_at;
  r.expires_at = created_at + absl::Minutes(5);
  return r;
}

GrantRecord Grant(absl::string_view id, absl::Time created_at,
                  absl::Time expires_at) {
  GrantRecord g;
  g.grant_id = std::string(id);
  g.request_id = "r-1";
  g.session_key = "session-1";
  g.provider = "aws";
  g.profile = "default";
  g.action = "deploy";
  g.credential_version = 3;
  g.scope = 1;
  g.created_at = created_at;
  g.expires_at = expires_at;
  return g;
}

void ExpectSameRequest(const RequestRecord& a, const RequestRecord& b) {
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.session_key, b.session_key);
  EXPECT_EQ(a.need_id, b.need_id);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.requested_ttl, b.requested_ttl);
  EXPECT_EQ(a.agent_peer, b.agent_peer);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.missing_fields, b.missing_fields);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.decided_at, b.decided_at);
  EXPECT_EQ(a.decision, b.decision);
  EXPECT_EQ(a.grant_id, b.grant_id);
}

void ExpectSameGrant(const GrantRecord& a, const GrantRecord& b) {
  EXPECT_EQ(a.grant_id, b.grant_id);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.session_key, b.session_key);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.credential_version, b.credential_version);
  EXPECT_EQ(a.scope, b.scope);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.end_reason, b.end_reason);
}

std::vector<std::string> GrantIds(const std::vector<GrantRecord>& grants) {
  std::vector<std::string> ids;
  for (const GrantRecord& g : grants) ids.push_back(g.grant_id);
  return ids;
}

std::vector<std::string> RequestIds(
    const std::vector<RequestRecord>& requests) {
  std::vector<std::string> ids;
  for (const RequestRecord& r : requests) ids.push_back(r.request_id);
  return ids;
}

TEST_F(SqliteStoreTest, RequestRoundTripsEveryField) {
  RequestRecord open = Request("r-odd", absl::FromUnixMicros(1700000000123456));
  // Separators, digits, NULs, invalid UTF-8 and empty strings all survive.
  open.context = {{"region", "us-east-1"},
                  {std::string("k\0:3:", 5), std::string("\xff\0v", 3)},
                  {"", ""},
                  {"12:", "0:"},
                  {"cluster", std::string(3000, 'c')}};
  open.missing_fields = {"api_key", "", std::string("\0\xfe", 2), "4:abcd"};
  open.session_key = std::string("sess\0ion", 8);
  open.action = "deploy \xe2\x9c\x93";
  open.requested_ttl = absl::Microseconds(90 * 60 * 1000000LL + 7);
  open.agent_peer = "pid=42 uid=1000";
  open.state = 3;
  open.expires_at = absl::InfiniteFuture();
  // Decided, with both infinities and no context at all.
  RequestRecord decided = Request("r-inf", absl::InfinitePast());
  decided.expires_at = absl::InfiniteFuture();
  decided.decided_at = absl::FromUnixMicros(-5);  // Before the epoch.
  decided.requested_ttl = absl::InfiniteDuration();
  decided.decision = "denied: not today";
  decided.grant_id = "g-none";
  FlowWrite write;
  write.requests = {open, decided};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "before reopen" : "after reopen");
    absl::StatusOr<RequestRecord> got = store_->GetRequest("r-odd");
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameRequest(*got, open);
    EXPECT_EQ(got->decided_at, absl::InfinitePast());
    got = store_->GetRequest("r-inf");
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameRequest(*got, decided);
    EXPECT_EQ(got->created_at, absl::InfinitePast());
    EXPECT_EQ(got->expires_at, absl::InfiniteFuture());
    EXPECT_TRUE(got->context.empty());
    Reopen();
  }

  absl::StatusOr<RequestRecord> missing = store_->GetRequest("r-missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no request r-missing"));
}

TEST_F(SqliteStoreTest, RequestsUpsertAndListOldestFirst) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  FlowWrite write;
  // Same created_at for r-b and r-a: request_id breaks the tie.
  write.requests = {Request("r-c", t0 + absl::Seconds(2)), Request("r-b", t0),
                    Request("r-a", t0)};
  // A need_id may come back in the same session once decided.
  write.requests[0].need_id = write.requests[1].need_id;
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  EXPECT_THAT(RequestIds(*store_->ListRequests(false)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));
  EXPECT_THAT(RequestIds(*store_->ListRequests(true)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));

  // Deciding r-b updates it in place.
  RequestRecord decided = Request("r-b", t0);
  decided.state = 4;
  decided.decided_at = t0 + absl::Seconds(1);
  decided.decision = "approved";
  decided.grant_id = "g-1";
  decided.context = {{"region", "eu-west-1"}};
  FlowWrite decide;
  decide.requests = {decided};
  ASSERT_TRUE(store_->WriteFlow(decide, ChainHash).ok());
  absl::StatusOr<RequestRecord> got = store_->GetRequest("r-b");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRequest(*got, decided);
  EXPECT_THAT(RequestIds(*store_->ListRequests(false)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));
  EXPECT_THAT(RequestIds(*store_->ListRequests(true)),
              ::testing::ElementsAre("r-a", "r-c"));
  EXPECT_EQ(RawQuery("SELECT count(*) FROM requests"), "3");
}

TEST_F(SqliteStoreTest, GrantRoundTripsAndUpserts) {
  GrantRecord active = Grant("g-1", absl::FromUnixMicros(1700000000654321),
                             absl::InfiniteFuture());
  active.session_key = std::string("s\0\xff", 3);
  active.credential_version = int64_t{1} << 40;
  active.scope = -2;
  FlowWrite write;
  write.grants = {active};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  absl::StatusOr<GrantRecord> got = store_->GetGrant("g-1");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameGrant(*got, active);
  EXPECT_EQ(got->ended_at, absl::InfiniteFuture());

  GrantRecord released = active;
  released.ended_at = active.created_at + absl::Microseconds(1);
  released.end_reason = "released";
  write.grants = {released};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  Reopen();
  got = store_->GetGrant("g-1");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameGrant(*got, released);
  EXPECT_EQ(RawQuery("SELECT count(*) FROM grants"), "1");

  absl::StatusOr<GrantRecord> missing = store_->GetGrant("g-missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no grant g-missing"));
}

TEST_F(SqliteStoreTest, ListGrantsFiltersAndPages) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  const absl::Time now = t0 + absl::Hours(1);
  FlowWrite write;
  write.grants = {
      Grant("g-active-b", t0, now + absl::Minutes(1)),
      Grant("g-active-a", t0, absl::InfiniteFuture()),
      Grant("g-expired", t0 + absl::Seconds(1), now),  // Expires at `now`.
      Grant("g-released", t0 + absl::Seconds(2), now + absl::Hours(1)),
      Grant("g-old", absl::InfinitePast(), now + absl::Hours(1)),
      Grant("g-late", t0 + absl::Seconds(3), now + absl::Seconds(1)),
  };
  write.grants[3].ended_at = now - absl::Minutes(1);
  write.grants[3].end_reason = "released";
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());

  ListGrantsOptions active;
  active.now = now;
  EXPECT_THAT(
      GrantIds(*store_->ListGrants(active)),
      ::testing::ElementsAre("g-old", "g-active-a", "g-active-b", "g-late"));
  ListGrantsOptions all = active;
  all.include_ended = true;
  EXPECT_THAT(GrantIds(*store_->ListGrants(all)),
              ::testing::ElementsAre("g-old", "g-active-a", "g-active-b",
                                     "g-expired", "g-released", "g-late"));

  // Pages of two, resuming after the last (created_at, grant_id) seen;
  // the cursor splits a tie on created_at.
  std::vector<std::string> seen;
  ListGrantsOptions page = all;
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::vector<GrantRecord>> got = store_->ListGrants(page);
    ASSERT_TRUE(got.ok()) << got.status();
    if (got->empty()) break;
    EXPECT_LE(got->size(), 2u);
    for (const GrantRecord& g : *got) seen.push_back(g.grant_id);
    page.after_created_at = got->back().created_at;
    page.after_grant_id = got->back().grant_id;
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre("g-old", "g-active-a", "g-active-b",
                                     "g-expired", "g-released", "g-late"));
  ListGrantsOptions after_tie = active;
  after_tie.after_created_at = t0;
  after_tie.after_grant_id = "g-active-a";
  EXPECT_THAT(GrantIds(*store_->ListGrants(after_tie)),
              ::testing::ElementsAre("g-active-b", "g-late"));

  // Later, fewer are active.
  ListGrantsOptions later = active;
  later.now = now + absl::Minutes(30);
  EXPECT_THAT(GrantIds(*store_->ListGrants(later)),
              ::testing::ElementsAre("g-old", "g-active-a"));

  ListGrantsOptions bad = active;
  bad.limit = 0;
  EXPECT_EQ(store_->ListGrants(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, StandingApprovalsRoundTripOldestFirst) {
  StandingRecord newer;
  newer.id = "s-2";
  newer.provider = "github";
  newer.profile = "bot";
  newer.action_pattern = "push to *";
  newer.created_at = absl::FromUnixMicros(1700000000000002);
  newer.expires_at = absl::InfiniteFuture();
  StandingRecord older = newer;
  older.id = "s-1";
  older.provider = "aws";
  older.action_pattern = std::string("deploy\0*", 8);
  older.created_at = absl::InfinitePast();
  older.expires_at = absl::FromUnixSeconds(1800000000);
  FlowWrite write;
  write.standing = {newer, older};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  older.revoked = true;
  write.standing = {older};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  Reopen();

  absl::StatusOr<std::vector<StandingRecord>> listed = store_->ListStanding();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const StandingRecord& want = i == 0 ? older : newer;
    const StandingRecord& got = (*listed)[i];
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.provider, want.provider);
    EXPECT_EQ(got.profile, want.profile);
    EXPECT_EQ(got.action_pattern, want.action_pattern);
    EXPECT_EQ(got.created_at, want.created_at);
    EXPECT_EQ(got.expires_at, want.expires_at);
    EXPECT_EQ(got.revoked, want.revoked);
  }
}

TEST_F(SqliteStoreTest, WriteFlowChainsAuditWithAppendAudit) {
  ASSERT_TRUE(store_->AppendAudit(Event("credential.put"), ChainHash).ok());
  std::vector<AuditRecord> hashed;
  auto recording_hash = [&](const AuditRecord& e) {
    hashed.push_back(e);
    return ChainHash(e);
  };
  FlowWrite write;
  write.requests = {Request("r-1", absl::FromUnixSeconds(1700000000))};
  write.audit = {Event("request.approved"), Event("grant.created")};
  ASSERT_TRUE(store_->WriteFlow(write, recording_hash).ok());
  ASSERT_EQ(hashed.size(), 2u);
  EXPECT_EQ(hashed[0].sequence, 2);
  EXPECT_EQ(hashed[0].prev_hash, "h1credential.put<");
  EXPECT_EQ(hashed[1].sequence, 3);
  EXPECT_EQ(hashed[1].prev_hash, ChainHash(hashed[0]));
  absl::StatusOr<AuditRecord> last =
      store_->AppendAudit(Event("grant.released"), ChainHash);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->sequence, 4);
  EXPECT_EQ(last->prev_hash, ChainHash(hashed[1]));

  Reopen();
  absl::StatusOr<std::vector<AuditRecord>> listed =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 4u);
  std::string prev;
  for (size_t i = 0; i < listed->size(); ++i) {
    const AuditRecord& e = (*listed)[i];
    EXPECT_EQ(e.sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ(e.prev_hash, prev);
    EXPECT_EQ(e.hash, ChainHash(e));
    prev = e.hash;
  }
  EXPECT_EQ((*listed)[1].kind, "request.approved");
  EXPECT_EQ((*listed)[1].request_id, "r-1");
  EXPECT_EQ((*listed)[1].time, absl::FromUnixMicros(1700000000000001));
}

TEST_F(SqliteStoreTest, FailedWriteFlowAppliesNothing) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  FlowWrite setup;
  setup.requests = {Request("r-1", t0)};
  setup.audit = {Event("request.added")};
  ASSERT_TRUE(store_->WriteFlow(setup, ChainHash).ok());

  // The decision, its grant, a standing rule and two audit events; the
  // second event's insert fails (a test trigger), after everything else was
  // written inside the transaction.
  RequestRecord decided = Request("r-1", t0);
  decided.decided_at = t0 + absl::Seconds(1);
  decided.decision = "approved";
  decided.grant_id = "g-1";
  StandingRecord standing;
  standing.id = "s-1";
  standing.provider = "aws";
  standing.profile = "default";
  standing.action_pattern = "*";
  FlowWrite write;
  write.requests = {decided};
  write.grants = {Grant("g-1", t0, absl::InfiniteFuture())};
  write.standing = {standing};
  write.audit = {Event("request.approved"), Event("test.fail")};
  RawExec(
      "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events"
      " WHEN NEW.kind = 'test.fail'"
      " BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END");
  absl::Status failed = store_->WriteFlow(write, ChainHash);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.message(), HasSubstr("injected audit failure"));

  auto expect_untouched = [&] {
    absl::StatusOr<RequestRecord> request = store_->GetRequest("r-1");
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_EQ(request->decided_at, absl::InfinitePast());
    EXPECT_EQ(request->grant_id, "");
    EXPECT_EQ(store_->ListRequests(true)->size(), 1u);
    EXPECT_EQ(store_->GetGrant("g-1").status().code(),
              absl::StatusCode::kNotFound);
    ListGrantsOptions all;
    all.include_ended = true;
    EXPECT_TRUE(store_->ListGrants(all)->empty());
    EXPECT_TRUE(store_->ListStanding()->empty());
    absl::StatusOr<std::vector<AuditRecord>> audit =
        store_->ListAudit(AuditQuery());
    ASSERT_TRUE(audit.ok()) << audit.status();
    ASSERT_EQ(audit->size(), 1u);
    EXPECT_EQ(audit->front().kind, "request.added");
  };
  expect_untouched();

  // Invalid parts are refused before anything is written.
  FlowWrite no_grant_id = write;
  no_grant_id.audit = {Event("request.approved")};
  no_grant_id.grants[0].grant_id = "";
  absl::Status refused = store_->WriteFlow(no_grant_id, ChainHash);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("grant id"));
  FlowWrite no_hash = no_grant_id;
  no_hash.grants[0].grant_id = "g-1";
  EXPECT_EQ(store_->WriteFlow(no_hash, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  FlowWrite no_request_id = no_hash;
  no_request_id.requests[0].request_id = "";
  EXPECT_EQ(store_->WriteFlow(no_request_id, ChainHash).code(),
            absl::StatusCode::kInvalidArgument);
  FlowWrite no_standing_id = no_hash;
  no_standing_id.standing[0].id = "";
  EXPECT_EQ(store_->WriteFlow(no_standing_id, ChainHash).code(),
            absl::StatusCode::kInvalidArgument);
  expect_untouched();
  Reopen();
  expect_untouched();

  // Without the fault the same write lands whole, chained after the first
  // event with no gap.
  RawExec("DROP TRIGGER fail_audit");
  write.audit = {Event("request.approved"), Event("grant.created")};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  EXPECT_TRUE(store_->ListRequests(true)->empty());
  EXPECT_TRUE(store_->GetGrant("g-1").ok());
  EXPECT_EQ(store_->ListStanding()->size(), 1u);
  absl::StatusOr<std::vector<AuditRecord>> audit =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 3u);
  EXPECT_EQ((*audit)[1].sequence, 2);
  EXPECT_EQ((*audit)[1].prev_hash, (*audit)[0].hash);
}

TEST_F(SqliteStoreTest, ConcurrentFlowWritesKeepOneChain) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        FlowWrite write;
        write.grants = {Grant(absl::StrCat("g-", t, "-", i),
                              absl::FromUnixSeconds(1700000000 + i),
                              absl::InfiniteFuture())};
        write.audit = {Event("grant.created"), Event("grant.sent")};
        if (!store_->WriteFlow(write, ChainHash).ok()) ++failures;
        if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ListGrantsOptions all;
  all.include_ended = true;
  all.limit = 1000;
  EXPECT_EQ(store_->ListGrants(all)->size(),
            static_cast<size_t>(kThreads * kWrites));
  AuditQuery query;
  query.limit = 1000;
  absl::StatusOr<std::vector<AuditRecord>> audit = store_->ListAudit(query);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), static_cast<size_t>(3 * kThreads * kWrites));
  std::string prev;
  for (size_t i = 0; i < audit->size(); ++i) {
    EXPECT_EQ((*audit)[i].sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*audit)[i].prev_hash, prev);
    prev = (*audit)[i].hash;
  }
}

// Group commit: holds the writer inside a first credential write until
// every one of `writes`, each on its own thread, is queued behind it, then
// lets it finish; returns once all are done.
void WithWritesQueuedBehindASlowOne(Store& store,
                                    std::vector<std::function<void()>> writes) {
  absl::Notification inside, release;
  std::thread first([&] {
    auto slow = [&](int64_t version)
        -> absl::StatusOr<std::pair<std::string, std::string>> {
      inside.Notify();
      release.WaitForNotification();
      return std::make_pair(SealedFor("aws", "first", version),
                            std::string("fp"));
    };
    EXPECT_TRUE(
        store.PutCredential("aws", "first", absl::ZeroDuration(), slow).ok());
  });
  inside.WaitForNotification();
  std::vector<std::thread> threads;
  for (std::function<void()>& write : writes)
    threads.emplace_back([&write] { write(); });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (store.GetWriteStats().queued < static_cast<int64_t>(writes.size()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(store.GetWriteStats().queued, static_cast<int64_t>(writes.size()));
  release.Notify();
  first.join();
  for (std::thread& t : threads) t.join();
}

void ExpectOneAuditChain(Store& store, size_t events) {
  AuditQuery query;
  query.limit = 1000;
  absl::StatusOr<std::vector<AuditRecord>> audit = store.ListAudit(query);
  ASSERT_TRUE(audit.ok()) << audit.status();
  ASSERT_EQ(audit->size(), events);
  std::string prev;
  for (size_t i = 0; i < audit->size(); ++i) {
    EXPECT_EQ((*audit)[i].sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*audit)[i].prev_hash, prev);
    EXPECT_EQ((*audit)[i].hash, ChainHash((*audit)[i]));
    prev = (*audit)[i].hash;
  }
}

TEST_F(SqliteStoreTest, WritesQueuedDuringACommitShareTheNextOne) {
  const Store::WriteStats before = store_->GetWriteStats();
  std::atomic<int> failures{0};
  std::vector<std::function<void()>> writes;
  for (int i = 0; i < 4; ++i) {
    writes.push_back([&, i] {
      const std::string profile = absl::StrCat("q", i);
      auto audit_of = [](const CredentialRecord& r) {
        AuditRecord e = Event("credential.put");
        e.profile = r.profile;
        return e;
      };
      if (!store_
               ->PutCredential("aws", profile, absl::ZeroDuration(),
                               FakeSeal("aws", profile), audit_of, ChainHash)
               .ok()) {
        ++failures;
      }
    });
  }
  writes.push_back([&] {
    FlowWrite write;
    write.grants = {Grant("g-queued", absl::FromUnixSeconds(1700000000),
                          absl::InfiniteFuture())};
    write.audit = {Event("grant.created")};
    if (!store_->WriteFlow(write, ChainHash).ok()) ++failures;
  });
  writes.push_back([&] {
    if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) ++failures;
  });
  WithWritesQueuedBehindASlowOne(*store_, std::move(writes));
  EXPECT_EQ(failures.load(), 0);

  const Store::WriteStats after = store_->GetWriteStats();
  EXPECT_EQ(after.writes - before.writes, 7);
  // The first alone, then the six queued behind it in one transaction.
  EXPECT_EQ(after.transactions - before.transactions, 2);
  EXPECT_EQ(after.batches_redone - before.batches_redone, 0);
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("q", i), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->sealed, SealedFor("aws", absl::StrCat("q", i), 1));
  }
  EXPECT_TRUE(store_->GetGrant("g-queued").ok());
  ExpectOneAuditChain(*store_, 6);
  // And all of it was committed: a fresh connection sees it.
  Reopen();
  EXPECT_TRUE(store_->GetCredential("aws", "q3", 0).ok());
  ExpectOneAuditChain(*store_, 6);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_F(SqliteStoreTest, TheChangeMarkMovesWithEveryCommit) {
  Put("aws", "default");
  std::optional<Store::ChangeMark> before = store_->CurrentChangeMark();
  ASSERT_TRUE(before.has_value());
  // Reads commit nothing.
  ASSERT_TRUE(store_->GetCredential("aws", "default", 0).ok());
  ASSERT_TRUE(store_->ListCredentials({}).ok());
  EXPECT_EQ(store_->CurrentChangeMark(), before);

  auto moved = [&](const char* what) {
    std::optional<Store::ChangeMark> now = store_->CurrentChangeMark();
    ASSERT_TRUE(now.has_value()) << what;
    EXPECT_NE(*now, *before) << what;
    before = now;
  };
  Put("aws", "default");
  moved("a new version");
  ASSERT_TRUE(store_->PutMeta("k", "v").ok());
  moved("a metadata value");
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  moved("a deletion");
}

// What another process gets from the database file while the store has it
// open: the sqlite3 shell's exit code and output for a count of the rows.
std::pair<int, std::string> CountInAnotherProcess(const std::string& path) {
  int out[2];
  if (pipe(out) != 0) return {-1, "pipe"};
  pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    execl("/usr/bin/sqlite3", "sqlite3", "-readonly", path.c_str(),
          "SELECT count(*) FROM credentials;", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0)
    text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

TEST_F(SqliteStoreTest, NoOtherProcessCanReadOrWriteTheOpenDatabase) {
  Put("aws", "default");
  // Locked for as long as the store is open, so nothing but the store's
  // own commits changes what it holds in memory.
  std::pair<int, std::string> open = CountInAnotherProcess(path_);
  EXPECT_NE(open.first, 0) << open.second;
  EXPECT_THAT(open.second, HasSubstr("locked"));
  store_.reset();
  std::pair<int, std::string> closed = CountInAnotherProcess(path_);
  EXPECT_EQ(closed.first, 0) << closed.second;
  EXPECT_EQ(closed.second, "1\n");
  Reopen();
  EXPECT_THAT(CountInAnotherProcess(path_).second, HasSubstr("locked"));
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
}

// Every field of two records.
void ExpectSameRecord(const CredentialRecord& got,
                      const CredentialRecord& want) {
  EXPECT_EQ(got.provider, want.provider);
  EXPECT_EQ(got.profile, want.profile);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.sealed, want.sealed);
  EXPECT_EQ(got.fingerprint, want.fingerprint);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.first_created_at, want.first_created_at);
  EXPECT_EQ(got.rotation_period, want.rotation_period);
  EXPECT_EQ(got.version_count, want.version_count);
}

TEST_F(SqliteStoreTest, LatestVersionsWrittenOrReadAreAnsweredFromMemory) {
  Put("aws", "default");
  const CredentialRecord second = Put("aws", "default", absl::Hours(48));
  Store::ReadStats before = store_->GetReadStats();
  absl::StatusOr<CredentialRecord> got =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  Store::ReadStats after = store_->GetReadStats();
  EXPECT_EQ(after.latest_from_memory, before.latest_from_memory + 1);
  EXPECT_EQ(after.latest_from_database, before.latest_from_database);
  EXPECT_EQ(after.latest_kept, 1);
  // An older version is read from the database, and counts as neither.
  EXPECT_EQ(store_->GetCredential("aws", "default", 1)->version, 1);
  EXPECT_EQ(store_->GetReadStats().latest_from_database,
            after.latest_from_database);

  // What was kept from the write is what the database holds.
  Reopen();
  EXPECT_EQ(store_->GetReadStats().latest_kept, 0);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  EXPECT_EQ(store_->GetReadStats().latest_from_database, 1);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  EXPECT_EQ(store_->GetReadStats().latest_from_memory, 1);
  // A profile that is not stored is looked for each time, and not kept.
  EXPECT_EQ(store_->GetCredential("aws", "none", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCredential("aws", "none", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetReadStats().latest_from_database, 3);
  EXPECT_EQ(store_->GetReadStats().latest_kept, 1);

  // A deletion and a new first version.
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  EXPECT_EQ(store_->GetCredential("aws", "default", 0).status().code(),
            absl::StatusCode::kNotFound);
  const CredentialRecord again = Put("aws", "default");
  EXPECT_EQ(again.version, 1);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, again);
}

// The index is the broker's one cache of credential facts: each kind of
// commit keeps it current, and those that change no credential row (an
// approval's flow write, a metadata value such as a default profile) leave
// its entries answering from memory.
TEST_F(SqliteStoreTest, EveryKindOfCommitKeepsTheIndexCurrent) {
  Put("aws", "default");
  Put("aws", "other");
  auto from_memory = [&](const char* profile, int64_t version,
                         const char* what) {
    const Store::ReadStats before = store_->GetReadStats();
    absl::StatusOr<CredentialRecord> got =
        store_->GetCredential("aws", profile, 0);
    ASSERT_TRUE(got.ok()) << what << ": " << got.status();
    EXPECT_EQ(got->version, version) << what;
    EXPECT_EQ(got->sealed, SealedFor("aws", profile, version)) << what;
    EXPECT_EQ(store_->GetReadStats().latest_from_memory,
              before.latest_from_memory + 1)
        << what;
  };
  from_memory("default", 1, "a new version");
  ASSERT_TRUE(store_->PutMeta("default_profile/aws", "other").ok());
  from_memory("default", 1, "after a metadata value");
  FlowWrite flow;
  AuditRecord event;
  event.kind = "request.approved";
  flow.audit.push_back(event);
  ASSERT_TRUE(store_->WriteFlow(flow, ChainHash).ok());
  from_memory("default", 1, "after a flow write");
  Put("aws", "default");
  from_memory("default", 2, "a newer version");
  from_memory("other", 1, "another profile's entry");
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  EXPECT_TRUE(
      absl::IsNotFound(store_->GetCredential("aws", "default", 0).status()));
  from_memory("other", 1, "after another profile's deletion");
}

TEST_F(SqliteStoreTest, AWriteRolledBackLeavesTheKeptVersion) {
  const CredentialRecord first = Put("aws", "default");
  auto failing =
      [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
    return absl::InternalError("sealer exploded");
  };
  auto audit_of = [](const CredentialRecord&) { return AuditRecord(); };
  // Refused before its row is written, and after (its audit event has no
  // hash function, so the whole transaction is rolled back).
  EXPECT_FALSE(
      store_->PutCredential("aws", "default", absl::ZeroDuration(), failing)
          .ok());
  EXPECT_FALSE(store_
                   ->PutCredential("aws", "default", absl::ZeroDuration(),
                                   FakeSeal("aws", "default"), audit_of,
                                   nullptr)
                   .ok());
  const Store::ReadStats before = store_->GetReadStats();
  absl::StatusOr<CredentialRecord> got =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, first);
  EXPECT_EQ(store_->GetReadStats().latest_from_memory,
            before.latest_from_memory + 1);
  EXPECT_EQ(Put("aws", "default").version, 2);
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 2);
}

TEST_F(SqliteStoreTest,
       LatestReadsRacingWritesNeverAnswerOlderThanAcknowledged) {
  // Two profiles written in turn by one thread; readers check each answer
  // against the last version acknowledged before their read began, and that
  // the record is the one stored for that version. A third profile is
  // written now and then, a commit that changes neither.
  std::atomic<int64_t> acknowledged[2] = {{0}, {0}};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  const std::string profiles[2] = {"a", "b"};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      while (!done.load()) {
        const int i = t % 2;
        const int64_t floor = acknowledged[i].load();
        absl::StatusOr<CredentialRecord> r =
            store_->GetCredential("aws", profiles[i], 0);
        if (floor == 0 && absl::IsNotFound(r.status())) continue;
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_GE(r->version, floor);
        ASSERT_EQ(r->sealed, SealedFor("aws", profiles[i], r->version));
        ASSERT_EQ(r->version_count, r->version);
        ++reads;
      }
    });
  }
  for (int n = 1; n <= 150; ++n) {
    for (int i = 0; i < 2; ++i) {
      const CredentialRecord r = Put("aws", profiles[i]);
      ASSERT_EQ(r.version, n);
      acknowledged[i].store(n);
    }
    if (n % 10 == 0) {
      ASSERT_TRUE(store_
                      ->PutCredential("gcp", "x", absl::ZeroDuration(),
                                      FakeSeal("gcp", "x"))
                      .ok());
    }
  }
  done.store(true);
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(store_->GetReadStats().latest_from_memory, 0);
}

TEST_F(SqliteStoreTest, CheckpointsDoNotEmptyTheKeptVersions) {
  // Enough versions of 50 profiles for background checkpoints (see
  // TheLogIsCheckpointedInTheBackgroundAndStaysBounded): another connection,
  // but no commit.
  for (int i = 0; i < 1500; ++i) Put("aws", absl::StrCat("c", i % 50));
  EXPECT_GE(store_->GetWriteStats().checkpoints, 1);
  const Store::ReadStats before = store_->GetReadStats();
  for (int p = 0; p < 50; ++p) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("c", p), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 30);
  }
  EXPECT_EQ(store_->GetReadStats().latest_from_memory,
            before.latest_from_memory + 50);
  EXPECT_EQ(store_->GetReadStats().latest_kept, 50);
}

TEST_F(SqliteStoreTest, TheLogIsCheckpointedInTheBackgroundAndStaysBounded) {
  // 2,500 versions write several times SQLite's checkpoint threshold
  // (1,000 pages) to the log.
  const std::string wal = path_ + "-wal";
  int64_t largest = 0;
  for (int i = 0; i < 2500; ++i) {
    Put("aws", absl::StrCat("c", i % 50));
    struct stat st;
    if (stat(wal.c_str(), &st) == 0)
      largest = std::max<int64_t>(largest, st.st_size);
  }
  EXPECT_GE(store_->GetWriteStats().checkpoints, 1);
  // Never checkpointed, the log would hold every page written; the bound is
  // where the writer checkpoints itself (4,000 pages of 4 KiB plus a
  // 24-byte frame header), and a commit's worth above it.
  EXPECT_LT(largest, 4100 * (4096 + 24));
  Reopen();
  for (int p = 0; p < 50; ++p) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("c", p), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 50);
  }
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_F(SqliteStoreTest, AWriteThatFailsInASharedCommitFailsAlone) {
  const Store::WriteStats before = store_->GetWriteStats();
  std::atomic<int> failures{0};
  absl::Status failed;
  std::vector<std::function<void()>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back([&, i] {
      const std::string profile = absl::StrCat("ok", i);
      if (!store_
               ->PutCredential("aws", profile, absl::ZeroDuration(),
                               FakeSeal("aws", profile))
               .ok()) {
        ++failures;
      }
    });
  }
  writes.push_back([&] {
    auto exploding =
        [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
      return absl::InternalError("sealer exploded");
    };
    failed =
        store_->PutCredential("aws", "bad", absl::ZeroDuration(), exploding)
            .status();
  });
  writes.push_back([&] {
    if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) ++failures;
  });
  WithWritesQueuedBehindASlowOne(*store_, std::move(writes));

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.message(), "sealer exploded");
  EXPECT_EQ(store_->GetCredential("aws", "bad", 0).status().code(),
            absl::StatusCode::kNotFound);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(store_->GetCredential("aws", absl::StrCat("ok", i), 0).ok());
  }
  ExpectOneAuditChain(*store_, 1);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  // The five queued writes were one batch, rolled back for the failing
  // one, and the four others committed alone.
  const Store::WriteStats after = store_->GetWriteStats();
  EXPECT_EQ(after.batches_redone - before.batches_redone, 1);
  EXPECT_EQ(after.transactions - before.transactions, 1 + 4);
}

// --- Durability -----------------------------------------------------------

// A writer killed at a random moment loses none of the writes it reported.
TEST_F(SqliteStoreTest, KilledWriterLosesNoAcknowledgedWrite) {
  store_.reset();
  std::mt19937 rng(std::random_device{}());
  int64_t acknowledged_total = 0;
  for (int iteration = 0; iteration < 4; ++iteration) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
      if (!store.ok()) _exit(2);
      for (int i = 0; i < 100000; ++i) {
        absl::StatusOr<CredentialRecord> r = (*store)->PutCredential(
            "aws", "killed", absl::ZeroDuration(), FakeSeal("aws", "killed"));
        if (!r.ok()) _exit(3);
        int64_t v = r->version;
        if (write(fds[1], &v, sizeof(v)) != sizeof(v)) _exit(4);
      }
      _exit(0);
    }
    close(fds[1]);
    std::uniform_int_distribution<int> delay_ms(30, 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus))
        << "child exited with " << WEXITSTATUS(wstatus);
    std::vector<int64_t> acknowledged;
    int64_t v = 0;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) acknowledged.push_back(v);
    close(fds[0]);
    acknowledged_total += static_cast<int64_t>(acknowledged.size());

    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CheckIntegrity().ok());
    for (int64_t version : acknowledged) {
      absl::StatusOr<CredentialRecord> r =
          (*store)->GetCredential("aws", "killed", version);
      ASSERT_TRUE(r.ok()) << "acknowledged version " << version
                          << " lost: " << r.status();
      EXPECT_EQ(r->sealed, SealedFor("aws", "killed", version));
    }
    // History has no holes.
    absl::StatusOr<std::vector<CredentialRecord>> history =
        (*store)->ListVersions("aws", "killed");
    ASSERT_TRUE(history.ok());
    for (size_t i = 0; i < history->size(); ++i) {
      ASSERT_EQ((*history)[i].version, static_cast<int64_t>(i + 1));
    }
    if (!acknowledged.empty()) {
      EXPECT_GE(static_cast<int64_t>(history->size()), acknowledged.back());
    }
  }
  EXPECT_GT(acknowledged_total, 0);
}

TEST_F(SqliteStoreTest, BindingsUpsertByProviderAndResource) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetBinding("aws", "prod-eu").status()));
  BindingRecord b;
  b.provider = "aws";
  b.resource = "prod-eu";
  b.profile = "default";
  b.fingerprint = "fp1";
  b.credential_version = 1;
  b.grant_id = "g-1";
  b.created_at = b.updated_at = absl::FromUnixSeconds(1700000000);
  BindingRecord gcp = b;
  gcp.provider = "gcp";
  FlowWrite w;
  w.bindings = {b, gcp};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());

  // An update keeps created_at and replaces the rest.
  b.fingerprint = "fp2";
  b.credential_version = 2;
  b.grant_id = "g-2";
  b.created_at = b.updated_at = absl::FromUnixSeconds(1700000100);
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  absl::StatusOr<BindingRecord> got = store_->GetBinding("aws", "prod-eu");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->fingerprint, "fp2");
  EXPECT_EQ(got->credential_version, 2);
  EXPECT_EQ(got->grant_id, "g-2");
  EXPECT_EQ(got->created_at, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(got->updated_at, absl::FromUnixSeconds(1700000100));

  EXPECT_EQ(store_->ListBindings("")->size(), 2u);
  ASSERT_EQ(store_->ListBindings("gcp")->size(), 1u);
  EXPECT_EQ(store_->ListBindings("gcp")->at(0).fingerprint, "fp1");
  EXPECT_TRUE(store_->ListBindings("azure")->empty());

  // A binding without a resource is the caller's mistake; nothing is written.
  BindingRecord bad = b;
  bad.resource = "";
  w.bindings = {bad};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->WriteFlow(w, nullptr)));

  // Requests keep their binding note.
  FlowWrite rw;
  RequestRecord r;
  r.request_id = "r-1";
  r.binding_note = "prod-eu was created with aws/default";
  rw.requests = {r};
  ASSERT_TRUE(store_->WriteFlow(rw, nullptr).ok());
  EXPECT_EQ(store_->GetRequest("r-1")->binding_note, r.binding_note);
}

}  // namespace
}  // namespace credbroker
