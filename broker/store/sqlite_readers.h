// The store's read-only connections and the lease that lends one to a
// read. Internal to broker/store. A ReadConnection runs one statement at a
// time, under its own mutex; any thread may lease a free one.
#ifndef CREDBROKER_BROKER_STORE_SQLITE_READERS_H_
#define CREDBROKER_BROKER_STORE_SQLITE_READERS_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/store/sqlite_statement.h"

namespace credbroker {
namespace sqlite_internal {

// Read-only connections for the hot reads (a credential, a metadata value).
// In WAL mode a reader never waits for a writer, so these do not queue
// behind a PutCredential or an approval that is syncing its transaction to
// disk, nor behind each other; each statement sees the latest commit.
inline constexpr int kReadConnections = 4;

class ReadConnection {
 public:
  // Null when the connection cannot be opened.
  static std::unique_ptr<ReadConnection> Open(const std::string& path);
  ~ReadConnection();
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

// The first of `readers` not in use, else waits for one (chosen by thread,
// so that waiters spread over them).
ReaderLease AcquireReader(const std::vector<std::unique_ptr<ReadConnection>>&
                              readers) ABSL_NO_THREAD_SAFETY_ANALYSIS;

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_READERS_H_
