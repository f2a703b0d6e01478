// RunUnary: the shape of every unary credbroker handler on the callback API.
// It checks the caller's role on the gRPC thread, then runs `body` on the
// executor (where blocking SQLite and crypto work is allowed) and finishes the
// reactor with its status converted once. A refused call is audited,
// rate-limited per caller.
#ifndef CREDBROKER_BROKER_RPC_UNARY_H_
#define CREDBROKER_BROKER_RPC_UNARY_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/executor.h"
#include "broker/core/approval_pin.h"
#include "broker/core/audit.h"
#include "broker/core/passkeys.h"
#include "broker/core/refusal_audit.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/peer.h"
#include "common/status.h"

namespace credbroker {

// When an authorized call last came in (GetLockState aside), for the
// daemon's auto-lock: "without a call that used the key". Thread-safe.
class KeyUse {
 public:
  void Touch() {
    last_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
  }
  absl::Time last() const {
    return absl::FromUnixNanos(last_.load(std::memory_order_relaxed));
  }

 private:
  std::atomic<int64_t> last_{absl::ToUnixNanos(absl::Now())};
};

// What every service adapter needs; all pointers outlive the services.
struct RpcEnv {
  const Authenticator* auth = nullptr;
  Executor* executor = nullptr;
  AuditLog* audit = nullptr;
  const PeerRegistry* peers = nullptr;  // Optional.
  AuthThrottle* throttle = nullptr;     // Optional: backoff on bad tokens.
  ApprovalPin* pin = nullptr;           // Optional: no approval PIN.
  RefusalAudit* refusals = nullptr;     // Optional: refused calls go unaudited.
  Passkeys* passkeys = nullptr;         // Optional: no passkeys.
  KeyUse* key_use = nullptr;  // Optional: touched by every authorized call.
};

// The role check of every RPC, with the failed-authentication backoff: a
// valid token always passes to the role check (so no one can lock the owner
// out); a presented bearer token that is not valid counts as a failure of
// the caller (its uid on the Unix socket, its IP address over TCP) and is
// answered RESOURCE_EXHAUSTED while that caller is locked out. A missing or
// malformed header is not counted (a misconfiguration, not a guess).
absl::Status Authorize(const RpcEnv& env,
                       const grpc::ServerContextBase& context, Role role,
                       absl::string_view rpc);

// The caller of the current RPC, with the kernel's identity when known.
// Call it when the call arrives, on the gRPC thread, and keep the result for
// the work on the executor: later, the connection's fd number may name
// another connection.
Caller CallerOf(const RpcEnv& env, const grpc::ServerContextBase& context,
                absl::string_view role);

// Records a refused call (no token, bad token, wrong role) through
// env.refusals: rate-limited per caller, never waiting for the store.
void AuditRefusal(const RpcEnv& env, const grpc::ServerContextBase& context,
                  absl::string_view rpc, const absl::Status& refusal);

// Authorize for a unary call; a refusal is audited and finishes `reactor`.
// True when the call may go on.
bool AuthorizeUnary(const RpcEnv& env, grpc::CallbackServerContext* context,
                    grpc::ServerUnaryReactor* reactor, Role role,
                    absl::string_view rpc);

// The reactor of a unary call answered on the executor. The handler writes
// into the request (wiping secrets) and the response there, then finishes;
// gRPC frees both on its own thread right after OnDone. The lock taken on
// each side orders the two for ThreadSanitizer, which cannot see the order
// through gRPC's uninstrumented core.
class ExecutorUnaryReactor : public grpc::ServerUnaryReactor {
 public:
  void FinishAfterWork(const grpc::Status& status) {
    { absl::MutexLock lock(&mu_); }
    Finish(status);
  }
  void OnDone() override {
    { absl::MutexLock lock(&mu_); }
    delete this;
  }

 private:
  absl::Mutex mu_;
};

template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context,
                                   const Request* request, Response* response,
                                   const RpcEnv& env, Role role,
                                   absl::string_view rpc, Body body) {
  auto* reactor = new ExecutorUnaryReactor();
  if (!AuthorizeUnary(env, context, reactor, role, rpc)) return reactor;
  env.executor->Schedule(
      [reactor, request, response, body = std::move(body)]() mutable {
        reactor->FinishAfterWork(ToGrpcStatus(body(*request, *response)));
      });
  return reactor;
}

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_UNARY_H_
