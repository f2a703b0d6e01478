// SQLite plumbing shared by the store's files: result codes as statuses,
// the prepared-statement wrapper and its per-connection cache, the extra
// connections, and the conversion of times to the integers the tables hold.
// Internal to broker/store; not thread-safe (callers hold the lock of the
// connection they use).
#ifndef CREDBROKER_BROKER_STORE_SQLITE_STATEMENT_H_
#define CREDBROKER_BROKER_STORE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"

namespace credbroker {
namespace sqlite_internal {

inline constexpr int kBusyTimeoutMs = 5000;

// The broker owns its database. Every connection of the store opens it
// through SQLite's "unix-excl" VFS: the first connection to read takes an
// exclusive lock on the file, held until the last one closes, so the
// store's own connections (writer, readers, checkpointer) share it and no
// other process can read or write it while the store is open ("database is
// locked"). The write-ahead log's index is then kept in this process's
// heap, not in a -shm file. So every change to the database is one of this
// store's own commits, and what the store (and its users) keep in memory
// need only follow those (CurrentChangeMark).
inline constexpr const char* kExclusiveVfs = "unix-excl";

// strerror(err).
std::string ErrnoText(int err);

// Maps an SQLite result code to a status. `what` says what we were doing;
// SQLite's messages never contain bound values, so no secret can leak.
absl::Status SqliteStatus(int rc, sqlite3* db, absl::string_view what);

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

// Prepared statements of one connection, keyed by their SQL text (a string
// with static lifetime).
using StatementCache = std::map<const char*, sqlite3_stmt*>;

// The cached prepared statement for `sql` on `db`, prepared on first use.
absl::StatusOr<Statement> PrepareCached(sqlite3* db, StatementCache& cache,
                                        const char* sql);

// Finalizes every cached statement, then closes the connection.
void CloseConnection(sqlite3* db, StatementCache& cache);

// Another connection to `path` with `flags` (READONLY or READWRITE), or
// null: its users then do without it (reads use the writer's connection,
// checkpoints stay inside commits).
sqlite3* OpenExtraConnection(const std::string& path, int flags);

inline absl::Time FromMicros(int64_t micros) {
  return absl::FromUnixMicros(micros);
}

// Flow times: exact Unix micros, with the infinities as the int64 extremes
// (so that they round-trip and compare correctly in SQL).
inline constexpr int64_t kPastMicros = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kFutureMicros = std::numeric_limits<int64_t>::max();

inline int64_t TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return kPastMicros;
  if (t == absl::InfiniteFuture()) return kFutureMicros;
  return absl::ToUnixMicros(t);
}
inline absl::Time MicrosToTime(int64_t micros) {
  if (micros == kPastMicros) return absl::InfinitePast();
  if (micros == kFutureMicros) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}
inline int64_t DurationToMicros(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return kFutureMicros;
  if (d == -absl::InfiniteDuration()) return kPastMicros;
  return absl::ToInt64Microseconds(d);
}
inline absl::Duration MicrosToDuration(int64_t micros) {
  if (micros == kFutureMicros) return absl::InfiniteDuration();
  if (micros == kPastMicros) return -absl::InfiniteDuration();
  return absl::Microseconds(micros);
}

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_STATEMENT_H_
