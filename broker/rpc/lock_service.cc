#include "broker/rpc/lock_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "broker/rpc/status.h"

namespace credbroker {

grpc::ServerUnaryReactor* LockServiceImpl::Unlock(grpc::CallbackServerContext* context,
                                                  const v1::UnlockRequest* request,
                                                  v1::UnlockResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  // Per user where the kernel says, not per process: an agent that guesses
  // could otherwise start a fresh process for every few guesses. Else per
  // peer address (without the port: not per connection).
  const std::string key = caller.identified() ? absl::StrCat("uid:", caller.uid)
                          : env_.peers != nullptr ? env_.peers->CallerKey(context->peer())
                                                  : caller.peer;
  return RunUnary(
      context, request, response, env_, Role::kApprover, "Unlock",
      [this, key](const v1::UnlockRequest& req, v1::UnlockResponse& resp) -> absl::Status {
        auto& mutable_req = const_cast<v1::UnlockRequest&>(req);
        SecretBytes passphrase = SecretBytes::TakeFrom(*mutable_req.mutable_passphrase());
        if (!unlock_) {
          resp.set_unlocked_now(false);
          return absl::OkStatus();
        }
        if (absl::Status wait = throttle_->Check(key); !wait.ok()) return wait;
        if (passphrase.empty()) {
          return absl::InvalidArgumentError("give the store's passphrase (field passphrase)");
        }
        absl::Status opened = unlock_(passphrase);
        if (absl::IsPermissionDenied(opened)) throttle_->RecordFailure(key);
        if (!opened.ok()) return opened;
        resp.set_unlocked_now(true);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* LockServiceImpl::GetLockState(grpc::CallbackServerContext* context,
                                                        const v1::GetLockStateRequest* request,
                                                        v1::LockState* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!AuthorizeUnary(env_, context, reactor, Role::kApprover, "GetLockState")) return reactor;
  response->set_locked(unlock_ != nullptr);
  response->set_message(unlock_ != nullptr ? kLockedMessage : "unlocked");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// Finishes at once: the client's messages are never read.
class LockedReactor : public grpc::ServerGenericBidiReactor {
 public:
  LockedReactor() {
    Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kLockedMessage));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerGenericBidiReactor* LockedFallback::CreateReactor(
    grpc::GenericCallbackServerContext* /*context*/) {
  return new LockedReactor();
}

}  // namespace credbroker
