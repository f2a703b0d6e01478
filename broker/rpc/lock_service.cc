#include "broker/rpc/lock_service.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/convert.h"
#include "common/errors.h"
#include "common/status.h"

namespace credbroker {

std::string LockServiceImpl::GuesserKey(
    const grpc::CallbackServerContext& context) const {
  // Per user where the kernel says, not per process: an agent that guesses
  // could otherwise start a fresh process for every few guesses. Else per
  // peer address (without the port: not per connection).
  Caller caller = CallerOf(env_, context, "approver");
  if (caller.identified()) return absl::StrCat("uid:", caller.uid);
  return env_.peers != nullptr ? env_.peers->CallerKey(context.peer())
                               : caller.peer;
}

grpc::ServerUnaryReactor* LockServiceImpl::Unlock(
    grpc::CallbackServerContext* context, const v1::UnlockRequest* request,
    v1::UnlockResponse* response) {
  const std::string key = GuesserKey(*context);
  return RunUnary(context, request, response, env_, Role::kApprover, "Unlock",
                  [this, key](const v1::UnlockRequest& req,
                              v1::UnlockResponse& resp) -> absl::Status {
                    auto& mutable_req = const_cast<v1::UnlockRequest&>(req);
                    SecretBytes passphrase =
                        TakeString(mutable_req.mutable_passphrase());
                    if (!control_.unlock) {
                      resp.set_unlocked_now(false);
                      return absl::OkStatus();
                    }
                    AuthThrottle& throttle = *control_.passphrase_throttle;
                    if (absl::Status wait = throttle.Check(key); !wait.ok())
                      return wait;
                    if (passphrase.empty()) {
                      return absl::InvalidArgumentError(
                          "give the store's passphrase (field passphrase)");
                    }
                    absl::Status opened = control_.unlock(passphrase);
                    if (absl::IsPermissionDenied(opened))
                      throttle.RecordFailure(key);
                    if (!opened.ok()) return opened;
                    resp.set_unlocked_now(true);
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* LockServiceImpl::GetLockState(
    grpc::CallbackServerContext* context,
    const v1::GetLockStateRequest* request, v1::LockState* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Asking whether the store is locked does not keep it unlocked.
  RpcEnv env = env_;
  env.key_use = nullptr;
  if (!AuthorizeUnary(env, context, reactor, Role::kApprover, "GetLockState"))
    return reactor;
  response->set_locked(locked_);
  response->set_message(locked_ ? kLockedMessage : "unlocked");
  response->set_key_source(control_.key_file ? v1::KEY_SOURCE_KEY_FILE
                                             : v1::KEY_SOURCE_PASSPHRASE);
  if (control_.key_file) response->set_key_file(control_.key_file_path);
  response->set_auto_lock_after_seconds(
      absl::ToInt64Seconds(control_.auto_lock_after));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* LockServiceImpl::Lock(
    grpc::CallbackServerContext* context, const v1::LockRequest* request,
    v1::LockResponse* response) {
  return RunUnary(
      context, request, response, env_, Role::kApprover, "Lock",
      [this](const v1::LockRequest&, v1::LockResponse& resp) -> absl::Status {
        if (locked_) {
          resp.set_locked_now(false);
          return absl::OkStatus();
        }
        if (!control_.lock) {
          return absl::FailedPreconditionError(
              "this store's key is a key file on disk, so locking it would "
              "protect nothing: move it to a passphrase first with `credctl "
              "rekey --to=passphrase`");
        }
        CB_RETURN_IF_ERROR(control_.lock());
        resp.set_locked_now(true);
        return absl::OkStatus();
      });
}

absl::Status LockServiceImpl::DoRekey(v1::RekeyRequest& req,
                                      v1::RekeyResponse& resp,
                                      const Caller& caller,
                                      const std::string& key) {
  RekeyArgs args;
  args.current_passphrase = TakeString(req.mutable_current_passphrase());
  args.new_passphrase = TakeString(req.mutable_new_passphrase());
  SecretBytes pin = TakeString(req.mutable_pin());
  if (!control_.rekey) return absl::FailedPreconditionError(kLockedMessage);
  if (req.to() == v1::KEY_SOURCE_UNSPECIFIED) {
    return InvalidArgumentWithViolations(
        "say what is to protect the store's key",
        {{"to",
          "KEY_SOURCE_PASSPHRASE (a new passphrase) or KEY_SOURCE_KEY_FILE"}});
  }
  args.to_key_file = req.to() == v1::KEY_SOURCE_KEY_FILE;
  if (!args.to_key_file && args.new_passphrase.empty()) {
    return InvalidArgumentWithViolations(
        "no new passphrase given",
        {{"new_passphrase", "the new passphrase, at least 8 characters"}});
  }
  if (!control_.key_file && args.current_passphrase.empty()) {
    // Missing, not wrong: not counted as a guess.
    return absl::PermissionDeniedError(
        "changing what protects the store's key needs its current passphrase "
        "(field current_passphrase); nothing changed");
  }
  AuthThrottle& throttle = *control_.passphrase_throttle;
  CB_RETURN_IF_ERROR(throttle.Check(key));
  // The human-presence factor: the agent can read the approver token but
  // does not know the PIN.
  if (env_.pin != nullptr)
    CB_RETURN_IF_ERROR(env_.pin->Check(pin, caller, "Rekey"));
  absl::StatusOr<RekeyResult> done = control_.rekey(args, caller);
  if (absl::IsPermissionDenied(done.status())) throttle.RecordFailure(key);
  if (!done.ok()) return done.status();
  resp.set_key_source(done->key_file ? v1::KEY_SOURCE_KEY_FILE
                                     : v1::KEY_SOURCE_PASSPHRASE);
  resp.set_key_file(done->key_file_path);
  resp.set_message(done->message);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* LockServiceImpl::Rekey(
    grpc::CallbackServerContext* context, const v1::RekeyRequest* request,
    v1::RekeyResponse* response) {
  const std::string key = GuesserKey(*context);
  const Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(context, request, response, env_, Role::kApprover, "Rekey",
                  [this, key, caller](const v1::RekeyRequest& req,
                                      v1::RekeyResponse& resp) -> absl::Status {
                    return DoRekey(const_cast<v1::RekeyRequest&>(req), resp,
                                   caller, key);
                  });
}

}  // namespace credbroker
