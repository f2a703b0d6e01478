#include "broker/store/sqlite_readers.h"

#include <sqlite3.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace credbroker {
namespace sqlite_internal {

std::unique_ptr<ReadConnection> ReadConnection::Open(const std::string& path) {
  sqlite3* db = OpenExtraConnection(path, SQLITE_OPEN_READONLY);
  if (db == nullptr) return nullptr;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return std::unique_ptr<ReadConnection>(new ReadConnection(db));
}

ReadConnection::~ReadConnection() {
  absl::MutexLock lock(&mu);
  CloseConnection(db_, statements_);
}

ReaderLease AcquireReader(
    const std::vector<std::unique_ptr<ReadConnection>>& readers) {
  if (readers.empty()) return ReaderLease(nullptr);
  for (const auto& reader : readers) {
    if (reader->mu.TryLock()) return ReaderLease(reader.get());
  }
  const size_t pick =
      std::hash<std::thread::id>()(std::this_thread::get_id()) % readers.size();
  readers[pick]->mu.Lock();
  return ReaderLease(readers[pick].get());
}

}  // namespace sqlite_internal
}  // namespace credbroker
