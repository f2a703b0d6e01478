// The locked broker's services: LockService (Unlock, GetLockState) and a
// generic fallback that answers every other method FAILED_PRECONDITION
// "locked", so that clients learn how to unlock instead of UNIMPLEMENTED.
// The unlocked broker serves LockService too (Unlock is then a no-op).
#ifndef CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_
#define CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_

#include <functional>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "broker/common/secret.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/unary.h"
#include "credbroker/v1/lock_service.grpc.pb.h"

namespace credbroker {

// What locked callers are told.
inline constexpr char kLockedMessage[] =
    "the credential store is locked: unlock it in the IDE or with `credctl unlock` "
    "(the person types the store's passphrase)";

class LockServiceImpl : public v1::LockService::CallbackService {
 public:
  // `unlock` opens the store with a passphrase (blocking: Argon2id), or is
  // null when the broker is unlocked. `throttle` counts wrong passphrases
  // per caller. Pointers must outlive the service.
  using UnlockFn = std::function<absl::Status(const SecretBytes& passphrase)>;
  LockServiceImpl(RpcEnv env, UnlockFn unlock, AuthThrottle* throttle)
      : env_(env), unlock_(std::move(unlock)), throttle_(throttle) {}

  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* context,
                                   const v1::UnlockRequest* request,
                                   v1::UnlockResponse* response) override;
  grpc::ServerUnaryReactor* GetLockState(grpc::CallbackServerContext* context,
                                         const v1::GetLockStateRequest* request,
                                         v1::LockState* response) override;

 private:
  const RpcEnv env_;
  const UnlockFn unlock_;
  AuthThrottle* const throttle_;
};

// Answers any method no registered service has: FAILED_PRECONDITION locked.
class LockedFallback : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context)
      override;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_
