// Checkpointer: the store's write-ahead log copied back into the database
// off the commit path. Internal to broker/store. Thread-safe: OnCommit runs
// on the writer's thread, the checkpoints on the Checkpointer's own.
#ifndef CREDBROKER_BROKER_STORE_SQLITE_CHECKPOINTER_H_
#define CREDBROKER_BROKER_STORE_SQLITE_CHECKPOINTER_H_

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace credbroker {
namespace sqlite_internal {

// Copies the write-ahead log back into the database on its own thread and
// connection. SQLite's automatic checkpoint runs inside the commit that
// crosses its threshold, so that one commit (and whoever waits on it: an
// approval, a watcher's event) would take tens of milliseconds longer. The
// writer's WAL hook (OnCommit) wakes this thread instead; its checkpoint is
// PASSIVE: it never waits for, or blocks, a reader or the writer, and copies
// what it can. The next commit after a complete checkpoint starts the log
// again from its beginning. Writes that never pause can keep a background
// checkpoint from ever completing; past kInlineFrames the writer then
// checkpoints in its own commit, as SQLite would have, so that the log
// stays bounded.
class Checkpointer {
 public:
  // The WAL size, in frames (pages), that asks for a checkpoint: SQLite's
  // own default threshold.
  static constexpr int kCheckpointFrames = 1000;
  static constexpr int kInlineFrames = 4 * kCheckpointFrames;

  // Null when the connection cannot be opened; the writer then keeps
  // SQLite's automatic checkpoint.
  static std::unique_ptr<Checkpointer> Start(const std::string& path);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // sqlite3_wal_hook's callback, on the writer's thread after each commit.
  static int OnCommit(void* self, sqlite3* db, const char*, int frames);

  // Background checkpoints completed.
  int64_t done() const { return done_.load(std::memory_order_relaxed); }

 private:
  explicit Checkpointer(sqlite3* db) : db_(db), thread_([this] { Loop(); }) {}

  void Loop();

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

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_CHECKPOINTER_H_
