// Helpers shared by the files that define RequestManager (requests*.cc).
// Not part of the core library's API.
#ifndef CREDBROKER_BROKER_CORE_REQUESTS_INTERNAL_H_
#define CREDBROKER_BROKER_CORE_REQUESTS_INTERNAL_H_

#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/core/requests.h"

namespace credbroker {
namespace requests_internal {

inline constexpr size_t kMaxNeedId = 128;
inline constexpr size_t kMaxAction = 1024;
inline constexpr size_t kMaxContextEntries = 32;
inline constexpr size_t kMaxContextKey = 64;
inline constexpr size_t kMaxContextValue = 1024;
inline constexpr size_t kMaxReason = 1024;

// Released, revoked or expired at `now`.
inline bool GrantEnded(const GrantRecord& g, absl::Time now) {
  return g.ended_at != absl::InfiniteFuture() || g.expires_at <= now;
}

inline constexpr int kAll = std::numeric_limits<int>::max();

inline bool Usable(Readiness r) {
  return r == Readiness::kReady || r == Readiness::kRotationDue;
}

// INVALID_ARGUMENT when a decision's free-text reason is too long.
absl::Status CheckReason(const std::string& reason);

WatchEvent MakeEvent(WatchEventKind kind, RequestView request);

}  // namespace requests_internal

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_REQUESTS_INTERNAL_H_
