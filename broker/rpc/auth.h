// Bearer-token authentication and role checks for every credbroker RPC.
// Immutable after construction; thread-safe.
#ifndef CREDBROKER_BROKER_RPC_AUTH_H_
#define CREDBROKER_BROKER_RPC_AUTH_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace credbroker {

enum class Role { kAgent, kApprover };
absl::string_view RoleName(Role role);

class Authenticator {
 public:
  Authenticator(std::string agent_token, std::string approver_token);
  ~Authenticator();

  // The role of the token in `authorization: Bearer <token>`.
  // UNAUTHENTICATED when the header is missing, malformed or names no token
  // (the message never says which).
  absl::StatusOr<Role> Authenticate(const grpc::ServerContextBase& context) const;

  // OK when the caller's token has `role`; PERMISSION_DENIED when it has the
  // other one; UNAUTHENTICATED as above. `rpc` names the method in messages.
  absl::Status Require(const grpc::ServerContextBase& context, Role role,
                       absl::string_view rpc) const;

 private:
  std::string agent_token_;
  std::string approver_token_;
};

struct AuthThrottlePolicy {
  // Bad tokens a caller may present before it is made to wait.
  int free_failures = 5;
  // The first wait; it doubles with each further bad token, up to the max.
  absl::Duration first_delay = absl::Seconds(1);
  absl::Duration max_delay = absl::Minutes(5);
  // A caller with no bad token for this long starts afresh.
  absl::Duration forget_after = absl::Minutes(15);
  // Callers tracked at once; the stalest are forgotten first.
  size_t max_tracked = 4096;
};

// Backoff on failed authentication, per caller key (a process for Unix
// connections, an IP address for TCP). While a caller is locked out every
// call of it is answered RESOURCE_EXHAUSTED, whatever token it presents, so
// that the answer never tells whether a guess was right. Non-blocking (one
// mutex, no I/O): safe on gRPC reactor threads. Thread-safe.
class AuthThrottle {
 public:
  using Clock = std::function<absl::Time()>;
  explicit AuthThrottle(Clock clock, AuthThrottlePolicy policy = AuthThrottlePolicy());

  // OK, or RESOURCE_EXHAUSTED "try again in N s" while `key` is locked out.
  absl::Status Check(const std::string& key);
  // A bad token from `key`: past the free failures, locks it out.
  void RecordFailure(const std::string& key);
  // No caller has a recent bad token, so Check would pass for any key: the
  // callers then need not build one.
  bool Idle() const { return tracked_.load(std::memory_order_acquire) == 0; }

 private:
  struct Entry {
    int failures = 0;
    absl::Time last_failure;
    absl::Time locked_until = absl::InfinitePast();
  };
  void Evict(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock clock_;
  const AuthThrottlePolicy policy_;
  absl::Mutex mu_;
  // Callers with recent bad tokens.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // entries_.size(), for Idle without the lock.
  std::atomic<size_t> tracked_{0};
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_AUTH_H_
