// SqliteStore: its files (permissions, reopening), schema versions and
// integrity (audit chain, reserve, corruption).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "broker/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/sqlite_store_fixture.h"

namespace credbroker {
namespace testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

}  // namespace
}  // namespace testing
}  // namespace credbroker
