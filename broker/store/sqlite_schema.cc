#include <sqlite3.h>

#include <iterator>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker/common/status_macros.h"
#include "broker/store/sqlite_statement.h"
#include "broker/store/sqlite_store.h"
#include "broker/store/sqlite_store_impl.h"

namespace credbroker {
namespace sqlite_internal {
namespace {

// Schema migrations: kMigrations[v] takes a database from version v-1 to v
// (kMigrations[0] is unused). Each step runs in its own transaction together
// with `PRAGMA user_version = v`. Never edit a released step: append one.
// foreign_keys is ON while steps run (it cannot change inside a
// transaction), so a step that rebuilds a table must keep references valid.
constexpr const char* kMigrations[] = {
    "",
    // 1: broker metadata and credential versions. credential_profiles holds
    // one row per provider/profile (the latest version and first creation
    // time), so that listing the latest versions is an index walk.
    R"sql(
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
)sql",
    // 2: the append-only, hash-chained audit log.
    R"sql(
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
)sql",
    // 3: the approval flow. Times are Unix micros, with the int64 minimum and
    // maximum standing for InfinitePast and InfiniteFuture. A need_id may be
    // reused within a session once its earlier request is decided, so
    // (session_key, need_id) is indexed but not unique. context and
    // missing_fields hold length-prefixed strings (see EncodeStrings).
    R"sql(
CREATE TABLE requests (
  request_id       TEXT PRIMARY KEY NOT NULL CHECK (request_id <> ''),
  session_key      TEXT NOT NULL,
  need_id          TEXT NOT NULL,
  provider         TEXT NOT NULL,
  profile          TEXT NOT NULL,
  action           TEXT NOT NULL,
  context          BLOB NOT NULL,     -- key, value, key, value, ...
  requested_ttl_us INTEGER NOT NULL,
  agent_peer       TEXT NOT NULL,
  state            INTEGER NOT NULL,
  missing_fields   BLOB NOT NULL,
  created_at       INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  decided_at       INTEGER NOT NULL,  -- int64 minimum: undecided.
  decision         TEXT NOT NULL,
  grant_id         TEXT NOT NULL
);
CREATE INDEX requests_by_need ON requests (session_key, need_id);
CREATE INDEX requests_by_created ON requests (created_at, request_id);
CREATE INDEX requests_by_decided
  ON requests (decided_at, created_at, request_id);
CREATE TABLE grants (
  grant_id           TEXT PRIMARY KEY NOT NULL CHECK (grant_id <> ''),
  request_id         TEXT NOT NULL,
  session_key        TEXT NOT NULL,
  provider           TEXT NOT NULL,
  profile            TEXT NOT NULL,
  action             TEXT NOT NULL,
  credential_version INTEGER NOT NULL,
  scope              INTEGER NOT NULL,
  created_at         INTEGER NOT NULL,
  expires_at         INTEGER NOT NULL,
  ended_at           INTEGER NOT NULL,  -- int64 maximum: not ended.
  end_reason         TEXT NOT NULL
);
CREATE INDEX grants_by_created ON grants (created_at, grant_id);
CREATE TABLE standing_approvals (
  id             TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
  provider       TEXT NOT NULL,
  profile        TEXT NOT NULL,
  action_pattern TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  revoked        INTEGER NOT NULL CHECK (revoked IN (0, 1))
);
CREATE INDEX standing_approvals_by_created
  ON standing_approvals (created_at, id);
)sql",
    // 4: resource bindings (resource -> the provider/profile and credential
    // fingerprint that created it), and the binding note shown to approvers
    // with a request. Times are Unix micros.
    R"sql(
CREATE TABLE resource_bindings (
  provider           TEXT NOT NULL CHECK (provider <> ''),
  resource           TEXT NOT NULL CHECK (resource <> ''),
  profile            TEXT NOT NULL CHECK (profile <> ''),
  fingerprint        TEXT NOT NULL,
  credential_version INTEGER NOT NULL,
  grant_id           TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  PRIMARY KEY (provider, resource)
) WITHOUT ROWID;
ALTER TABLE requests ADD COLUMN binding_note TEXT NOT NULL DEFAULT '';
)sql",
    // 5: requests_by_need (step 3) served no query: requests are matched to
    // needs in memory. Each request written and each decision updated it,
    // one more page in the commit an agent waits on.
    R"sql(
DROP INDEX IF EXISTS requests_by_need;
)sql",
    // 6: each row that can release or decide something carries a MAC under
    // the data key (the core computes and checks it; the store keeps it).
    R"sql(
ALTER TABLE requests ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE standing_approvals ADD COLUMN mac TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion + 1,
              "kMigrations must have one step per schema version");

}  // namespace

absl::Status SqliteStore::Initialize() {
  absl::MutexLock lock(&mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA journal_mode = WAL"));
    CB_ASSIGN_OR_RETURN(bool row, s.Step(OpenContext("enable WAL")));
    std::string mode = row ? s.Text(0) : "";
    if (mode != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database ", path_, " cannot use write-ahead logging (mode \"",
          mode, "\"): is the data directory on a network file system?"));
    }
  }
  CB_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL", "configure"));
  CB_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "configure"));
  // Deleted credentials are overwritten, not left in free pages.
  CB_RETURN_IF_ERROR(Exec("PRAGMA secure_delete = ON", "configure"));
  return Migrate();
}

absl::Status SqliteStore::Migrate() {
  while (true) {
    // Read and migrate inside one write transaction so that two processes
    // opening a new database do not both apply a step.
    CB_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", OpenContext("migrate")));
    absl::StatusOr<int> version = UserVersion();
    if (!version.ok()) {
      Rollback();
      return version.status();
    }
    if (*version > kSqliteSchemaVersion) {
      Rollback();
      return absl::FailedPreconditionError(absl::StrCat(
          "the database ", path_, " was created by a newer credbroker (schema ",
          *version, ", this build knows ", kSqliteSchemaVersion,
          "): upgrade credbroker, or use another data directory"));
    }
    if (*version == kSqliteSchemaVersion) {
      return Exec("COMMIT", OpenContext("migrate"));
    }
    const int next = *version + 1;
    absl::Status step =
        Exec(kMigrations[next],
             OpenContext(absl::StrCat("migrate to schema ", next)));
    if (step.ok()) {
      step = Exec(absl::StrCat("PRAGMA user_version = ", next).c_str(),
                  OpenContext("migrate"));
    }
    if (step.ok()) step = Exec("COMMIT", OpenContext("migrate"));
    if (!step.ok()) {
      Rollback();
      return step;
    }
  }
}

absl::StatusOr<int> SqliteStore::UserVersion() {
  CB_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA user_version"));
  CB_ASSIGN_OR_RETURN(bool row, s.Step(OpenContext("read schema version")));
  if (!row) return absl::InternalError("PRAGMA user_version returned no row");
  return static_cast<int>(s.Int(0));
}

}  // namespace sqlite_internal
}  // namespace credbroker
