// What the broker's server stream reactors share. OutboxReactor is the base
// of every stream that writes through an Outbox (the flow's Session,
// RequestCredential and WatchRequests, and the locked broker's agent
// streams): it owns the outbox, the FinishGate that orders Finish after the
// work in flight, and the stream's registration for shutdown, and it
// answers OnWriteDone, OnCancel and OnDone. FinishedReactor ends a refused
// stream at once.
#ifndef CREDBROKER_BROKER_RPC_STREAM_REACTOR_H_
#define CREDBROKER_BROKER_RPC_STREAM_REACTOR_H_

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "broker/common/executor.h"
#include "broker/common/tsan.h"
#include "broker/rpc/outbox.h"
#include "broker/rpc/streams.h"
#include "common/status.h"

namespace credbroker {

// A stream reactor that finishes at once with a fixed status.
template <typename Base>
class FinishedReactor : public Base {
 public:
  explicit FinishedReactor(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

// Serializes the end of a reactor's life with work in flight: Finish is
// deferred while a hold is taken (an executor task, a StartRead being
// issued), so that the reactor is never deleted under a running task.
// Thread-safe.
class FinishGate {
 public:
  // Returns false when the stream already finished: do not start work.
  bool Hold() {
    absl::MutexLock lock(&mu_);
    if (finish_called_) return false;
    ++holds_;
    return true;
  }
  // Returns the status to Finish with, if a finish was deferred.
  std::optional<grpc::Status> Release() {
    absl::MutexLock lock(&mu_);
    --holds_;
    if (holds_ == 0 && deferred_.has_value() && !finish_called_) {
      finish_called_ = true;
      TsanHappensBefore(this);
      return std::exchange(deferred_, std::nullopt);
    }
    return std::nullopt;
  }
  // Returns true when the caller should Finish now; otherwise deferred.
  bool RequestFinish(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finish_called_ || deferred_.has_value()) return false;
    if (holds_ > 0) {
      deferred_ = status;
      return false;
    }
    finish_called_ = true;
    TsanHappensBefore(this);
    return true;
  }

  // ThreadSanitizer edges for orderings that gRPC guarantees but makes
  // inside its own (uninstrumented) code: a reaction runs after the
  // StartRead/StartWrite that led to it, reactions run one after another,
  // and OnDone runs after the Finish this gate let through and after every
  // reaction has returned. No-ops outside the tsan build.
  class Reaction {
   public:
    explicit Reaction(const FinishGate* gate) : gate_(gate) {
      TsanHappensAfter(gate_);
    }
    ~Reaction() { TsanHappensBefore(gate_); }
    Reaction(const Reaction&) = delete;
    Reaction& operator=(const Reaction&) = delete;

   private:
    const FinishGate* gate_;
  };
  // At the top of OnReadDone, OnWriteDone and OnCancel.
  [[nodiscard]] Reaction InReaction() const { return Reaction(this); }
  // Before handing an operation to gRPC (StartRead, StartWrite).
  void HandOff() const { TsanHappensBefore(this); }
  // At the top of OnDone.
  void OnDone() const { TsanHappensAfter(this); }

 private:
  absl::Mutex mu_;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> deferred_ ABSL_GUARDED_BY(mu_);
};

// The base of a server stream reactor that writes `Msg`s through a bounded
// Outbox. `Base` is grpc::ServerWriteReactor<Msg> or
// grpc::ServerBidiReactor<Request, Msg>. The outbox's writes and its one
// Finish go through the gate; the stream is registered with `streams` so
// that shutdown (or the unlock) ends it, and unregistered in OnDone, which
// then calls OnStreamDone and deletes the reactor. Subclasses take the gate
// (InReaction) at the top of their own reactions, start blocking work with
// Schedule and reads with Read; the outbox is safe to push to from any
// thread, through WeakOutbox after the reactor may be gone.
template <typename Base, typename Msg>
class OutboxReactor : public Base {
 public:
  void OnWriteDone(bool ok) final {
    auto reaction = gate_.InReaction();
    outbox_->OnWriteDone(ok);
  }
  void OnCancel() final {
    auto reaction = gate_.InReaction();
    outbox_->CloseNow(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() final {
    gate_.OnDone();
    outbox_->OnDone();
    streams_->Remove(stream_id_);
    OnStreamDone();
    delete this;
  }

 protected:
  // `wipe` (optional) clears what a message holds once written or dropped.
  OutboxReactor(StreamRegistry* streams, size_t max_queued,
                typename Outbox<Msg>::WipeFn wipe = nullptr)
      : streams_(streams),
        outbox_(std::make_shared<Outbox<Msg>>(
            max_queued,
            [this](const Msg* m) {
              gate_.HandOff();
              this->StartWrite(m);
            },
            [this](const grpc::Status& s) {
              if (gate_.RequestFinish(s)) this->Finish(s);
            },
            std::move(wipe))) {
    // Ended at once when the streams were ended already.
    stream_id_ = streams_->Add([box = WeakOutbox()](const grpc::Status& s) {
      if (auto b = box.lock()) b->CloseNow(s);
    });
  }
  ~OutboxReactor() override = default;

  // The last call the reactor gets, after every task and reaction: where a
  // subclass lets go of what it registered elsewhere.
  virtual void OnStreamDone() {}

  Outbox<Msg>& outbox() { return *outbox_; }
  std::weak_ptr<Outbox<Msg>> WeakOutbox() const { return outbox_; }
  FinishGate& gate() { return gate_; }

  // Runs `task` on `executor`; Finish waits until it has returned. Nothing
  // runs when the stream has finished already.
  template <typename Task>
  void Schedule(Executor* executor, Task task) {
    if (!gate_.Hold()) return;
    executor->Schedule([this, task = std::move(task)]() mutable {
      task();
      ReleaseHold();
    });
  }

  // Issues the next read (bidirectional streams) unless the stream has
  // finished; Finish waits while StartRead is being called.
  template <typename Request>
  void Read(Request* request) {
    if (!gate_.Hold()) return;
    gate_.HandOff();
    this->StartRead(request);
    ReleaseHold();
  }

 private:
  void ReleaseHold() {
    if (std::optional<grpc::Status> s = gate_.Release()) this->Finish(*s);
  }

  FinishGate gate_;
  StreamRegistry* const streams_;
  const std::shared_ptr<Outbox<Msg>> outbox_;
  int64_t stream_id_ = 0;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_STREAM_REACTOR_H_
