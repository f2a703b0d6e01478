// Bearer-token authentication and role checks for every credbroker RPC.
// Immutable after construction; thread-safe.
#ifndef CREDBROKER_BROKER_RPC_AUTH_H_
#define CREDBROKER_BROKER_RPC_AUTH_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/secret.h"

namespace credbroker {

enum class Role { kAgent, kApprover };
absl::string_view RoleName(Role role);

class Authenticator {
 public:
  // The tokens are held as secrets (wiped when the authenticator goes).
  Authenticator(SecretBytes agent_token, SecretBytes approver_token);

  // The role of the token in `authorization: Bearer <token>`.
  // UNAUTHENTICATED when the header is missing, malformed or names no token
  // (the message never says which).
  absl::StatusOr<Role> Authenticate(
      const grpc::ServerContextBase& context) const;

  // OK when the caller's token has `role`; PERMISSION_DENIED when it has the
  // other one; UNAUTHENTICATED as above. `rpc` names the method in messages.
  absl::Status Require(const grpc::ServerContextBase& context, Role role,
                       absl::string_view rpc) const;

  // OK when a caller holding the `got` token may call `rpc`, which needs
  // `needed`; else PERMISSION_DENIED naming both.
  static absl::Status RoleAllows(Role got, Role needed, absl::string_view rpc);

 private:
  SecretBytes agent_token_;
  SecretBytes approver_token_;
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

// Backoff on failed authentication, per caller key (a uid for Unix
// connections, an IP address for TCP). It only refuses bad tokens: while a
// caller is locked out its bad tokens are answered RESOURCE_EXHAUSTED, but a
// valid token always passes (its 256 bits are the control), so that another
// process sharing the key cannot lock the owner out. Non-blocking (one
// mutex, no I/O): safe on gRPC reactor threads. Thread-safe.
class AuthThrottle {
 public:
  using Clock = std::function<absl::Time()>;
  explicit AuthThrottle(Clock clock,
                        AuthThrottlePolicy policy = AuthThrottlePolicy());

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
