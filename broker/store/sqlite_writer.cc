// Group commit and the disk space reserve: how the store's writes reach
// the database (see SqliteStore::QueuedWrite).
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker/common/status_macros.h"
#include "broker/store/sqlite_store_impl.h"

namespace credbroker {
namespace sqlite_internal {

absl::Status SqliteStore::Commit(absl::string_view what, bool retry_when_full,
                                 const std::function<absl::Status()>& body) {
  QueuedWrite write{what,  retry_when_full, &body, absl::OkStatus(),
                    false, false,           false};
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

void SqliteStore::CommitBatchLocked(const std::vector<QueuedWrite*>& batch) {
  if (batch.size() > 1) {
    absl::Status status = Exec("BEGIN IMMEDIATE", "write a batch");
    for (QueuedWrite* w : batch) {
      if (!status.ok()) break;
      status = (*w->body)();
    }
    if (status.ok()) status = CommitLocked("write a batch");
    if (status.ok()) {
      transactions_.fetch_add(1, std::memory_order_relaxed);
      writes_.fetch_add(static_cast<int64_t>(batch.size()),
                        std::memory_order_relaxed);
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

absl::Status SqliteStore::CommitAloneLocked(const QueuedWrite& w) {
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

absl::Status SqliteStore::CommitLocked(absl::string_view what) {
  absl::Status status = Exec("COMMIT", what);
  IndexCommitLocked(status.ok());
  return status;
}

// Hands latest_ the changes of the transaction just committed (or not:
// they are then forgotten) and moves the change mark on: every COMMIT
// counts, whatever its outcome, so a read that raced with it is never
// kept under the new mark.
void SqliteStore::IndexCommitLocked(bool committed) {
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
void SqliteStore::Rollback() {
  changes_.clear();  // Nothing of it reached the index or the database.
  if (!sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::Status SqliteStore::ReserveSpace(int64_t bytes) {
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

// The disk is full: gives the reserve back to the file system so that the
// write being retried (a decision, an audit event) fits. True when there
// was a reserve to release.
bool SqliteStore::ReleaseReserve() {
  if (reserve_bytes_ == 0 || reserve_released_) return false;
  if (unlink(ReservePath().c_str()) != 0) return false;
  reserve_released_ = true;
  std::fprintf(
      stderr,
      "credbrokerd: the disk is full; released the %lld-byte reserve so "
      "approvals and audit events can still be written. New credential "
      "versions are refused until space is freed.\n",
      static_cast<long long>(reserve_bytes_));
  return true;
}

// Before a credential write: when the reserve was released, takes it back
// first (the disk has room again) or refuses the write.
absl::Status SqliteStore::RestoreReserve() {
  if (reserve_bytes_ == 0 || !reserve_released_) return absl::OkStatus();
  const std::string path = ReservePath();
  int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  int err = fd < 0 ? errno : posix_fallocate(fd, 0, reserve_bytes_);
  if (fd >= 0) {
    if (err == 0 && fsync(fd) != 0) err = errno;
    close(fd);
  }
  if (err != 0) {
    unlink(path.c_str());
    if (err != ENOSPC && err != EDQUOT) {
      return absl::UnavailableError(
          absl::StrCat("cannot set aside the disk space reserve ", path, ": ",
                       std::strerror(err)));
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        "disk full: the data directory has no room for new credential versions "
        "(approvals of stored credentials continue on the reserved space); "
        "free "
        "some space in ",
        path_.substr(0, path_.rfind('/')), " and try again"));
  }
  if (reserve_released_) {
    std::fprintf(stderr,
                 "credbrokerd: disk space reserve in place (%lld bytes)\n",
                 static_cast<long long>(reserve_bytes_));
  }
  reserve_released_ = false;
  return absl::OkStatus();
}

}  // namespace sqlite_internal
}  // namespace credbroker
