#include "broker/rpc/pending_services.h"

#include "absl/strings/str_cat.h"
#include "broker/rpc/status.h"

namespace credbroker {
namespace {

absl::Status Refusal(const RpcEnv& env, const grpc::ServerContextBase& ctx,
                     Role role, absl::string_view rpc) {
  absl::Status allowed = env.auth->Require(ctx, role, rpc);
  if (!allowed.ok()) {
    AuditRefusal(env, ctx, rpc, allowed);
    return allowed;
  }
  return absl::UnimplementedError(
      absl::StrCat(rpc, " is not served by this build of credbrokerd yet"));
}

// A stream reactor that finishes at once with a fixed status.
template <typename Base>
class FinishedReactor : public Base {
 public:
  explicit FinishedReactor(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerBidiReactor<v1::SessionRequest, v1::NeedUpdate>*
PendingBrokerService::Session(grpc::CallbackServerContext* context) {
  return new FinishedReactor<grpc::ServerBidiReactor<v1::SessionRequest, v1::NeedUpdate>>(
      Refusal(env_, *context, Role::kAgent, "Session"));
}

grpc::ServerWriteReactor<v1::NeedUpdate>* PendingBrokerService::RequestCredential(
    grpc::CallbackServerContext* context, const v1::RequestCredentialRequest*) {
  return new FinishedReactor<grpc::ServerWriteReactor<v1::NeedUpdate>>(
      Refusal(env_, *context, Role::kAgent, "RequestCredential"));
}

grpc::ServerUnaryReactor* PendingBrokerService::ReleaseGrant(
    grpc::CallbackServerContext* context, const v1::ReleaseGrantRequest*,
    v1::ReleaseGrantResponse*) {
  return FinishUnary(context, Refusal(env_, *context, Role::kAgent, "ReleaseGrant"));
}

grpc::ServerWriteReactor<v1::ApprovalEvent>* PendingApprovalService::WatchRequests(
    grpc::CallbackServerContext* context, const v1::WatchRequestsRequest*) {
  return new FinishedReactor<grpc::ServerWriteReactor<v1::ApprovalEvent>>(
      Refusal(env_, *context, Role::kApprover, "WatchRequests"));
}

grpc::ServerUnaryReactor* PendingApprovalService::GetCredentialForm(
    grpc::CallbackServerContext* context, const v1::GetCredentialFormRequest*,
    v1::CredentialForm*) {
  return FinishUnary(context,
                     Refusal(env_, *context, Role::kApprover, "GetCredentialForm"));
}

grpc::ServerUnaryReactor* PendingApprovalService::Approve(
    grpc::CallbackServerContext* context, const v1::ApproveRequest*,
    v1::ApproveResponse*) {
  return FinishUnary(context, Refusal(env_, *context, Role::kApprover, "Approve"));
}

grpc::ServerUnaryReactor* PendingApprovalService::Deny(
    grpc::CallbackServerContext* context, const v1::DenyRequest*, v1::DenyResponse*) {
  return FinishUnary(context, Refusal(env_, *context, Role::kApprover, "Deny"));
}

}  // namespace credbroker
