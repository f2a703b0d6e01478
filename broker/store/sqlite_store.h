// SqliteStore: the embedded default Store, one SQLite file in WAL mode with
// synchronous=FULL and versioned schema migrations. Thread-safe.
#ifndef CREDBROKER_BROKER_STORE_SQLITE_STORE_H_
#define CREDBROKER_BROKER_STORE_SQLITE_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/store/store.h"

namespace credbroker {

// The schema version this build writes. Opening a newer database is
// FAILED_PRECONDITION ("created by a newer credbroker").
constexpr int kSqliteSchemaVersion = 6;

// Opens (creating if needed, file mode 0600) the database at `path` and
// migrates it to kSqliteSchemaVersion; the directory must exist. An existing
// database readable by others is tightened to 0600; a symbolic link is
// refused. Errors: FAILED_PRECONDITION (cannot open or create, newer schema),
// DATA_LOSS (not a database, corrupt), UNAVAILABLE (locked by another
// process for longer than the busy timeout, I/O error).
//
// Every operation's errors map SQLite's: disk full is RESOURCE_EXHAUSTED,
// busy/locked UNAVAILABLE, corruption DATA_LOSS, read-only
// FAILED_PRECONDITION. Deleted credentials are overwritten on disk
// (secure_delete).
// `clock` stamps new versions (default absl::Now); tests inject their own.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, std::function<absl::Time()> clock = nullptr);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_STORE_H_
