// RefusalAudit records refused calls and connections in the audit log so
// that a storm of them cannot slow the owner or flood the log: per caller at
// most `per_caller` events an interval are written one by one, the rest are
// counted and written as one summary event ("N more refusals from uid …")
// when the interval ends (or at Flush). Events wait in a bounded queue that
// one thread of its own writes; when the queue is full an event is dropped
// and counted, and the count is written as its own event later. Refused()
// never waits for the store. Thread-safe.
#ifndef CREDBROKER_BROKER_CORE_REFUSAL_AUDIT_H_
#define CREDBROKER_BROKER_CORE_REFUSAL_AUDIT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/core/audit.h"

namespace credbroker {

struct RefusalAuditPolicy {
  // Events written one by one per caller and interval.
  int per_caller = 10;
  absl::Duration interval = absl::Minutes(1);
  // Events waiting to be written.
  size_t queue_limit = 128;
  // Callers counted at once; beyond, new callers share one count.
  size_t max_callers = 1024;
};

class RefusalAudit {
 public:
  // `log` must outlive this object.
  RefusalAudit(AuditLog* log, Clock clock,
               RefusalAuditPolicy policy = RefusalAuditPolicy());
  // Flushes, then stops the writer.
  ~RefusalAudit();
  RefusalAudit(const RefusalAudit&) = delete;
  RefusalAudit& operator=(const RefusalAudit&) = delete;

  // A refusal of `caller` ("uid 1000", "ipv4:127.0.0.1"). True when
  // `event` was queued to be written on its own; false when it was folded
  // into the caller's summary or dropped.
  bool Refused(const std::string& caller, AuditRecord event);
  // Refused with the event made here: a call refused before it reached
  // the core (no token, bad token, wrong role: call.refused, naming `rpc`
  // and the refusal's code), and a connection refused at accept
  // (connection.refused: PERMISSION_DENIED, `peer` and why in `detail`).
  bool RefusedCall(const std::string& caller, std::string role,
                   std::string peer, absl::string_view rpc,
                   const absl::Status& refusal);
  bool RefusedConnection(const std::string& caller, std::string peer,
                         std::string detail);

  // Queues every pending summary and waits until the queue is written.
  void Flush();

  struct Counts {
    int64_t queued = 0;      // Events and summaries queued.
    int64_t summarized = 0;  // Refusals folded into summaries.
    int64_t dropped = 0;     // Events dropped on a full queue.
  };
  Counts counts() const;

 private:
  struct Window {
    absl::Time start;
    int recorded = 0;
    int64_t suppressed = 0;
  };

  void WriterLoop();
  // Queues the summaries of windows that ended (every window with `all`).
  void SummarizeEnded(absl::Time now, bool all)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Summarize(const std::string& caller, const Window& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Enqueue(AuditRecord event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AuditLog* const log_;
  const Clock clock_;
  const RefusalAuditPolicy policy_;

  mutable absl::Mutex mu_;
  // Each recent caller's current interval.
  std::map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
  // Events to write, oldest first; at most policy_.queue_limit.
  std::deque<AuditRecord> queue_ ABSL_GUARDED_BY(mu_);
  // Dropped events not reported in the log yet.
  int64_t dropped_unreported_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Counts counts_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_REFUSAL_AUDIT_H_
