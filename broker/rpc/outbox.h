// Outbox is the write side of one server stream: a bounded queue of messages
// written one at a time, so that a reader that stops reading delays nobody
// but itself. Producers (any thread, including while holding other locks)
// Push; the reactor reports OnWriteDone and OnDone. When the queue overflows
// the stream is finished with RESOURCE_EXHAUSTED and the client can
// reconnect. A message is released (its `wipe` run, then destroyed) as soon
// as it is written or dropped, so what it carries does not outlive the
// write. Thread-safe; shared between the reactor and producers, it outlives
// the reactor safely (pushes after OnDone are dropped).
#ifndef CREDBROKER_BROKER_RPC_OUTBOX_H_
#define CREDBROKER_BROKER_RPC_OUTBOX_H_

#include <grpcpp/support/status.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace credbroker {

template <typename Msg>
class Outbox {
 public:
  using StartWriteFn = std::function<void(const Msg*)>;
  using FinishFn = std::function<void(const grpc::Status&)>;
  using WipeFn = std::function<void(Msg&)>;

  // The functions call the reactor's StartWrite and Finish; they are never
  // called with the outbox's lock held, nor after OnDone. `wipe` (optional)
  // clears what a message holds that must not outlive it.
  Outbox(size_t max_queued, StartWriteFn start_write, FinishFn finish,
         WipeFn wipe = nullptr)
      : max_queued_(max_queued),
        start_write_(std::move(start_write)),
        finish_(std::move(finish)),
        wipe_(std::move(wipe)) {}

  // Queues `msg`. False when the stream is closing or gone. A `bounded`
  // false message (a watcher's snapshot, whose size the broker chose) does
  // not count toward the bound: only messages a slow reader let pile up do.
  bool Push(Msg msg, bool bounded = true) {
    bool overflow = false;
    {
      absl::MutexLock lock(&mu_);
      if (closing_ || done_) return false;
      if (bounded && counted_ >= max_queued_) {
        overflow = true;
        closing_ = true;
        DropQueued();
        final_status_ = grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            "this stream fell too far behind (it stopped reading); reconnect "
            "to get a fresh snapshot");
      } else {
        queue_.push_back({std::move(msg), bounded});
        counted_ += bounded;
      }
    }
    Pump();
    return !overflow;
  }

  // Finishes with `status` once the queued messages are written.
  void CloseAfterDrain(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (closing_ || done_) return;
      closing_ = true;
      final_status_ = status;
    }
    Pump();
  }

  // Finishes with `status` now, dropping what is queued.
  void CloseNow(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finish_called_) return;
      DropQueued();
      closing_ = true;
      final_status_ = status;
    }
    Pump();
  }

  // The reactor's OnWriteDone. It can arrive before StartWrite has returned
  // on the thread that started the write: then that thread ends the write
  // (see Pump), so that current_ is only ever touched under mu_ after the
  // StartWrite that read it returned.
  void OnWriteDone(bool ok) {
    {
      absl::MutexLock lock(&mu_);
      write_done_ = true;
      write_ok_ = ok;
      if (!start_returned_) return;
      EndWrite();
    }
    Pump();
  }

  // The reactor's OnDone: no gRPC call may be made after this.
  void OnDone() {
    absl::MutexLock lock(&mu_);
    done_ = true;
    DropQueued();
    // No write is pending after OnDone; one whose StartWrite has not
    // returned yet is released by Pump when it does.
    if (start_returned_) Release(current_);
  }

  bool closing() const {
    absl::MutexLock lock(&mu_);
    return closing_ || done_;
  }

 private:
  void Release(Msg& msg) {
    if (wipe_) wipe_(msg);
    msg = Msg();
  }
  void DropQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Entry& e : queue_) Release(e.msg);
    queue_.clear();
    counted_ = 0;
  }

  // gRPC is done with current_ and StartWrite has returned: release it and
  // let the next write start.
  void EndWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Release(current_);
    writing_ = false;
    write_done_ = false;
    if (!write_ok_ && !closing_) {
      // The client went away; nothing more can be written.
      closing_ = true;
      DropQueued();
      final_status_ =
          grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  }

  // Starts the next write, or finishes, outside the lock.
  void Pump() {
    for (;;) {
      const Msg* to_write = nullptr;
      std::optional<grpc::Status> to_finish;
      {
        absl::MutexLock lock(&mu_);
        if (done_ || writing_ || finish_called_) return;
        if (!queue_.empty()) {
          current_ = std::move(queue_.front().msg);
          counted_ -= queue_.front().bounded;
          queue_.pop_front();
          writing_ = true;
          start_returned_ = false;
          to_write = &current_;
        } else if (closing_) {
          finish_called_ = true;
          to_finish = final_status_;
        }
      }
      if (to_finish.has_value()) finish_(*to_finish);
      if (to_write == nullptr) return;
      start_write_(to_write);
      absl::MutexLock lock(&mu_);
      start_returned_ = true;
      if (write_done_) {
        EndWrite();  // OnWriteDone came first: go on with the next write.
        continue;
      }
      if (done_) Release(current_);
      return;
    }
  }

  const size_t max_queued_;
  const StartWriteFn start_write_;
  const FinishFn finish_;
  const WipeFn wipe_;
  mutable absl::Mutex mu_;
  struct Entry {
    Msg msg;
    bool bounded;
  };
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);  // Waiting to be written.
  size_t counted_ ABSL_GUARDED_BY(mu_) = 0;       // Bounded entries queued.
  // The message being written: set by Pump, released by EndWrite, read by
  // gRPC in between; under mu_ except while gRPC reads it.
  Msg current_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Whether the last StartWrite has returned, and whether (and how) its
  // OnWriteDone came: the write ends when both are true.
  bool start_returned_ ABSL_GUARDED_BY(mu_) = true;
  bool write_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_OUTBOX_H_
