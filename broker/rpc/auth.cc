#include "broker/rpc/auth.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/crypto/crypto.h"
#include "common/secret.h"

namespace credbroker {

absl::string_view RoleName(Role role) {
  return role == Role::kAgent ? "agent" : "approver";
}

Authenticator::Authenticator(SecretBytes agent_token,
                             SecretBytes approver_token)
    : agent_token_(std::move(agent_token)),
      approver_token_(std::move(approver_token)) {}

absl::StatusOr<Role> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "missing credentials: send the metadata `authorization: Bearer "
        "<token>` with the token from the broker's data directory "
        "(approver.token or agent.token)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "malformed authorization metadata: expected `Bearer <token>`");
  }
  absl::string_view token =
      absl::StripAsciiWhitespace(value.substr(kBearer.size()));
  // Compare against both tokens every time, in constant time.
  bool is_agent = ConstantTimeEquals(token, agent_token_.Reveal());
  bool is_approver = ConstantTimeEquals(token, approver_token_.Reveal());
  if (is_approver) return Role::kApprover;
  if (is_agent) return Role::kAgent;
  return absl::UnauthenticatedError(
      "the bearer token is not valid for this broker: use the contents of "
      "approver.token or agent.token from its data directory");
}

absl::Status Authenticator::Require(const grpc::ServerContextBase& context,
                                    Role role, absl::string_view rpc) const {
  absl::StatusOr<Role> got = Authenticate(context);
  if (!got.ok()) return got.status();
  return RoleAllows(*got, role, rpc);
}

absl::Status Authenticator::RoleAllows(Role got, Role needed,
                                       absl::string_view rpc) {
  if (got == needed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      rpc, " needs the ", RoleName(needed), " token; the caller presented the ",
      RoleName(got), " token"));
}

AuthThrottle::AuthThrottle(Clock clock, AuthThrottlePolicy policy)
    : clock_(std::move(clock)), policy_(policy) {}

absl::Status AuthThrottle::Check(const std::string& key) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || now >= it->second.locked_until)
    return absl::OkStatus();
  int64_t wait = std::max<int64_t>(
      1, absl::ToInt64Seconds(
             absl::Ceil(it->second.locked_until - now, absl::Seconds(1))));
  return absl::ResourceExhaustedError(absl::StrCat(
      "too many failed authentications from this caller; try again in ", wait,
      " s"));
}

void AuthThrottle::RecordFailure(const std::string& key) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() &&
      now - it->second.last_failure > policy_.forget_after) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    if (entries_.size() >= policy_.max_tracked) Evict(now);
    it = entries_.emplace(key, Entry()).first;
  }
  tracked_.store(entries_.size(), std::memory_order_release);
  Entry& e = it->second;
  ++e.failures;
  e.last_failure = now;
  if (e.failures > policy_.free_failures) {
    int doublings = std::min(e.failures - policy_.free_failures - 1, 30);
    e.locked_until =
        now + std::min(policy_.first_delay * (int64_t{1} << doublings),
                       policy_.max_delay);
  }
}

void AuthThrottle::Evict(absl::Time now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.last_failure > policy_.forget_after &&
        now >= it->second.locked_until) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  // Still full: forget the caller whose last failure is oldest.
  while (entries_.size() >= policy_.max_tracked) {
    auto oldest = std::min_element(
        entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
          return a.second.last_failure < b.second.last_failure;
        });
    entries_.erase(oldest);
  }
}

}  // namespace credbroker
