// Executor runs closures on a fixed pool of threads, so that gRPC reactors
// hand off blocking work (SQLite, Argon2, crypto) and return at once.
// Thread-safe. The destructor finishes queued work and joins the threads.
#ifndef CREDBROKER_BROKER_COMMON_EXECUTOR_H_
#define CREDBROKER_BROKER_COMMON_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace credbroker {

class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `fn`. After Shutdown() has begun, `fn` runs on the caller's thread.
  void Schedule(std::function<void()> fn);
  // Stops accepting work, drains the queue and joins the threads.
  void Shutdown();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_
      ABSL_GUARDED_BY(mu_);  // Pending work.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_COMMON_EXECUTOR_H_
