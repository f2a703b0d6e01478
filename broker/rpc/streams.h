// StreamRegistry tracks the open server streams so that shutdown can end
// each with UNAVAILABLE before the server stops. Thread-safe.
#ifndef CREDBROKER_BROKER_RPC_STREAMS_H_
#define CREDBROKER_BROKER_RPC_STREAMS_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace credbroker {

class StreamRegistry {
 public:
  using Closer = std::function<void(const grpc::Status&)>;

  // Returns an id for Remove. After CloseAll, `closer` is called at once,
  // with the status CloseAll gave.
  int64_t Add(Closer closer) {
    grpc::Status closed_with;
    {
      absl::MutexLock lock(&mu_);
      if (!closed_) {
        int64_t id = next_id_++;
        closers_[id] = std::move(closer);
        return id;
      }
      closed_with = closed_status_;
    }
    closer(closed_with);
    return 0;
  }

  void Remove(int64_t id) {
    absl::MutexLock lock(&mu_);
    closers_.erase(id);
  }

  // Ends every open stream with UNAVAILABLE; later streams end at once.
  void CloseAll() { CloseAll(Shutdown()); }
  // The same, with `status`.
  void CloseAll(const grpc::Status& status) {
    std::map<int64_t, Closer> closers;
    {
      absl::MutexLock lock(&mu_);
      if (!closed_) closed_status_ = status;
      closed_ = true;
      closers.swap(closers_);
    }
    for (auto& [id, closer] : closers) closer(status);
  }

 private:
  static grpc::Status Shutdown() {
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        "the broker is shutting down; reconnect when it is back");
  }

  absl::Mutex mu_;
  std::map<int64_t, Closer> closers_ ABSL_GUARDED_BY(mu_);  // Open streams.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status closed_status_ ABSL_GUARDED_BY(mu_);  // The first CloseAll's.
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_STREAMS_H_
