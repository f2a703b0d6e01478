#include "broker/store/sqlite_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"
#include "broker/store/latest_index.h"
#include "broker/store/sqlite_checkpointer.h"
#include "broker/store/sqlite_readers.h"
#include "broker/store/sqlite_rows.h"
#include "broker/store/sqlite_statement.h"
#include "broker/store/sqlite_store_impl.h"

namespace credbroker {
namespace sqlite_internal {
namespace {

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

// The rest of GetCredential once its statement is prepared, on either
// connection.
absl::StatusOr<CredentialRecord> StepGet(Statement& s,
                                         absl::string_view provider,
                                         absl::string_view profile,
                                         int64_t version) {
  s.Bind(1, provider).Bind(2, profile).Bind(3, version);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read credential"));
  if (!row) {
    return absl::NotFoundError(
        version == 0
            ? absl::StrCat("no credential stored for ", provider, "/", profile)
            : absl::StrCat("no credential stored for ", provider, "/", profile,
                           " version ", version));
  }
  return ReadRecord(s);
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

}  // namespace

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&mu_);
    sqlite3_wal_hook(db_, nullptr, nullptr);
  }
  checkpointer_.reset();
  readers_.clear();  // The writer closes last, checkpointing the WAL.
  absl::MutexLock lock(&mu_);
  CloseConnection(db_, statements_);
}

void SqliteStore::OpenReaders() {
  for (int i = 0; i < kReadConnections; ++i) {
    std::unique_ptr<ReadConnection> reader = ReadConnection::Open(path_);
    if (reader == nullptr) break;
    readers_.push_back(std::move(reader));
  }
  absl::MutexLock lock(&mu_);
  IndexCommitLocked(/*committed=*/true);  // Empty, current from here.
}

void SqliteStore::StartCheckpointer() {
  checkpointer_ = Checkpointer::Start(path_);
  if (checkpointer_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(db_, &Checkpointer::OnCommit, checkpointer_.get());
}

absl::StatusOr<CredentialRecord> SqliteStore::GetCredential(
    absl::string_view provider, absl::string_view profile, int64_t version) {
  CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version must be positive (or 0 for the latest), got ", version));
  }
  auto read = [&] {
    return Read<CredentialRecord>(kGetSql, [&](Statement& s) {
      return StepGet(s, provider, profile, version);
    });
  };
  if (version != 0) return read();
  const std::string key = LatestIndex::Key(provider, profile);
  const std::optional<ChangeMark> mark = CurrentChangeMark();
  bool may_offer = false;
  if (std::optional<CredentialRecord> kept =
          latest_.Find(key, mark, &may_offer)) {
    latest_from_memory_.fetch_add(1, std::memory_order_relaxed);
    return *std::move(kept);
  }
  latest_from_database_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<CredentialRecord> record = read();
  if (record.ok() && may_offer)
    latest_.Offer(key, *record, *mark, CurrentChangeMark());
  return record;
}

absl::StatusOr<std::vector<CredentialRecord>> SqliteStore::ListCredentials(
    const ListCredentialsOptions& options) {
  CB_RETURN_IF_ERROR(ValidateLimit(options.limit));
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
    return StepAll(s, "list credentials", ReadRecord);
  });
}

absl::StatusOr<std::vector<CredentialRecord>> SqliteStore::ListVersions(
    absl::string_view provider, absl::string_view profile) {
  CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
  return Read<std::vector<CredentialRecord>>(kVersionsSql, [&](Statement& s) {
    s.Bind(1, provider).Bind(2, profile);
    return StepAll(s, "list credential versions", ReadRecord);
  });
}

absl::StatusOr<std::string> SqliteStore::GetMeta(absl::string_view key) {
  return Read<std::string>(kGetMetaSql,
                           [&](Statement& s) { return StepGetMeta(s, key); });
}

absl::Status SqliteStore::PutMeta(absl::string_view key,
                                  absl::string_view value) {
  if (key.empty()) {
    return absl::InvalidArgumentError("metadata key must not be empty");
  }
  absl::MutexLock lock(&mu_);
  absl::Status status = PutMetaLocked(key, value);
  // Its own (autocommit) transaction, committed or not by now: it moves
  // the change mark on and changes no credential row.
  IndexCommitLocked(status.ok());
  return status;
}

absl::Status SqliteStore::PutMetaLocked(absl::string_view key,
                                        absl::string_view value) {
  CB_ASSIGN_OR_RETURN(
      Statement s,
      Prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)"
              " ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  s.Bind(1, key).BindBlob(2, value);
  return s.Run("write metadata");
}

absl::Status SqliteStore::CheckIntegrity() {
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

Store::ReadStats SqliteStore::GetReadStats() {
  ReadStats stats;
  stats.latest_from_memory =
      latest_from_memory_.load(std::memory_order_relaxed);
  stats.latest_from_database =
      latest_from_database_.load(std::memory_order_relaxed);
  stats.latest_kept = static_cast<int64_t>(latest_.size());
  return stats;
}

Store::WriteStats SqliteStore::GetWriteStats() {
  WriteStats stats;
  stats.transactions = transactions_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.batches_redone = batches_redone_.load(std::memory_order_relaxed);
  if (checkpointer_ != nullptr) stats.checkpoints = checkpointer_->done();
  absl::MutexLock lock(&queue_mu_);
  stats.queued = static_cast<int64_t>(queue_.size());
  return stats;
}

absl::StatusOr<std::vector<AuditRecord>> SqliteStore::ListAudit(
    const AuditQuery& query) {
  CB_RETURN_IF_ERROR(ValidateLimit(query.limit));
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListAuditSql));
  s.Bind(1, query.after_sequence)
      .Bind(2, TimeToMicros(query.since))
      .Bind(3, TimeToMicros(query.until))
      .Bind(4, query.provider)
      .Bind(5, query.kind)
      .Bind(6, static_cast<int64_t>(query.limit));
  return StepAll(s, "list audit events", ReadAudit);
}

absl::StatusOr<std::vector<RequestRecord>> SqliteStore::ListRequests(
    bool open_only) {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(open_only ? kListOpenRequestsSql
                                                     : kListRequestsSql));
  if (open_only) s.Bind(1, kPastMicros);
  return StepAll(s, "list requests", ReadRequest);
}

absl::StatusOr<RequestRecord> SqliteStore::GetRequest(
    absl::string_view request_id) {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetRequestSql));
  s.Bind(1, request_id);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read request"));
  if (!row) return absl::NotFoundError(absl::StrCat("no request ", request_id));
  return ReadRequest(s);
}

absl::StatusOr<std::vector<GrantRecord>> SqliteStore::ListGrants(
    const ListGrantsOptions& options) {
  CB_RETURN_IF_ERROR(ValidateLimit(options.limit));
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListGrantsSql));
  s.Bind(1, TimeToMicros(options.after_created_at))
      .Bind(2, options.after_grant_id)
      .Bind(3, int64_t{options.include_ended ? 1 : 0})
      .Bind(4, kFutureMicros)
      .Bind(5, TimeToMicros(options.now))
      .Bind(6, static_cast<int64_t>(options.limit));
  return StepAll(s, "list grants", ReadGrant);
}

absl::StatusOr<GrantRecord> SqliteStore::GetGrant(absl::string_view grant_id) {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetGrantSql));
  s.Bind(1, grant_id);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read grant"));
  if (!row) return absl::NotFoundError(absl::StrCat("no grant ", grant_id));
  return ReadGrant(s);
}

absl::StatusOr<std::vector<StandingRecord>> SqliteStore::ListStanding() {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListStandingSql));
  return StepAll(s, "list standing approvals", ReadStanding);
}

absl::StatusOr<BindingRecord> SqliteStore::GetBinding(
    absl::string_view provider, absl::string_view resource) {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kGetBindingSql));
  s.Bind(1, provider).Bind(2, resource);
  CB_ASSIGN_OR_RETURN(bool row, s.Step("read resource binding"));
  if (!row) {
    return absl::NotFoundError(absl::StrCat(
        "no ", provider, " binding for resource \"", resource, "\""));
  }
  return ReadBinding(s);
}

absl::StatusOr<std::vector<BindingRecord>> SqliteStore::ListBindings(
    absl::string_view provider) {
  absl::MutexLock lock(&mu_);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kListBindingsSql));
  s.Bind(1, provider);
  return StepAll(s, "list resource bindings", ReadBinding);
}

}  // namespace sqlite_internal

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, std::function<absl::Time()> clock) {
  if (!clock) clock = [] { return absl::Now(); };
  if (path.empty()) {
    return absl::InvalidArgumentError("no database path given");
  }
  CB_RETURN_IF_ERROR(sqlite_internal::PreparePrivateFile(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
      sqlite_internal::kExclusiveVfs);
  if (rc != SQLITE_OK) {
    absl::Status status = sqlite_internal::SqliteStatus(
        rc, db, absl::StrCat("open database ", path));
    sqlite3_close_v2(db);
    return status;
  }
  auto store = std::make_unique<sqlite_internal::SqliteStore>(path, db,
                                                              std::move(clock));
  CB_RETURN_IF_ERROR(store->Initialize());
  store->OpenReaders();
  store->StartCheckpointer();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace credbroker
