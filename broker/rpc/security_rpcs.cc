// CredentialService's security RPCs: the approval PIN and audit-chain
// verification. Both run on the executor (Argon2id and a full scan of the
// audit table are blocking work).
#include <string>

#include "absl/time/clock.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/credential_service.h"
#include "common/secret.h"

namespace credbroker {

grpc::ServerUnaryReactor* CredentialServiceImpl::SetApprovalPin(
    grpc::CallbackServerContext* context,
    const v1::SetApprovalPinRequest* request,
    v1::SetApprovalPinResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "SetApprovalPin",
      [this, caller](const v1::SetApprovalPinRequest& req,
                     v1::SetApprovalPinResponse& resp) -> absl::Status {
        if (env_.pin == nullptr) {
          return absl::FailedPreconditionError(
              "this broker has no approval PIN support");
        }
        auto& mutable_req = const_cast<v1::SetApprovalPinRequest&>(req);
        SecretBytes current =
            SecretBytes::TakeFrom(*mutable_req.mutable_current_pin());
        SecretBytes next =
            SecretBytes::TakeFrom(*mutable_req.mutable_new_pin());
        SecretBytes passphrase =
            SecretBytes::TakeFrom(*mutable_req.mutable_store_passphrase());
        CB_RETURN_IF_ERROR(env_.pin->Set(current, next, passphrase, caller));
        resp.set_pin_set(!next.empty());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::GetApprovalPinStatus(
    grpc::CallbackServerContext* context,
    const v1::GetApprovalPinStatusRequest* request,
    v1::ApprovalPinStatus* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "GetApprovalPinStatus",
      [this, caller](const v1::GetApprovalPinStatusRequest&,
                     v1::ApprovalPinStatus& resp) -> absl::Status {
        if (env_.pin == nullptr) return absl::OkStatus();
        PinStatus s = env_.pin->Status(caller);
        resp.set_pin_set(s.set);
        resp.set_failed_attempts(s.failed_attempts);
        resp.set_required(s.required);
        resp.set_first_pin_needs_passphrase(s.first_pin_needs_passphrase);
        const absl::Time now = absl::Now();
        if (s.locked_until > now) {
          ToProto(s.locked_until, resp.mutable_locked_until());
        }
        if (s.window_until > now) {
          ToProto(s.window_until, resp.mutable_window_until());
        }
        ToProto(s.unlock_window, resp.mutable_unlock_window());
        if (env_.passkeys != nullptr) {
          resp.set_passkey_required(env_.passkeys->required());
          absl::StatusOr<std::vector<PasskeyInfo>> list = env_.passkeys->List();
          if (list.ok()) resp.set_passkeys(static_cast<int32_t>(list->size()));
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::VerifyAuditLog(
    grpc::CallbackServerContext* context,
    const v1::VerifyAuditLogRequest* request,
    v1::VerifyAuditLogResponse* response) {
  return RunUnary(context, request, response, env_, Role::kApprover,
                  "VerifyAuditLog",
                  [this](const v1::VerifyAuditLogRequest&,
                         v1::VerifyAuditLogResponse& resp) -> absl::Status {
                    CB_ASSIGN_OR_RETURN(AuditLog::Verification v,
                                        env_.audit->VerifyChain());
                    resp.set_intact(v.intact());
                    resp.set_events_checked(v.events_checked);
                    resp.set_broken_at_sequence(v.broken_at_sequence);
                    resp.set_problem(v.problem);
                    return absl::OkStatus();
                  });
}

}  // namespace credbroker
