#include "broker/store/sqlite_statement.h"

#include <errno.h>
#include <sqlite3.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace credbroker {
namespace sqlite_internal {
namespace {

// SQLITE_IOERR: `message` as UNAVAILABLE, unless the disk is full.
absl::Status IoErrorStatus(sqlite3* db, const std::string& message) {
  if (db != nullptr) {
    // A failed write because the disk (or quota, or file size limit) is
    // full is reported as an I/O error; say what it is.
    const int err = sqlite3_system_errno(db);
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "disk full: ", message, " (", ErrnoText(err),
          "; free some space in the data directory; nothing was stored)"));
    }
  }
  return absl::UnavailableError(
      absl::StrCat("I/O error on the database: ", message));
}

}  // namespace

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status SqliteStatus(int rc, sqlite3* db, absl::string_view what) {
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = absl::StrCat(what, ": ", detail);
  switch (rc & 0xff) {
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
      return IoErrorStatus(db, message);
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

absl::StatusOr<Statement> PrepareCached(sqlite3* db, StatementCache& cache,
                                        const char* sql) {
  auto it = cache.find(sql);
  if (it == cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteStatus(rc, db, "prepare statement");
    }
    it = cache.emplace(sql, stmt).first;
  }
  return Statement(db, it->second);
}

void CloseConnection(sqlite3* db, StatementCache& cache) {
  for (auto& entry : cache) sqlite3_finalize(entry.second);
  cache.clear();
  sqlite3_close_v2(db);
}

sqlite3* OpenExtraConnection(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                      kExclusiveVfs) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return nullptr;
  }
  return db;
}

}  // namespace sqlite_internal
}  // namespace credbroker
