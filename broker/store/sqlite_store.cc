#include "broker/store/sqlite_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"

namespace credbroker {
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

constexpr int kBusyTimeoutMs = 5000;

// The broker owns its database. Every connection of the store opens it
// through SQLite's "unix-excl" VFS: the first connection to read takes an
// exclusive lock on the file, held until the last one closes, so the
// store's own connections (writer, readers, checkpointer) share it and no
// other process can read or write it while the store is open ("database is
// locked"). The write-ahead log's index is then kept in this process's
// heap, not in a -shm file. So every change to the database is one of this
// store's own commits, and what the store (and its users) keep in memory
// need only follow those (CurrentChangeMark).
constexpr const char* kExclusiveVfs = "unix-excl";

std::string ErrnoText(int err) { return std::strerror(err); }

// Maps an SQLite result code to a status. `what` says what we were doing;
// SQLite's messages never contain bound values, so no secret can leak.
absl::Status SqliteStatus(int rc, sqlite3* db, absl::string_view what) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = absl::StrCat(what, ": ", detail);
  const int primary = rc & 0xff;
  if (primary == SQLITE_IOERR && db != nullptr) {
    // A failed write because the disk (or quota, or file size limit) is
    // full is reported as an I/O error; say what it is.
    const int err = sqlite3_system_errno(db);
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "disk full: ", message, " (", ErrnoText(err),
          "; free some space in the data directory; nothing was stored)"));
    }
  }
  switch (primary) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(absl::StrCat(
          "disk full: ", message,
          " (free some space in the data directory; nothing was stored)"));
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(
          absl::StrCat("out of memory: ", message));
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(
          absl::StrCat("value too large: ", message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(
          "the database is locked by another process (another broker?): ",
          message));
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(absl::StrCat(
          "the database is read-only: ", message,
          " (check the permissions of the data directory and its files)"));
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot open the database: ", message,
          " (check that the data directory exists and is writable)"));
    case SQLITE_IOERR:
      return absl::UnavailableError(
          absl::StrCat("I/O error on the database: ", message));
    case SQLITE_CORRUPT:
      return absl::DataLossError(
          absl::StrCat("the database is corrupt: ", message,
                       " (restore the data directory from a backup)"));
    case SQLITE_NOTADB:
      return absl::DataLossError(absl::StrCat(
          "the file is not a credbroker database: ", message,
          " (point the broker at its data directory, or restore it from a "
          "backup)"));
    case SQLITE_CONSTRAINT:
      return absl::InternalError(
          absl::StrCat("constraint violated: ", message));
    default:
      return absl::InternalError(message);
  }
}

// A prepared statement borrowed from the cache; reset (and its bindings
// cleared) when this goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        bind_status_(std::move(other.bind_status_)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Statement& Bind(int index, absl::string_view text) {
    Check(sqlite3_bind_text(stmt_, index, text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT),
          text.size());
    return *this;
  }
  Statement& BindBlob(int index, absl::string_view bytes) {
    // A null pointer would bind NULL; an empty blob must stay a blob.
    Check(bytes.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                        : sqlite3_bind_blob(stmt_, index, bytes.data(),
                                            static_cast<int>(bytes.size()),
                                            SQLITE_TRANSIENT),
          bytes.size());
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value), 0);
    return *this;
  }

  // Steps once: true when a row is available, false when done.
  absl::StatusOr<bool> Step(absl::string_view what) {
    CB_RETURN_IF_ERROR(bind_status_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteStatus(rc, db_, what);
  }
  // Steps to completion (statements that return no rows).
  absl::Status Run(absl::string_view what) {
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, Step(what));
      if (!row) return absl::OkStatus();
    }
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const { return Bytes(column); }
  std::string Bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return std::string();
    return std::string(static_cast<const char*>(data),
                       static_cast<size_t>(size));
  }

 private:
  void Check(int rc, size_t size) {
    if (rc == SQLITE_OK || !bind_status_.ok()) return;
    bind_status_ =
        rc == SQLITE_TOOBIG || rc == SQLITE_RANGE
            ? absl::InvalidArgumentError(absl::StrCat(
                  "value of ", size, " bytes is too large for the store"))
            : SqliteStatus(rc, db_, "bind");
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

absl::Time FromMicros(int64_t micros) { return absl::FromUnixMicros(micros); }

// The columns ReadRecord() reads, in order, and the join they come from.
#define CB_SELECT_RECORD                                                    \
  "SELECT c.provider, c.profile, c.version, c.sealed, c.fingerprint,"       \
  " c.created_at, c.rotation_period_s, p.first_created_at, p.version_count" \
  " FROM credential_profiles p JOIN credentials c"                          \
  " ON c.provider = p.provider AND c.profile = p.profile"

constexpr char kGetSql[] = CB_SELECT_RECORD
    " AND c.version = CASE WHEN ?3 = 0 THEN p.latest_version ELSE ?3 END"
    " WHERE p.provider = ?1 AND p.profile = ?2";
// Keyset paging on credential_profiles' primary key; each row joins to its
// latest version through the credentials primary key.
constexpr char kListAllSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE (p.provider, p.profile) > (?2, ?3)"
    " ORDER BY p.provider, p.profile LIMIT ?4";
// One provider: an index range on (provider, profile) in both cases.
constexpr char kListProviderSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE p.provider = ?1"
    " ORDER BY p.provider, p.profile LIMIT ?4";
constexpr char kListProviderAfterSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE p.provider = ?1 AND p.profile > ?3"
    " ORDER BY p.provider, p.profile LIMIT ?4";
constexpr char kVersionsSql[] = CB_SELECT_RECORD
    " WHERE p.provider = ?1 AND p.profile = ?2 ORDER BY c.version";
#undef CB_SELECT_RECORD

constexpr char kLastAuditSql[] =
    "SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1";
constexpr char kInsertAuditSql[] =
    "INSERT INTO audit_events (sequence, time_us, kind, role, peer, provider,"
    " profile, request_id, grant_id, action, outcome, detail, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
constexpr char kListAuditSql[] =
    "SELECT sequence, time_us, kind, role, peer, provider, profile, request_id,"
    " grant_id, action, outcome, detail, prev_hash, hash FROM audit_events"
    " WHERE sequence > ?1 AND time_us >= ?2 AND time_us < ?3"
    " AND (?4 = '' OR provider = ?4)"
    " AND (?5 = '' OR kind = ?5 OR (substr(?5, -1) = '.' AND"
    "      substr(kind, 1, length(?5)) = ?5))"
    " ORDER BY sequence LIMIT ?6";

AuditRecord ReadAudit(const Statement& s) {
  AuditRecord r;
  r.sequence = s.Int(0);
  r.time = FromMicros(s.Int(1));
  r.kind = s.Text(2);
  r.role = s.Text(3);
  r.peer = s.Text(4);
  r.provider = s.Text(5);
  r.profile = s.Text(6);
  r.request_id = s.Text(7);
  r.grant_id = s.Text(8);
  r.action = s.Text(9);
  r.outcome = s.Text(10);
  r.detail = s.Text(11);
  r.prev_hash = s.Text(12);
  r.hash = s.Text(13);
  return r;
}

CredentialRecord ReadRecord(const Statement& s) {
  CredentialRecord r;
  r.provider = s.Text(0);
  r.profile = s.Text(1);
  r.version = s.Int(2);
  r.sealed = s.Bytes(3);
  r.fingerprint = s.Text(4);
  r.created_at = FromMicros(s.Int(5));
  r.rotation_period = absl::Seconds(s.Int(6));
  r.first_created_at = FromMicros(s.Int(7));
  r.version_count = s.Int(8);
  return r;
}

// Flow times: exact Unix micros, with the infinities as the int64 extremes
// (so that they round-trip and compare correctly in SQL).
constexpr int64_t kPastMicros = std::numeric_limits<int64_t>::min();
constexpr int64_t kFutureMicros = std::numeric_limits<int64_t>::max();

int64_t TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return kPastMicros;
  if (t == absl::InfiniteFuture()) return kFutureMicros;
  return absl::ToUnixMicros(t);
}
absl::Time MicrosToTime(int64_t micros) {
  if (micros == kPastMicros) return absl::InfinitePast();
  if (micros == kFutureMicros) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}
int64_t DurationToMicros(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return kFutureMicros;
  if (d == -absl::InfiniteDuration()) return kPastMicros;
  return absl::ToInt64Microseconds(d);
}
absl::Duration MicrosToDuration(int64_t micros) {
  if (micros == kFutureMicros) return absl::InfiniteDuration();
  if (micros == kPastMicros) return -absl::InfiniteDuration();
  return absl::Microseconds(micros);
}

// A list of arbitrary byte strings as one blob: each is "<decimal length>:"
// followed by its bytes.
std::string EncodeStrings(const std::vector<absl::string_view>& strings) {
  std::string out;
  for (absl::string_view s : strings) {
    absl::StrAppend(&out, s.size(), ":", s);
  }
  return out;
}

// Inverse of EncodeStrings; DATA_LOSS when `blob` is not such a list.
absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob,
                                                       absl::string_view what) {
  std::vector<std::string> out;
  while (!blob.empty()) {
    size_t colon = blob.find(':');
    uint64_t size = 0;
    bool valid = colon != absl::string_view::npos && colon > 0 && colon <= 10;
    for (size_t i = 0; valid && i < colon; ++i) {
      valid = blob[i] >= '0' && blob[i] <= '9';
      size = size * 10 + static_cast<uint64_t>(blob[i] - '0');
    }
    if (!valid || size > blob.size() - colon - 1) {
      return absl::DataLossError(
          absl::StrCat("the database holds a malformed ", what,
                       " (restore the data directory from a backup)"));
    }
    out.emplace_back(blob.substr(colon + 1, size));
    blob.remove_prefix(colon + 1 + size);
  }
  return out;
}

#define CB_REQUEST_COLUMNS                                                \
  "request_id, session_key, need_id, provider, profile, action, context," \
  " requested_ttl_us, agent_peer, state, missing_fields, created_at,"     \
  " expires_at, decided_at, decision, grant_id, binding_note, mac"
constexpr char kUpsertRequestSql[] =
    "INSERT INTO requests (" CB_REQUEST_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18) ON CONFLICT (request_id) DO UPDATE SET"
    " session_key = excluded.session_key, need_id = excluded.need_id,"
    " provider = excluded.provider, profile = excluded.profile,"
    " action = excluded.action,"
    " context = excluded.context, requested_ttl_us = excluded.requested_ttl_us,"
    " agent_peer = excluded.agent_peer, state = excluded.state,"
    " missing_fields = excluded.missing_fields,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at,"
    " decided_at = excluded.decided_at, decision = excluded.decision,"
    " grant_id = excluded.grant_id, binding_note = excluded.binding_note,"
    " mac = excluded.mac";
constexpr char kListRequestsSql[] = "SELECT " CB_REQUEST_COLUMNS
                                    " FROM requests"
                                    " ORDER BY created_at, request_id";
constexpr char kListOpenRequestsSql[] = "SELECT " CB_REQUEST_COLUMNS
                                        " FROM requests WHERE decided_at = ?1"
                                        " ORDER BY created_at, request_id";
constexpr char kGetRequestSql[] =
    "SELECT " CB_REQUEST_COLUMNS " FROM requests WHERE request_id = ?1";
#undef CB_REQUEST_COLUMNS

#define CB_GRANT_COLUMNS                                          \
  "grant_id, request_id, session_key, provider, profile, action," \
  " credential_version, scope, created_at, expires_at, ended_at," \
  " end_reason, mac"
constexpr char kUpsertGrantSql[] =
    "INSERT INTO grants (" CB_GRANT_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (grant_id) DO UPDATE SET request_id = excluded.request_id,"
    " session_key = excluded.session_key, provider = excluded.provider,"
    " profile = excluded.profile, action = excluded.action,"
    " credential_version = excluded.credential_version,"
    " scope = excluded.scope, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at, ended_at = excluded.ended_at,"
    " end_reason = excluded.end_reason, mac = excluded.mac";
// Keyset paging on grants_by_created. ?3 = 1 includes ended and expired
// grants; otherwise only those with ended_at = ?4 (not ended) that expire
// after ?5 (now).
constexpr char kListGrantsSql[] =
    "SELECT " CB_GRANT_COLUMNS
    " FROM grants WHERE (created_at, grant_id) > (?1, ?2)"
    " AND (?3 = 1 OR (ended_at = ?4 AND expires_at > ?5))"
    " ORDER BY created_at, grant_id LIMIT ?6";
constexpr char kGetGrantSql[] =
    "SELECT " CB_GRANT_COLUMNS " FROM grants WHERE grant_id = ?1";
#undef CB_GRANT_COLUMNS

#define CB_STANDING_COLUMNS \
  "id, provider, profile, action_pattern, created_at, expires_at, revoked, mac"
constexpr char kUpsertStandingSql[] =
    "INSERT INTO standing_approvals (" CB_STANDING_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (id) DO UPDATE SET provider = excluded.provider,"
    " profile = excluded.profile, action_pattern = excluded.action_pattern,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at,"
    " revoked = excluded.revoked, mac = excluded.mac";
constexpr char kListStandingSql[] = "SELECT " CB_STANDING_COLUMNS
                                    " FROM standing_approvals"
                                    " ORDER BY created_at, id";
#undef CB_STANDING_COLUMNS

#define CB_BINDING_COLUMNS                                     \
  "provider, resource, profile, fingerprint, credential_version," \
  " grant_id, created_at, updated_at"
// An update keeps the binding's created_at.
constexpr char kUpsertBindingSql[] =
    "INSERT INTO resource_bindings (" CB_BINDING_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (provider, resource) DO UPDATE SET"
    " profile = excluded.profile, fingerprint = excluded.fingerprint,"
    " credential_version = excluded.credential_version,"
    " grant_id = excluded.grant_id, updated_at = excluded.updated_at";
constexpr char kGetBindingSql[] = "SELECT " CB_BINDING_COLUMNS
                                  " FROM resource_bindings"
                                  " WHERE provider = ?1 AND resource = ?2";
constexpr char kListBindingsSql[] =
    "SELECT " CB_BINDING_COLUMNS
    " FROM resource_bindings WHERE (?1 = '' OR provider = ?1)"
    " ORDER BY provider, resource";
#undef CB_BINDING_COLUMNS

absl::StatusOr<RequestRecord> ReadRequest(const Statement& s) {
  RequestRecord r;
  r.request_id = s.Text(0);
  r.session_key = s.Text(1);
  r.need_id = s.Text(2);
  r.provider = s.Text(3);
  r.profile = s.Text(4);
  r.action = s.Text(5);
  CB_ASSIGN_OR_RETURN(
      std::vector<std::string> context,
      DecodeStrings(s.Bytes(6),
                    absl::StrCat("context of request ", r.request_id)));
  if (context.size() % 2 != 0) {
    return absl::DataLossError(absl::StrCat(
        "the database holds a malformed context of request ", r.request_id,
        " (restore the data directory from a backup)"));
  }
  for (size_t i = 0; i < context.size(); i += 2) {
    r.context.emplace_back(std::move(context[i]), std::move(context[i + 1]));
  }
  r.requested_ttl = MicrosToDuration(s.Int(7));
  r.agent_peer = s.Text(8);
  r.state = static_cast<int>(s.Int(9));
  CB_ASSIGN_OR_RETURN(
      r.missing_fields,
      DecodeStrings(s.Bytes(10), absl::StrCat("missing field list of request ",
                                              r.request_id)));
  r.created_at = MicrosToTime(s.Int(11));
  r.expires_at = MicrosToTime(s.Int(12));
  r.decided_at = MicrosToTime(s.Int(13));
  r.decision = s.Text(14);
  r.grant_id = s.Text(15);
  r.binding_note = s.Text(16);
  r.mac = s.Text(17);
  return r;
}

GrantRecord ReadGrant(const Statement& s) {
  GrantRecord g;
  g.grant_id = s.Text(0);
  g.request_id = s.Text(1);
  g.session_key = s.Text(2);
  g.provider = s.Text(3);
  g.profile = s.Text(4);
  g.action = s.Text(5);
  g.credential_version = s.Int(6);
  g.scope = static_cast<int>(s.Int(7));
  g.created_at = MicrosToTime(s.Int(8));
  g.expires_at = MicrosToTime(s.Int(9));
  g.ended_at = MicrosToTime(s.Int(10));
  g.end_reason = s.Text(11);
  g.mac = s.Text(12);
  return g;
}

StandingRecord ReadStanding(const Statement& s) {
  StandingRecord r;
  r.id = s.Text(0);
  r.provider = s.Text(1);
  r.profile = s.Text(2);
  r.action_pattern = s.Text(3);
  r.created_at = MicrosToTime(s.Int(4));
  r.expires_at = MicrosToTime(s.Int(5));
  r.revoked = s.Int(6) != 0;
  r.mac = s.Text(7);
  return r;
}

BindingRecord ReadBinding(const Statement& s) {
  BindingRecord b;
  b.provider = s.Text(0);
  b.resource = s.Text(1);
  b.profile = s.Text(2);
  b.fingerprint = s.Text(3);
  b.credential_version = s.Int(4);
  b.grant_id = s.Text(5);
  b.created_at = MicrosToTime(s.Int(6));
  b.updated_at = MicrosToTime(s.Int(7));
  return b;
}

// Ids are the flow tables' keys: an empty one is the caller's mistake.
absl::Status ValidateFlowWrite(const FlowWrite& write,
                               const Store::AuditHashFn& hash_fn) {
  for (const RequestRecord& r : write.requests) {
    if (r.request_id.empty()) {
      return absl::InvalidArgumentError("request id must not be empty");
    }
  }
  for (const GrantRecord& g : write.grants) {
    if (g.grant_id.empty()) {
      return absl::InvalidArgumentError("grant id must not be empty");
    }
  }
  for (const StandingRecord& r : write.standing) {
    if (r.id.empty()) {
      return absl::InvalidArgumentError(
          "standing approval id must not be empty");
    }
  }
  for (const BindingRecord& b : write.bindings) {
    if (b.provider.empty() || b.resource.empty() || b.profile.empty()) {
      return absl::InvalidArgumentError(
          "a binding needs a provider, a resource and a profile");
    }
  }
  for (const auto& [key, value] : write.meta) {
    if (key.empty()) {
      return absl::InvalidArgumentError("metadata key must not be empty");
    }
  }
  if (!write.audit.empty() && !hash_fn) {
    return absl::InvalidArgumentError("no audit hash function given");
  }
  return absl::OkStatus();
}

absl::Status ValidateIdentity(absl::string_view provider,
                              absl::string_view profile) {
  if (provider.empty()) {
    return absl::InvalidArgumentError("provider must not be empty");
  }
  if (profile.empty()) {
    return absl::InvalidArgumentError("profile must not be empty");
  }
  return absl::OkStatus();
}

// Creates `path` 0600 before SQLite writes anything to it, and tightens an
// existing database (and its WAL/shm companions) that others can read.
absl::Status PreparePrivateFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database ", path,
          " is a symbolic link: point the broker at the file itself"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open the database ", path, ": ", ErrnoText(err),
        " (check that the data directory exists and is writable)"));
  }
  struct stat st;
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = absl::UnavailableError(absl::StrCat("cannot stat the database ",
                                                 path, ": ", ErrnoText(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(
        absl::StrCat("the database ", path, " is not a regular file"));
  } else if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
    status = absl::FailedPreconditionError(
        absl::StrCat("the database ", path,
                     " is accessible by other users and "
                     "cannot be made private (chmod 600): ",
                     ErrnoText(errno)));
  }
  close(fd);
  CB_RETURN_IF_ERROR(status);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string companion = path + suffix;
    struct stat cst;
    if (lstat(companion.c_str(), &cst) == 0 && S_ISREG(cst.st_mode) &&
        (cst.st_mode & 077) != 0) {
      chmod(companion.c_str(), 0600);  // Best effort; SQLite copies our mode.
    }
  }
  return absl::OkStatus();
}

// Prepared statements of one connection, keyed by their SQL text (a string
// with static lifetime).
using StatementCache = std::map<const char*, sqlite3_stmt*>;

// The cached prepared statement for `sql` on `db`, prepared on first use.
absl::StatusOr<Statement> PrepareCached(sqlite3* db, StatementCache& cache,
                                        const char* sql) {
  auto it = cache.find(sql);
  if (it == cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteStatus(rc, db, "prepare statement");
    }
    it = cache.emplace(sql, stmt).first;
  }
  return Statement(db, it->second);
}

// Finalizes every cached statement, then closes the connection.
void CloseConnection(sqlite3* db, StatementCache& cache) {
  for (auto& entry : cache) sqlite3_finalize(entry.second);
  cache.clear();
  sqlite3_close_v2(db);
}

// Read-only connections for the hot reads (a credential, a metadata value).
// In WAL mode a reader never waits for a writer, so these do not queue
// behind a PutCredential or an approval that is syncing its transaction to
// disk, nor behind each other; each statement sees the latest commit.
constexpr int kReadConnections = 4;

// Another connection to `path` with `flags` (READONLY or READWRITE), or
// null: its users then do without it (reads use the writer's connection,
// checkpoints stay inside commits).
sqlite3* OpenExtraConnection(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                      kExclusiveVfs) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return nullptr;
  }
  return db;
}

class ReadConnection {
 public:
  static std::unique_ptr<ReadConnection> Open(const std::string& path) {
    sqlite3* db = OpenExtraConnection(path, SQLITE_OPEN_READONLY);
    if (db == nullptr) return nullptr;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    return std::unique_ptr<ReadConnection>(new ReadConnection(db));
  }
  ~ReadConnection() {
    absl::MutexLock lock(&mu);
    CloseConnection(db_, statements_);
  }
  ReadConnection(const ReadConnection&) = delete;
  ReadConnection& operator=(const ReadConnection&) = delete;

  absl::StatusOr<Statement> Prepare(const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return PrepareCached(db_, statements_, sql);
  }

  // One statement at a time on this connection.
  absl::Mutex mu;

 private:
  explicit ReadConnection(sqlite3* db) : db_(db) {}
  sqlite3* const db_ ABSL_GUARDED_BY(mu);
  StatementCache statements_ ABSL_GUARDED_BY(mu);
};

// Copies the write-ahead log back into the database on its own thread and
// connection. SQLite's automatic checkpoint runs inside the commit that
// crosses its threshold, so that one commit (and whoever waits on it: an
// approval, a watcher's event) would take tens of milliseconds longer. The
// writer's WAL hook (OnCommit) wakes this thread instead; its checkpoint is
// PASSIVE: it never waits for, or blocks, a reader or the writer, and copies
// what it can. The next commit after a complete checkpoint starts the log again from
// its beginning. Writes that never pause can keep a background checkpoint
// from ever completing; past kInlineFrames the writer then checkpoints in its
// own commit, as SQLite would have, so that the log stays bounded.
class Checkpointer {
 public:
  // The WAL size, in frames (pages), that asks for a checkpoint: SQLite's
  // own default threshold.
  static constexpr int kCheckpointFrames = 1000;
  static constexpr int kInlineFrames = 4 * kCheckpointFrames;

  // Null when the connection cannot be opened; the writer then keeps
  // SQLite's automatic checkpoint.
  static std::unique_ptr<Checkpointer> Start(const std::string& path) {
    sqlite3* db = OpenExtraConnection(path, SQLITE_OPEN_READWRITE);
    if (db == nullptr) return nullptr;
    if (sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      sqlite3_close_v2(db);
      return nullptr;
    }
    return std::unique_ptr<Checkpointer>(new Checkpointer(db));
  }
  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
    sqlite3_close_v2(db_);
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // sqlite3_wal_hook's callback, on the writer's thread after each commit.
  static int OnCommit(void* self, sqlite3* db, const char*, int frames) {
    auto* c = static_cast<Checkpointer*>(self);
    if (frames >= kInlineFrames) {
      // After the background pass under way, if any: it holds SQLite's
      // checkpoint lock, which would make this one give up at once.
      absl::MutexLock pass(&c->pass_mu_);
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr);
    } else if (frames >= kCheckpointFrames) {
      absl::MutexLock lock(&c->mu_);
      c->wanted_ = true;
    }
    return SQLITE_OK;
  }

  int64_t done() const { return done_.load(std::memory_order_relaxed); }

 private:
  explicit Checkpointer(sqlite3* db) : db_(db), thread_([this] { Loop(); }) {}

  void Loop() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Checkpointer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
              return c->wanted_ || c->stopping_;
            },
            this));
        if (stopping_) return;
        wanted_ = false;
      }
      // A failure (a full disk, a busy lock) leaves the log as it is; the
      // next commit past the threshold asks again.
      absl::MutexLock pass(&pass_mu_);
      if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                    nullptr) == SQLITE_OK) {
        done_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  sqlite3* const db_;  // Used by Loop only, then closed by the destructor.
  absl::Mutex mu_;
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Held for each checkpoint pass, by Loop or by the writer past
  // kInlineFrames; taken after the store's writer lock, never before it.
  absl::Mutex pass_mu_;
  std::atomic<int64_t> done_{0};
  std::thread thread_;  // Last: starts once the members above exist.
};

// The latest version of each provider/profile that was read or written
// since the store opened, as stored (sealed: no value is in the clear), so
// that reading a latest version (GetCredential when the broker's caches do
// not have the answer, every approval's check of what it releases) is a hash
// lookup, not a search of two B-trees through a read connection: with
// 100,000 profiles that search was about two thirds of such a read
// (docs/BENCHMARKS.md, item 29). It holds one entry per profile at most, the
// size of its row.
//
// Entries are trusted while the store's change mark (its count of commits)
// is the one the index was brought up to date at: the store's own commits
// update the entries they changed (Committed) and then the mark, and no
// other process can write the database (kExclusiveVfs). A read from the
// database is offered only when no commit came between its mark and now.
class LatestIndex {
 public:
  using Mark = Store::ChangeMark;

  static std::string Key(absl::string_view provider, absl::string_view profile) {
    return absl::StrCat(provider.size(), ":", provider, profile);
  }

  // A change a transaction made: the new latest version, or none (deleted).
  struct Change {
    std::string key;
    std::optional<CredentialRecord> latest;
  };

  // The entry for `key` when `mark` (the store's, now) is the one the index
  // is current for; else nullopt, and *may_offer says whether what the
  // caller then reads from the database may be offered (Offer).
  std::optional<CredentialRecord> Find(const std::string& key,
                                       const std::optional<Mark>& mark,
                                       bool* may_offer) const {
    *may_offer = false;
    if (!mark.has_value()) return std::nullopt;
    absl::ReaderMutexLock lock(&mu_);
    if (!current_ || mark_ != *mark) return std::nullopt;
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    *may_offer = true;
    return std::nullopt;
  }

  // What a read of `key` found in the database, read while the store's mark
  // was `read_mark` and still is (`now`): nothing was committed in between,
  // so it is the latest version.
  void Offer(const std::string& key, const CredentialRecord& record, const Mark& read_mark,
             const std::optional<Mark>& now) {
    if (!now.has_value() || *now != read_mark) return;
    absl::MutexLock lock(&mu_);
    if (current_ && mark_ == read_mark) entries_.try_emplace(key, record);
  }

  // After the store's commit of `changes` (`committed`: it succeeded; else
  // the changed profiles are forgotten), with the store's mark after it.
  void Committed(std::vector<Change>& changes, bool committed, const Mark& mark) {
    absl::MutexLock lock(&mu_);
    for (Change& c : changes) {
      if (committed && c.latest.has_value()) {
        entries_.insert_or_assign(c.key, *std::move(c.latest));
      } else {
        entries_.erase(c.key);
      }
    }
    current_ = true;
    mark_ = mark;
  }

  // Forgets everything: a commit whose outcome is unknown.
  void Clear() {
    absl::MutexLock lock(&mu_);
    entries_.clear();
    current_ = false;
  }

  size_t size() const {
    absl::ReaderMutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  mutable absl::Mutex mu_;
  bool current_ ABSL_GUARDED_BY(mu_) = false;
  Mark mark_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, CredentialRecord> entries_ ABSL_GUARDED_BY(mu_);
};

// The rest of GetCredential once its statement is prepared, on either
// connection.
absl::StatusOr<CredentialRecord> StepGet(Statement& s, absl::string_view provider,
                                         absl::string_view profile,
                                         int64_t version) {
  s.Bind(1, provider).Bind(2, profile).Bind(3, version);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read credential"));
  if (!row) {
    return absl::NotFoundError(
        version == 0 ? absl::StrCat("no credential stored for ", provider, "/",
                                    profile)
                     : absl::StrCat("no credential stored for ", provider, "/",
                                    profile, " version ", version));
  }
  return ReadRecord(s);
}

// Every row of a prepared, bound statement that selects credential records.
absl::StatusOr<std::vector<CredentialRecord>> StepRecords(Statement& s,
                                                          absl::string_view what) {
  std::vector<CredentialRecord> records;
  while (true) {
    CB_ASSIGN_OR_RETURN(bool row, s.Step(what));
    if (!row) break;
    records.push_back(ReadRecord(s));
  }
  return records;
}

constexpr const char kGetMetaSql[] = "SELECT value FROM meta WHERE key = ?1";

absl::StatusOr<std::string> StepGetMeta(Statement& s, absl::string_view key) {
  s.Bind(1, key);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read metadata"));
  if (!row) {
    return absl::NotFoundError(
        absl::StrCat("no metadata \"", key, "\" in the store"));
  }
  return s.Bytes(0);
}

class SqliteStore : public Store {
 public:
  SqliteStore(std::string path, sqlite3* db, std::function<absl::Time()> clock)
      : path_(std::move(path)), clock_(std::move(clock)), db_(db) {}
  ~SqliteStore() override {
    {
      absl::MutexLock lock(&mu_);
      sqlite3_wal_hook(db_, nullptr, nullptr);
    }
    checkpointer_.reset();
    readers_.clear();  // The writer closes last, checkpointing the WAL.
    absl::MutexLock lock(&mu_);
    CloseConnection(db_, statements_);
  }

  // Pragmas and migrations; called once before the store is shared.
  absl::Status Initialize() {
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

  absl::StatusOr<CredentialRecord> PutCredential(absl::string_view provider,
                                                 absl::string_view profile,
                                                 absl::Duration rotation_period,
                                                 const SealFn& seal,
                                                 const AuditOfFn& audit_of = nullptr,
                                                 const AuditHashFn& hash_fn = nullptr) override {
    CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
    if (rotation_period < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("rotation period must not be negative");
    }
    if (reserve_released_) {
      // Refused before it joins a batch: on a full disk a refusal inside a
      // batch would send every write of it back to commit alone.
      absl::MutexLock lock(&mu_);
      CB_RETURN_IF_ERROR(RestoreReserve());
    }
    return CommitValue<CredentialRecord>(
        "store credential", /*retry_when_full=*/false,
        [&]() -> absl::StatusOr<CredentialRecord> {
          mu_.AssertHeld();
          CB_RETURN_IF_ERROR(RestoreReserve());
          CB_ASSIGN_OR_RETURN(CredentialRecord record,
                              PutLocked(provider, profile, rotation_period, seal));
          if (audit_of) {
            CB_RETURN_IF_ERROR(AppendAuditLocked(audit_of(record), hash_fn).status());
          }
          return record;
        });
  }

  absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                 absl::string_view profile,
                                                 int64_t version) override {
    CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
    if (version < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "version must be positive (or 0 for the latest), got ", version));
    }
    auto read = [&] {
      return Read<CredentialRecord>(
          kGetSql, [&](Statement& s) { return StepGet(s, provider, profile, version); });
    };
    if (version != 0) return read();
    const std::string key = LatestIndex::Key(provider, profile);
    const std::optional<ChangeMark> mark = CurrentChangeMark();
    bool may_offer = false;
    if (std::optional<CredentialRecord> kept = latest_.Find(key, mark, &may_offer)) {
      latest_from_memory_.fetch_add(1, std::memory_order_relaxed);
      return *std::move(kept);
    }
    latest_from_database_.fetch_add(1, std::memory_order_relaxed);
    absl::StatusOr<CredentialRecord> record = read();
    if (record.ok() && may_offer) latest_.Offer(key, *record, *mark, CurrentChangeMark());
    return record;
  }

  absl::StatusOr<std::vector<CredentialRecord>> ListCredentials(
      const ListCredentialsOptions& options) override {
    if (options.limit <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("list limit must be positive, got ", options.limit));
    }
    const char* sql = kListAllSql;
    if (!options.provider.empty()) {
      const int cursor = options.after_provider.compare(options.provider);
      if (cursor > 0) return std::vector<CredentialRecord>();  // Past it.
      sql = cursor == 0 ? kListProviderAfterSql : kListProviderSql;
    }
    return Read<std::vector<CredentialRecord>>(sql, [&](Statement& s) {
      if (sql != kListAllSql) s.Bind(1, options.provider);
      if (sql != kListProviderSql) {
        s.Bind(2, options.after_provider).Bind(3, options.after_profile);
      }
      s.Bind(4, static_cast<int64_t>(options.limit));
      return StepRecords(s, "list credentials");
    });
  }

  absl::StatusOr<std::vector<CredentialRecord>> ListVersions(
      absl::string_view provider, absl::string_view profile) override {
    CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
    return Read<std::vector<CredentialRecord>>(kVersionsSql, [&](Statement& s) {
      s.Bind(1, provider).Bind(2, profile);
      return StepRecords(s, "list credential versions");
    });
  }

  absl::StatusOr<int64_t> DeleteCredential(absl::string_view provider,
                                           absl::string_view profile) override {
    CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
    return CommitValue<int64_t>("delete credential", /*retry_when_full=*/false,
                                [&]() -> absl::StatusOr<int64_t> {
                                  mu_.AssertHeld();
                                  return DeleteLocked(provider, profile);
                                });
  }

  absl::StatusOr<std::string> GetMeta(absl::string_view key) override {
    return Read<std::string>(kGetMetaSql,
                             [&](Statement& s) { return StepGetMeta(s, key); });
  }

  // Opens the read connections, once the schema is current. Without them
  // (they could not be opened) every read uses the writer's connection.
  void OpenReaders() {
    for (int i = 0; i < kReadConnections; ++i) {
      std::unique_ptr<ReadConnection> reader = ReadConnection::Open(path_);
      if (reader == nullptr) break;
      readers_.push_back(std::move(reader));
    }
    absl::MutexLock lock(&mu_);
    IndexCommitLocked(/*committed=*/true);  // Empty, current from here.
  }

  // Counted by IndexCommitLocked, after the index is brought up to date.
  std::optional<ChangeMark> CurrentChangeMark() override {
    return commits_.load(std::memory_order_acquire);
  }

  // Moves checkpoints off the commit path (Checkpointer), once the schema
  // is current. Without it SQLite checkpoints inside commits, as before.
  void StartCheckpointer() {
    checkpointer_ = Checkpointer::Start(path_);
    if (checkpointer_ == nullptr) return;
    absl::MutexLock lock(&mu_);
    // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
    sqlite3_wal_hook(db_, &Checkpointer::OnCommit, checkpointer_.get());
  }

  absl::Status PutMeta(absl::string_view key,
                       absl::string_view value) override {
    if (key.empty()) {
      return absl::InvalidArgumentError("metadata key must not be empty");
    }
    absl::MutexLock lock(&mu_);
    absl::Status status = PutMetaLocked(key, value);
    // Its own (autocommit) transaction, committed or not by now.
    commits_.fetch_add(1, std::memory_order_acq_rel);
    return status;
  }

  absl::Status PutMetaLocked(absl::string_view key, absl::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CB_ASSIGN_OR_RETURN(
        Statement s,
        Prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
    s.Bind(1, key).BindBlob(2, value);
    return s.Run("write metadata");
  }

  absl::Status CheckIntegrity() override {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> problems;
    {
      CB_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA integrity_check"));
      while (true) {
        // A badly damaged file fails the check itself (DATA_LOSS).
        CB_ASSIGN_OR_RETURN(bool row, s.Step("check integrity"));
        if (!row) break;
        std::string line = s.Text(0);
        if (line != "ok") problems.push_back(std::move(line));
      }
    }
    {
      CB_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA foreign_key_check"));
      CB_ASSIGN_OR_RETURN(bool row, s.Step("check integrity"));
      if (row) {
        problems.push_back(absl::StrCat("table ", s.Text(0),
                                        " has rows without their parent in ",
                                        s.Text(2)));
      }
    }
    if (problems.empty()) return absl::OkStatus();
    std::string message =
        absl::StrCat("the database ", path_, " failed its integrity check: ");
    constexpr size_t kMaxShown = 5;
    for (size_t i = 0; i < problems.size() && i < kMaxShown; ++i) {
      absl::StrAppend(&message, i > 0 ? "; " : "", problems[i]);
    }
    if (problems.size() > kMaxShown) {
      absl::StrAppend(&message, "; and ", problems.size() - kMaxShown, " more");
    }
    absl::StrAppend(&message, " (restore the data directory from a backup)");
    return absl::DataLossError(message);
  }

  ReadStats GetReadStats() override {
    ReadStats stats;
    stats.latest_from_memory = latest_from_memory_.load(std::memory_order_relaxed);
    stats.latest_from_database = latest_from_database_.load(std::memory_order_relaxed);
    stats.latest_kept = static_cast<int64_t>(latest_.size());
    return stats;
  }

  WriteStats GetWriteStats() override {
    WriteStats stats;
    stats.transactions = transactions_.load(std::memory_order_relaxed);
    stats.writes = writes_.load(std::memory_order_relaxed);
    stats.batches_redone = batches_redone_.load(std::memory_order_relaxed);
    if (checkpointer_ != nullptr) stats.checkpoints = checkpointer_->done();
    absl::MutexLock lock(&queue_mu_);
    stats.queued = static_cast<int64_t>(queue_.size());
    return stats;
  }

  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override {
    return CommitValue<AuditRecord>("append audit event", /*retry_when_full=*/true,
                                    [&]() -> absl::StatusOr<AuditRecord> {
                                      mu_.AssertHeld();
                                      return AppendAuditLocked(event, hash_fn);
                                    });
  }

  absl::Status ReserveSpace(int64_t bytes) override {
    absl::MutexLock lock(&mu_);
    reserve_bytes_ = bytes < 0 ? 0 : bytes;
    if (reserve_bytes_ == 0) {
      unlink(ReservePath().c_str());
      reserve_released_ = false;
      return absl::OkStatus();
    }
    reserve_released_ = true;  // Until the file is there.
    absl::Status made = RestoreReserve();
    if (!made.ok()) {
      // No reserve at all, rather than refusing every credential write
      // until one can be made.
      reserve_bytes_ = 0;
      reserve_released_ = false;
    }
    return made;
  }

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) override {
    if (query.limit <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("list limit must be positive, got ", query.limit));
    }
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListAuditSql));
    s.Bind(1, query.after_sequence)
        .Bind(2, query.since == absl::InfinitePast()
                     ? std::numeric_limits<int64_t>::min()
                     : absl::ToUnixMicros(query.since))
        .Bind(3, query.until == absl::InfiniteFuture()
                     ? std::numeric_limits<int64_t>::max()
                     : absl::ToUnixMicros(query.until))
        .Bind(4, query.provider)
        .Bind(5, query.kind)
        .Bind(6, static_cast<int64_t>(query.limit));
    std::vector<AuditRecord> out;
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, s.Step("list audit events"));
      if (!row) break;
      out.push_back(ReadAudit(s));
    }
    return out;
  }

  absl::Status WriteFlow(const FlowWrite& write,
                         const AuditHashFn& hash_fn) override {
    CB_RETURN_IF_ERROR(ValidateFlowWrite(write, hash_fn));
    auto body = [&]() -> absl::Status {
      mu_.AssertHeld();
      return WriteFlowLocked(write, hash_fn);
    };
    return Commit("write approval flow", /*retry_when_full=*/true, body);
  }

  absl::StatusOr<std::vector<RequestRecord>> ListRequests(
      bool open_only) override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(open_only ? kListOpenRequestsSql
                                                       : kListRequestsSql));
    if (open_only) s.Bind(1, kPastMicros);
    std::vector<RequestRecord> out;
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, s.Step("list requests"));
      if (!row) break;
      CB_ASSIGN_OR_RETURN(RequestRecord r, ReadRequest(s));
      out.push_back(std::move(r));
    }
    return out;
  }

  absl::StatusOr<RequestRecord> GetRequest(
      absl::string_view request_id) override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetRequestSql));
    s.Bind(1, request_id);
    CB_ASSIGN_OR_RETURN(bool row, s.Step("read request"));
    if (!row)
      return absl::NotFoundError(absl::StrCat("no request ", request_id));
    return ReadRequest(s);
  }

  absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options) override {
    if (options.limit <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("list limit must be positive, got ", options.limit));
    }
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListGrantsSql));
    s.Bind(1, TimeToMicros(options.after_created_at))
        .Bind(2, options.after_grant_id)
        .Bind(3, int64_t{options.include_ended ? 1 : 0})
        .Bind(4, kFutureMicros)
        .Bind(5, TimeToMicros(options.now))
        .Bind(6, static_cast<int64_t>(options.limit));
    std::vector<GrantRecord> out;
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, s.Step("list grants"));
      if (!row) break;
      out.push_back(ReadGrant(s));
    }
    return out;
  }

  absl::StatusOr<GrantRecord> GetGrant(absl::string_view grant_id) override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetGrantSql));
    s.Bind(1, grant_id);
    CB_ASSIGN_OR_RETURN(bool row, s.Step("read grant"));
    if (!row) return absl::NotFoundError(absl::StrCat("no grant ", grant_id));
    return ReadGrant(s);
  }

  absl::StatusOr<std::vector<StandingRecord>> ListStanding() override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListStandingSql));
    std::vector<StandingRecord> out;
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, s.Step("list standing approvals"));
      if (!row) break;
      out.push_back(ReadStanding(s));
    }
    return out;
  }

  absl::StatusOr<BindingRecord> GetBinding(
      absl::string_view provider, absl::string_view resource) override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetBindingSql));
    s.Bind(1, provider).Bind(2, resource);
    CB_ASSIGN_OR_RETURN(bool row, s.Step("read resource binding"));
    if (!row) {
      return absl::NotFoundError(absl::StrCat("no ", provider,
                                              " binding for resource \"",
                                              resource, "\""));
    }
    return ReadBinding(s);
  }

  absl::StatusOr<std::vector<BindingRecord>> ListBindings(
      absl::string_view provider) override {
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListBindingsSql));
    s.Bind(1, provider);
    std::vector<BindingRecord> out;
    while (true) {
      CB_ASSIGN_OR_RETURN(bool row, s.Step("list resource bindings"));
      if (!row) break;
      out.push_back(ReadBinding(s));
    }
    return out;
  }

 private:
  // Group commit. Every credential (new version, deletion), audit and
  // approval-flow write goes through Commit. A write that finds no other being committed commits
  // alone; writes that arrive meanwhile queue, and the next of them to run
  // commits all that are queued (up to kMaxBatch) in one transaction: one
  // sync of the log for all of them instead of one each. A write returns
  // only once the transaction holding it is durable. When any write in a
  // batch fails, or the batch's commit does, the batch is rolled back and
  // each write is redone alone, so every write gets its own outcome (and
  // disk-full handling) exactly as without batching.
  struct QueuedWrite {
    absl::string_view what;  // For error messages.
    bool retry_when_full;    // Release the disk reserve and retry on ENOSPC.
    const std::function<absl::Status()>* body;  // Runs under mu_, in a transaction.
    absl::Status result;
    bool finished = false;  // `result` is final (set under mu_ by the leader).
    bool done = false;      // The leader is through with it (under queue_mu_).
    bool lead = false;      // Handed the next commit by the leader (under queue_mu_).
  };
  static constexpr size_t kMaxBatch = 64;

  absl::Status Commit(absl::string_view what, bool retry_when_full,
                      const std::function<absl::Status()>& body)
      ABSL_LOCKS_EXCLUDED(mu_, queue_mu_) {
    QueuedWrite write{what, retry_when_full, &body, absl::OkStatus(), false, false, false};
    queue_mu_.Lock();
    queue_.push_back(&write);
    if (committing_) {
      // Woken only when a leader is through with this write or hands it the
      // next commit, not after every batch (a condition variable signalled
      // to all woke every queued writer, most of them to wait again).
      queue_mu_.Await(absl::Condition(
          +[](QueuedWrite* w) { return w->done || w->lead; }, &write));
    }
    // This thread leads (nobody was committing, or the lead was handed to
    // it) until its own write is done.
    while (!write.done) {
      committing_ = true;
      const size_t n = std::min(queue_.size(), kMaxBatch);
      std::vector<QueuedWrite*> batch(queue_.begin(), queue_.begin() + n);
      queue_.erase(queue_.begin(), queue_.begin() + n);
      queue_mu_.Unlock();
      {
        absl::MutexLock lock(&mu_);
        try {
          CommitBatchLocked(batch);
        } catch (...) {
          // A body threw (out of memory): what it began is rolled back and
          // the writes not yet finished fail; the queue must not stay
          // claimed, or every later writer would wait forever.
          Rollback();
          for (QueuedWrite* w : batch) {
            if (!w->finished) {
              w->result = absl::InternalError(absl::StrCat(
                  "could not ", w->what, ": the broker ran out of memory"));
            }
          }
        }
      }
      queue_mu_.Lock();
      for (QueuedWrite* w : batch) w->done = true;
      if (queue_.empty()) {
        committing_ = false;
      } else if (write.done) {
        queue_.front()->lead = true;  // committing_ stays set: it is theirs.
      }
      // Else this write is still queued behind a full batch: lead again.
    }
    queue_mu_.Unlock();
    return write.result;
  }

  // Commit for a write with a result: `locked` runs under mu_ inside the
  // transaction (perhaps more than once, see Commit); its value is returned
  // once the transaction holding it is durable.
  template <typename T, typename Fn>
  absl::StatusOr<T> CommitValue(absl::string_view what, bool retry_when_full, Fn locked)
      ABSL_LOCKS_EXCLUDED(mu_, queue_mu_) {
    absl::StatusOr<T> value = absl::UnknownError(absl::StrCat("could not ", what));
    CB_RETURN_IF_ERROR(Commit(what, retry_when_full, [&]() -> absl::Status {
      value = locked();
      return value.status();
    }));
    return value;
  }

  void CommitBatchLocked(const std::vector<QueuedWrite*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch.size() > 1) {
      absl::Status status = Exec("BEGIN IMMEDIATE", "write a batch");
      for (QueuedWrite* w : batch) {
        if (!status.ok()) break;
        status = (*w->body)();
      }
      if (status.ok()) status = CommitLocked("write a batch");
      if (status.ok()) {
        transactions_.fetch_add(1, std::memory_order_relaxed);
        writes_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
        for (QueuedWrite* w : batch) {
          w->result = absl::OkStatus();
          w->finished = true;
        }
        return;
      }
      Rollback();
      batches_redone_.fetch_add(1, std::memory_order_relaxed);
    }
    for (QueuedWrite* w : batch) {
      w->result = CommitAloneLocked(*w);
      if (w->retry_when_full && absl::IsResourceExhausted(w->result) &&
          ReleaseReserve()) {
        w->result = CommitAloneLocked(*w);
      }
      w->finished = true;
    }
  }

  absl::Status CommitAloneLocked(const QueuedWrite& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CB_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", w.what));
    absl::Status status = (*w.body)();
    if (status.ok()) {
      status = CommitLocked(w.what);
      if (status.ok()) {
        transactions_.fetch_add(1, std::memory_order_relaxed);
        writes_.fetch_add(1, std::memory_order_relaxed);
        return status;
      }
    }
    Rollback();
    return status;
  }

  std::string ReservePath() const { return path_ + ".reserve"; }

  // The disk is full: gives the reserve back to the file system so that the
  // write being retried (a decision, an audit event) fits. True when there
  // was a reserve to release.
  bool ReleaseReserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reserve_bytes_ == 0 || reserve_released_) return false;
    if (unlink(ReservePath().c_str()) != 0) return false;
    reserve_released_ = true;
    std::fprintf(stderr,
                 "credbrokerd: the disk is full; released the %lld-byte reserve so "
                 "approvals and audit events can still be written. New credential "
                 "versions are refused until space is freed.\n",
                 static_cast<long long>(reserve_bytes_));
    return true;
  }

  // Before a credential write: when the reserve was released, takes it back
  // first (the disk has room again) or refuses the write.
  absl::Status RestoreReserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reserve_bytes_ == 0 || !reserve_released_) return absl::OkStatus();
    const std::string path = ReservePath();
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int err = fd < 0 ? errno : posix_fallocate(fd, 0, reserve_bytes_);
    if (fd >= 0) {
      if (err == 0 && fsync(fd) != 0) err = errno;
      close(fd);
    }
    if (err != 0) {
      unlink(path.c_str());
      if (err != ENOSPC && err != EDQUOT) {
        return absl::UnavailableError(absl::StrCat(
            "cannot set aside the disk space reserve ", path, ": ", std::strerror(err)));
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          "disk full: the data directory has no room for new credential versions "
          "(approvals of stored credentials continue on the reserved space); free "
          "some space in ", path_.substr(0, path_.rfind('/')), " and try again"));
    }
    if (reserve_released_) {
      std::fprintf(stderr, "credbrokerd: disk space reserve in place (%lld bytes)\n",
                   static_cast<long long>(reserve_bytes_));
    }
    reserve_released_ = false;
    return absl::OkStatus();
  }

  // A free read connection, held (locked) for the lease's life; empty when
  // the store has none.
  class ABSL_SCOPED_LOCKABLE ReaderLease {
   public:
    explicit ReaderLease(ReadConnection* reader) : reader_(reader) {}
    ReaderLease(ReaderLease&& other) noexcept
        : reader_(std::exchange(other.reader_, nullptr)) {}
    ReaderLease& operator=(ReaderLease&&) = delete;
    ~ReaderLease() ABSL_UNLOCK_FUNCTION() {
      if (reader_ != nullptr) reader_->mu.Unlock();
    }
    explicit operator bool() const { return reader_ != nullptr; }
    ReadConnection* operator->() const { return reader_; }

   private:
    ReadConnection* reader_;
  };

  // Runs `step` on `sql` prepared on a read connection (AcquireReader), or
  // on the writer's connection when there is none.
  template <typename T, typename Step>
  absl::StatusOr<T> Read(const char* sql, const Step& step) ABSL_LOCKS_EXCLUDED(mu_) {
    if (ReaderLease reader = AcquireReader(); reader) {
      CB_ASSIGN_OR_RETURN(Statement s, reader->Prepare(sql));
      return step(s);
    }
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(sql));
    return step(s);
  }

  // The first read connection not in use, else waits for one (chosen by
  // thread, so that waiters spread over them).
  ReaderLease AcquireReader() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (readers_.empty()) return ReaderLease(nullptr);
    for (const auto& reader : readers_) {
      if (reader->mu.TryLock()) return ReaderLease(reader.get());
    }
    const size_t pick =
        std::hash<std::thread::id>()(std::this_thread::get_id()) % readers_.size();
    readers_[pick]->mu.Lock();
    return ReaderLease(readers_[pick].get());
  }

  std::string OpenContext(absl::string_view what) const {
    return absl::StrCat("open ", path_, " (", what, ")");
  }

  // A cached prepared statement for `sql` (a string with static lifetime,
  // which is also the cache key).
  absl::StatusOr<Statement> Prepare(const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return PrepareCached(db_, statements_, sql);
  }

  absl::Status Exec(const char* sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, what);
    return absl::OkStatus();
  }

  // COMMIT of the transaction under way, then the latest-version index
  // brought up to date with what it changed (IndexCommitLocked).
  absl::Status CommitLocked(absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status status = Exec("COMMIT", what);
    IndexCommitLocked(status.ok());
    return status;
  }

  // Hands latest_ the changes of the transaction just committed (or not:
  // they are then forgotten) and moves the change mark on: every COMMIT
  // counts, whatever its outcome, so a read that raced with it is never
  // kept under the new mark.
  void IndexCommitLocked(bool committed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const ChangeMark mark = commits_.fetch_add(1, std::memory_order_acq_rel) + 1;
    try {
      latest_.Committed(changes_, committed, mark);
    } catch (...) {
      // Out of memory part way: what the index holds is not known to match.
      latest_.Clear();
      changes_.clear();
      throw;
    }
    changes_.clear();
  }

  // Ends a failed transaction. Some errors (disk full, I/O) have already
  // rolled it back, in which case there is nothing left to do.
  void Rollback() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    changes_.clear();  // Nothing of it reached the index or the database.
    if (!sqlite3_get_autocommit(db_)) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
            "the database ", path_,
            " was created by a newer credbroker (schema ", *version,
            ", this build knows ", kSqliteSchemaVersion,
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

  absl::StatusOr<int> UserVersion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare("PRAGMA user_version"));
    CB_ASSIGN_OR_RETURN(bool row, s.Step(OpenContext("read schema version")));
    if (!row) return absl::InternalError("PRAGMA user_version returned no row");
    return static_cast<int>(s.Int(0));
  }

  absl::StatusOr<CredentialRecord> PutLocked(absl::string_view provider,
                                             absl::string_view profile,
                                             absl::Duration rotation_period,
                                             const SealFn& seal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CredentialRecord record;
    record.provider = std::string(provider);
    record.profile = std::string(profile);
    record.rotation_period = absl::Seconds(
        absl::ToInt64Seconds(rotation_period));  // Stored in whole seconds.
    record.created_at = FromMicros(absl::ToUnixMicros(clock_()));
    bool exists = false;
    {
      CB_ASSIGN_OR_RETURN(
          Statement s,
          Prepare("SELECT latest_version, version_count, first_created_at"
                  " FROM credential_profiles"
                  " WHERE provider = ?1 AND profile = ?2"));
      s.Bind(1, provider).Bind(2, profile);
      CB_ASSIGN_OR_RETURN(exists, s.Step("store credential"));
      if (exists) {
        record.version = s.Int(0) + 1;
        record.version_count = s.Int(1) + 1;
        record.first_created_at = FromMicros(s.Int(2));
      } else {
        record.version = 1;
        record.version_count = 1;
        record.first_created_at = record.created_at;
      }
    }

    absl::StatusOr<std::pair<std::string, std::string>> sealed =
        seal(record.version);
    if (!sealed.ok()) return sealed.status();
    record.sealed = std::move(sealed->first);
    record.fingerprint = std::move(sealed->second);

    if (exists) {
      CB_ASSIGN_OR_RETURN(Statement s,
                          Prepare("UPDATE credential_profiles"
                                  " SET latest_version = ?3, version_count = ?4"
                                  " WHERE provider = ?1 AND profile = ?2"));
      s.Bind(1, provider)
          .Bind(2, profile)
          .Bind(3, record.version)
          .Bind(4, record.version_count);
      CB_RETURN_IF_ERROR(s.Run("store credential"));
    } else {
      CB_ASSIGN_OR_RETURN(
          Statement s,
          Prepare("INSERT INTO credential_profiles (provider, profile,"
                  " latest_version, version_count, first_created_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)"));
      s.Bind(1, provider)
          .Bind(2, profile)
          .Bind(3, record.version)
          .Bind(4, record.version_count)
          .Bind(5, absl::ToUnixMicros(record.first_created_at));
      CB_RETURN_IF_ERROR(s.Run("store credential"));
    }
    {
      CB_ASSIGN_OR_RETURN(
          Statement s,
          Prepare("INSERT INTO credentials (provider, profile, version,"
                  " sealed, fingerprint, created_at, rotation_period_s)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
      s.Bind(1, provider)
          .Bind(2, profile)
          .Bind(3, record.version)
          .BindBlob(4, record.sealed)
          .Bind(5, record.fingerprint)
          .Bind(6, absl::ToUnixMicros(record.created_at))
          .Bind(7, absl::ToInt64Seconds(record.rotation_period));
      CB_RETURN_IF_ERROR(s.Run("store credential"));
    }
    changes_.push_back({LatestIndex::Key(provider, profile), record});
    return record;
  }

  absl::StatusOr<int64_t> DeleteLocked(absl::string_view provider,
                                       absl::string_view profile)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t count = 0;
    {
      CB_ASSIGN_OR_RETURN(Statement s,
                          Prepare("DELETE FROM credentials"
                                  " WHERE provider = ?1 AND profile = ?2"));
      s.Bind(1, provider).Bind(2, profile);
      CB_RETURN_IF_ERROR(s.Run("delete credential"));
      count = sqlite3_changes64(db_);
    }
    {
      CB_ASSIGN_OR_RETURN(Statement s,
                          Prepare("DELETE FROM credential_profiles"
                                  " WHERE provider = ?1 AND profile = ?2"));
      s.Bind(1, provider).Bind(2, profile);
      CB_RETURN_IF_ERROR(s.Run("delete credential"));
    }
    changes_.push_back({LatestIndex::Key(provider, profile), std::nullopt});
    if (count == 0) {
      return absl::NotFoundError(
          absl::StrCat("no credential stored for ", provider, "/", profile));
    }
    return count;
  }

  // Appends `event` at the end of the audit chain inside the caller's
  // transaction: sets sequence (last + 1) and prev_hash (the last hash, ""
  // for the first), then hash from `hash_fn`. AppendAudit and WriteFlow
  // both chain through here.
  absl::StatusOr<AuditRecord> AppendAuditLocked(AuditRecord event,
                                                const AuditHashFn& hash_fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!hash_fn) {
      return absl::InvalidArgumentError("no audit hash function given");
    }
    {
      CB_ASSIGN_OR_RETURN(Statement last, Prepare(kLastAuditSql));
      CB_ASSIGN_OR_RETURN(bool row, last.Step("read audit chain"));
      event.sequence = row ? last.Int(0) + 1 : 1;
      event.prev_hash = row ? last.Text(1) : "";
    }
    event.hash = hash_fn(event);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kInsertAuditSql));
    s.Bind(1, event.sequence)
        .Bind(2, absl::ToUnixMicros(event.time))
        .Bind(3, event.kind)
        .Bind(4, event.role)
        .Bind(5, event.peer)
        .Bind(6, event.provider)
        .Bind(7, event.profile)
        .Bind(8, event.request_id)
        .Bind(9, event.grant_id)
        .Bind(10, event.action)
        .Bind(11, event.outcome)
        .Bind(12, event.detail)
        .Bind(13, event.prev_hash)
        .Bind(14, event.hash);
    CB_RETURN_IF_ERROR(s.Run("append audit event"));
    return event;
  }

  // Every part of `write`, inside the caller's transaction.
  absl::Status WriteFlowLocked(const FlowWrite& write,
                               const AuditHashFn& hash_fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const RequestRecord& r : write.requests) {
      std::vector<absl::string_view> context;
      context.reserve(2 * r.context.size());
      for (const auto& [key, value] : r.context) {
        context.push_back(key);
        context.push_back(value);
      }
      std::vector<absl::string_view> missing(r.missing_fields.begin(),
                                             r.missing_fields.end());
      CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertRequestSql));
      s.Bind(1, r.request_id)
          .Bind(2, r.session_key)
          .Bind(3, r.need_id)
          .Bind(4, r.provider)
          .Bind(5, r.profile)
          .Bind(6, r.action)
          .BindBlob(7, EncodeStrings(context))
          .Bind(8, DurationToMicros(r.requested_ttl))
          .Bind(9, r.agent_peer)
          .Bind(10, int64_t{r.state})
          .BindBlob(11, EncodeStrings(missing))
          .Bind(12, TimeToMicros(r.created_at))
          .Bind(13, TimeToMicros(r.expires_at))
          .Bind(14, TimeToMicros(r.decided_at))
          .Bind(15, r.decision)
          .Bind(16, r.grant_id)
          .Bind(17, r.binding_note)
          .Bind(18, r.mac);
      CB_RETURN_IF_ERROR(s.Run("write request"));
    }
    for (const GrantRecord& g : write.grants) {
      CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertGrantSql));
      s.Bind(1, g.grant_id)
          .Bind(2, g.request_id)
          .Bind(3, g.session_key)
          .Bind(4, g.provider)
          .Bind(5, g.profile)
          .Bind(6, g.action)
          .Bind(7, g.credential_version)
          .Bind(8, int64_t{g.scope})
          .Bind(9, TimeToMicros(g.created_at))
          .Bind(10, TimeToMicros(g.expires_at))
          .Bind(11, TimeToMicros(g.ended_at))
          .Bind(12, g.end_reason)
          .Bind(13, g.mac);
      CB_RETURN_IF_ERROR(s.Run("write grant"));
    }
    for (const StandingRecord& r : write.standing) {
      CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertStandingSql));
      s.Bind(1, r.id)
          .Bind(2, r.provider)
          .Bind(3, r.profile)
          .Bind(4, r.action_pattern)
          .Bind(5, TimeToMicros(r.created_at))
          .Bind(6, TimeToMicros(r.expires_at))
          .Bind(7, int64_t{r.revoked ? 1 : 0})
          .Bind(8, r.mac);
      CB_RETURN_IF_ERROR(s.Run("write standing approval"));
    }
    for (const BindingRecord& b : write.bindings) {
      CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertBindingSql));
      s.Bind(1, b.provider)
          .Bind(2, b.resource)
          .Bind(3, b.profile)
          .Bind(4, b.fingerprint)
          .Bind(5, b.credential_version)
          .Bind(6, b.grant_id)
          .Bind(7, TimeToMicros(b.created_at))
          .Bind(8, TimeToMicros(b.updated_at));
      CB_RETURN_IF_ERROR(s.Run("write resource binding"));
    }
    for (const auto& [key, value] : write.meta) {
      CB_RETURN_IF_ERROR(PutMetaLocked(key, value));
    }
    for (const AuditRecord& event : write.audit) {
      CB_RETURN_IF_ERROR(AppendAuditLocked(event, hash_fn).status());
    }
    return absl::OkStatus();
  }

  const std::string path_;
  // Stamps new versions; immutable after construction.
  const std::function<absl::Time()> clock_;
  // Guards the connection and everything done through it: one statement or
  // transaction at a time.
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_GUARDED_BY(mu_);
  // Prepared statements keyed by their (static) SQL text.
  StatementCache statements_ ABSL_GUARDED_BY(mu_);
  int64_t reserve_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The reserve file is not there (released on a full disk, or not yet
  // made). Changed only under mu_; atomic so that PutCredential can look
  // before it queues without taking mu_.
  std::atomic<bool> reserve_released_{false};
  // GetWriteStats; read without taking mu_ (a test watches the queue while
  // a write holds the connection).
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> batches_redone_{0};
  // The latest version of each profile read or written (GetCredential), the
  // changes the transaction under way made to it, and the count of commits
  // (CurrentChangeMark, IndexCommitLocked).
  LatestIndex latest_;
  std::vector<LatestIndex::Change> changes_ ABSL_GUARDED_BY(mu_);
  std::atomic<ChangeMark> commits_{0};
  // GetReadStats.
  std::atomic<int64_t> latest_from_memory_{0};
  std::atomic<int64_t> latest_from_database_{0};
  // Set once by OpenReaders before the store is shared; each has its own
  // lock (ReaderLease).
  std::vector<std::unique_ptr<ReadConnection>> readers_;
  // Set once by StartCheckpointer before the store is shared.
  std::unique_ptr<Checkpointer> checkpointer_;
  // Group commit (Commit): writes waiting for the next transaction, and
  // whether one is being committed. Taken before mu_, never inside it.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<QueuedWrite*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool committing_ ABSL_GUARDED_BY(queue_mu_) = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, std::function<absl::Time()> clock) {
  if (!clock) clock = [] { return absl::Now(); };
  if (path.empty()) {
    return absl::InvalidArgumentError("no database path given");
  }
  CB_RETURN_IF_ERROR(PreparePrivateFile(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
      kExclusiveVfs);
  if (rc != SQLITE_OK) {
    absl::Status status =
        SqliteStatus(rc, db, absl::StrCat("open database ", path));
    sqlite3_close_v2(db);
    return status;
  }
  auto store = std::make_unique<SqliteStore>(path, db, std::move(clock));
  CB_RETURN_IF_ERROR(store->Initialize());
  store->OpenReaders();
  store->StartCheckpointer();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace credbroker
