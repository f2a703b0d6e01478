#include "broker/core/watchers.h"

#include <utility>

#include "broker/core/requests.h"

namespace credbroker {

WatcherRegistry::Ticket WatcherRegistry::Reserve() {
  absl::MutexLock lock(&mu_);
  return next_ticket_++;
}

void WatcherRegistry::AwaitTurn(Ticket ticket) {
  const auto is_turn = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return turn_ == ticket;
  };
  mu_.Await(absl::Condition(&is_turn));
}

void WatcherRegistry::Deliver(Ticket ticket,
                              const std::vector<WatchEvent>& events) {
  absl::MutexLock lock(&mu_);
  AwaitTurn(ticket);
  for (const WatchEvent& event : events) {
    for (const auto& [id, listener] : listeners_) listener(event);
  }
  ++turn_;
}

int64_t WatcherRegistry::Add(Ticket ticket, Listener listener,
                             const std::vector<WatchEvent>& snapshot) {
  absl::MutexLock lock(&mu_);
  AwaitTurn(ticket);
  for (const WatchEvent& event : snapshot) listener(event);
  const int64_t id = next_id_++;
  listeners_[id] = std::move(listener);
  ++turn_;
  return id;
}

void WatcherRegistry::Remove(int64_t id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

}  // namespace credbroker
