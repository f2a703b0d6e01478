// LockService (Unlock, GetLockState, Lock, Rekey): the adapter between the
// RPCs and the daemon's lock state (broker/daemon/lifecycle.h), which gives
// the functions in LockControl. Both the locked and the unlocked broker
// serve it.
#ifndef CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_
#define CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/unary.h"
#include "common/secret.h"
#include "credbroker/v1/lock_service.grpc.pb.h"

namespace credbroker {

// What locked callers are told.
inline constexpr char kLockedMessage[] =
    "the credential store is locked: unlock it in the IDE or with `credctl "
    "unlock` "
    "(the person types the store's passphrase)";

// A Rekey as the daemon carries it out.
struct RekeyArgs {
  SecretBytes current_passphrase;  // Empty for a key-file store.
  bool to_key_file = false;
  SecretBytes new_passphrase;  // When !to_key_file.
};
struct RekeyResult {
  bool key_file = false;  // The store's key is now the key file.
  std::string key_file_path;
  std::string message;  // For the person: how to start the broker now.
};

// The daemon's side of LockService. Every function may block (Argon2id,
// SQLite) and is called on the executor; unset ones answer as below.
struct LockControl {
  // Set while locked: opens the store (PERMISSION_DENIED for a wrong
  // passphrase). Unset: Unlock is a no-op.
  std::function<absl::Status(const SecretBytes& passphrase)> unlock;
  // Set while unlocked: locks (the daemon restarts its listeners). Unset:
  // Lock answers "already locked" when locked, else FAILED_PRECONDITION.
  std::function<absl::Status()> lock;
  // Set while unlocked: changes the store's key protection; the caller is
  // recorded in the audit event. Unset: FAILED_PRECONDITION locked.
  std::function<absl::StatusOr<RekeyResult>(const RekeyArgs& args,
                                            const Caller& caller)>
      rekey;
  // What protects the key now.
  bool key_file = false;
  std::string key_file_path;
  absl::Duration auto_lock_after = absl::ZeroDuration();
  // Counts wrong passphrases (Unlock and Rekey) per user; outlives every
  // server of the daemon. Required.
  AuthThrottle* passphrase_throttle = nullptr;
};

class LockServiceImpl : public v1::LockService::CallbackService {
 public:
  // `locked`: the broker serves locked. Pointers must outlive the service.
  LockServiceImpl(RpcEnv env, LockControl control, bool locked)
      : env_(env), control_(std::move(control)), locked_(locked) {}

  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* context,
                                   const v1::UnlockRequest* request,
                                   v1::UnlockResponse* response) override;
  grpc::ServerUnaryReactor* GetLockState(grpc::CallbackServerContext* context,
                                         const v1::GetLockStateRequest* request,
                                         v1::LockState* response) override;
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* context,
                                 const v1::LockRequest* request,
                                 v1::LockResponse* response) override;
  grpc::ServerUnaryReactor* Rekey(grpc::CallbackServerContext* context,
                                  const v1::RekeyRequest* request,
                                  v1::RekeyResponse* response) override;

 private:
  // The throttle key of a passphrase guesser: its user where the kernel
  // says (a fresh process per guess does not escape), else its address.
  std::string GuesserKey(const grpc::CallbackServerContext& context) const;
  absl::Status DoRekey(v1::RekeyRequest& req, v1::RekeyResponse& resp,
                       const Caller& caller, const std::string& key);

  const RpcEnv env_;
  const LockControl control_;
  const bool locked_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_LOCK_SERVICE_H_
