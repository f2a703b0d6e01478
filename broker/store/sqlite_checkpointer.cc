#include "broker/store/sqlite_checkpointer.h"

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "broker/store/sqlite_statement.h"

namespace credbroker {
namespace sqlite_internal {

std::unique_ptr<Checkpointer> Checkpointer::Start(const std::string& path) {
  sqlite3* db = OpenExtraConnection(path, SQLITE_OPEN_READWRITE);
  if (db == nullptr) return nullptr;
  if (sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    return nullptr;
  }
  return std::unique_ptr<Checkpointer>(new Checkpointer(db));
}

Checkpointer::~Checkpointer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  sqlite3_close_v2(db_);
}

int Checkpointer::OnCommit(void* self, sqlite3* db, const char*, int frames) {
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

void Checkpointer::Loop() {
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
    if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                  nullptr, nullptr) == SQLITE_OK) {
      done_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace sqlite_internal
}  // namespace credbroker
