// WatcherRegistry holds the approvers' watchers of RequestManager and the
// order they hear events in. A change reserves its place in that order
// (Reserve) under the manager's lock, where the change is made; its events
// are delivered later (Deliver), outside the manager's lock, and no batch is
// delivered before the batches reserved ahead of it. So watchers hear
// changes in the order they were made, while what the delivery needs (the
// stored credentials' readiness) is read without holding up the manager.
//
// Thread-safe. Lock order: RequestManager's lock, then this registry's;
// Reserve, the only call made under the manager's lock, never waits.
// Listeners are called under this registry's lock: they must return
// quickly, must not block and must not call back into the RequestManager
// or the registry.
#ifndef CREDBROKER_BROKER_CORE_WATCHERS_H_
#define CREDBROKER_BROKER_CORE_WATCHERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace credbroker {

struct WatchEvent;

class WatcherRegistry {
 public:
  using Listener = std::function<void(const WatchEvent&)>;
  // A place in the order of delivery.
  using Ticket = uint64_t;

  // The next place. Every ticket must be used exactly once, by Deliver or
  // Add, or the batches after it are never delivered.
  Ticket Reserve();
  // Waits until every earlier ticket was used, then gives `events` to every
  // watcher, in order.
  void Deliver(Ticket ticket, const std::vector<WatchEvent>& events);
  // At `ticket`'s turn (see Deliver), gives `snapshot` to `listener` and
  // adds it: it hears every batch of a later ticket. Returns its id.
  int64_t Add(Ticket ticket, Listener listener,
              const std::vector<WatchEvent>& snapshot);
  // The listener is never called again once Remove returns.
  void Remove(int64_t id);

 private:
  // Waits for `ticket`'s turn.
  void AwaitTurn(Ticket ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  Ticket turn_ ABSL_GUARDED_BY(mu_) = 0;  // The ticket delivered next.
  std::map<int64_t, Listener> listeners_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_WATCHERS_H_
