// The gRPC adapter for credbroker.v1.CredentialService: authorizes the
// approver, converts messages, calls CredentialManager on the executor.
#ifndef CREDBROKER_BROKER_RPC_CREDENTIAL_SERVICE_H_
#define CREDBROKER_BROKER_RPC_CREDENTIAL_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <memory>
#include <string>

#include "broker/common/executor.h"
#include "broker/core/credentials.h"
#include "broker/core/requests.h"
#include "broker/rpc/answer_cache.h"
#include "broker/rpc/arena_allocator.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/unary.h"
#include "credbroker/v1/credential_service.grpc.pb.h"

namespace credbroker {

// GetCredential and ValidateCredential are served raw (their answers'
// bytes are kept, see answers_); every other method, typed.
// Those two never wait for a disk write (they read through the store's read
// connections, which a writer syncing to disk does not hold up, and write
// no audit event), so they answer on the gRPC thread that received the call
// instead of hopping to the executor and back, about a third of a
// GetCredential's latency at one caller (docs/BENCHMARKS.md). Anything that
// writes uses RunUnary.
using CredentialServiceBase =
    v1::CredentialService::WithRawCallbackMethod_GetCredential<
        v1::CredentialService::WithRawCallbackMethod_ValidateCredential<
            v1::CredentialService::CallbackService>>;

class CredentialServiceImpl final : public CredentialServiceBase {
 public:
  // `credentials` and everything in `env` must outlive the service.
  CredentialServiceImpl(CredentialManager* credentials,
                        RequestManager* requests, RpcEnv env)
      : credentials_(credentials), requests_(requests), env_(env) {
    SetMessageAllocatorFor_ListCredentials(&list_allocator_);
  }

  grpc::ServerUnaryReactor* ListProviders(
      grpc::CallbackServerContext* context,
      const v1::ListProvidersRequest* request,
      v1::ListProvidersResponse* response) override;
  grpc::ServerUnaryReactor* ListCredentials(
      grpc::CallbackServerContext* context,
      const v1::ListCredentialsRequest* request,
      v1::ListCredentialsResponse* response) override;
  // credbroker.v1.GetCredentialRequest in, credbroker.v1.CredentialSummary
  // out, as the .proto says; the bytes are handled here.
  grpc::ServerUnaryReactor* GetCredential(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* PutCredential(
      grpc::CallbackServerContext* context,
      const v1::PutCredentialRequest* request,
      v1::PutCredentialResponse* response) override;
  grpc::ServerUnaryReactor* DeleteCredential(
      grpc::CallbackServerContext* context,
      const v1::DeleteCredentialRequest* request,
      v1::DeleteCredentialResponse* response) override;
  // credbroker.v1.ValidateCredentialRequest in, ValidateCredentialResponse
  // out.
  grpc::ServerUnaryReactor* ValidateCredential(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ResolveRequirements(
      grpc::CallbackServerContext* context,
      const v1::ResolveRequirementsRequest* request,
      v1::ResolveRequirementsResponse* response) override;
  grpc::ServerUnaryReactor* ListGrants(
      grpc::CallbackServerContext* context,
      const v1::ListGrantsRequest* request,
      v1::ListGrantsResponse* response) override;
  grpc::ServerUnaryReactor* RevokeGrant(
      grpc::CallbackServerContext* context,
      const v1::RevokeGrantRequest* request,
      v1::RevokeGrantResponse* response) override;
  grpc::ServerUnaryReactor* ListAuditEvents(
      grpc::CallbackServerContext* context,
      const v1::ListAuditEventsRequest* request,
      v1::ListAuditEventsResponse* response) override;
  grpc::ServerUnaryReactor* ListStandingApprovals(
      grpc::CallbackServerContext* context,
      const v1::ListStandingApprovalsRequest* request,
      v1::ListStandingApprovalsResponse* response) override;
  grpc::ServerUnaryReactor* RevokeStandingApproval(
      grpc::CallbackServerContext* context,
      const v1::RevokeStandingApprovalRequest* request,
      v1::RevokeStandingApprovalResponse* response) override;

  grpc::ServerUnaryReactor* ListCredentialVersions(
      grpc::CallbackServerContext* context,
      const v1::ListCredentialVersionsRequest* request,
      v1::ListCredentialVersionsResponse* response) override;
  grpc::ServerUnaryReactor* RollbackCredential(
      grpc::CallbackServerContext* context,
      const v1::RollbackCredentialRequest* request,
      v1::RollbackCredentialResponse* response) override;
  grpc::ServerUnaryReactor* SetDefaultProfile(
      grpc::CallbackServerContext* context,
      const v1::SetDefaultProfileRequest* request,
      v1::SetDefaultProfileResponse* response) override;
  grpc::ServerUnaryReactor* ListBindings(
      grpc::CallbackServerContext* context,
      const v1::ListBindingsRequest* request,
      v1::ListBindingsResponse* response) override;

  // The approval PIN and audit verification (security_rpcs.cc).
  grpc::ServerUnaryReactor* SetApprovalPin(
      grpc::CallbackServerContext* context,
      const v1::SetApprovalPinRequest* request,
      v1::SetApprovalPinResponse* response) override;
  grpc::ServerUnaryReactor* GetApprovalPinStatus(
      grpc::CallbackServerContext* context,
      const v1::GetApprovalPinStatusRequest* request,
      v1::ApprovalPinStatus* response) override;
  grpc::ServerUnaryReactor* VerifyAuditLog(
      grpc::CallbackServerContext* context,
      const v1::VerifyAuditLogRequest* request,
      v1::VerifyAuditLogResponse* response) override;

  // Passkeys (passkey_rpcs.cc).
  grpc::ServerUnaryReactor* BeginPasskeyRegistration(
      grpc::CallbackServerContext* context,
      const v1::BeginPasskeyRegistrationRequest* request,
      v1::PasskeyChallenge* response) override;
  grpc::ServerUnaryReactor* FinishPasskeyRegistration(
      grpc::CallbackServerContext* context,
      const v1::FinishPasskeyRegistrationRequest* request,
      v1::Passkey* response) override;
  grpc::ServerUnaryReactor* ListPasskeys(
      grpc::CallbackServerContext* context,
      const v1::ListPasskeysRequest* request,
      v1::ListPasskeysResponse* response) override;
  grpc::ServerUnaryReactor* RemovePasskey(
      grpc::CallbackServerContext* context,
      const v1::RemovePasskeyRequest* request,
      v1::RemovePasskeyResponse* response) override;

 private:
  CredentialManager* credentials_;
  RequestManager* requests_;
  RpcEnv env_;
  // The serialized answers to GetCredential and to ValidateCredential of
  // what is stored: sent from answers_ while they hold, else read from the
  // CredentialManager, serialized and kept there (one path: KeptAnswer).
  absl::StatusOr<grpc::Slice> GetCredentialAnswer(
      const v1::GetCredentialRequest& req);
  absl::StatusOr<grpc::Slice> StoredValidationAnswer(
      const v1::ValidateCredentialRequest& req);
  AnswerCache answers_;
  // A page of 100 summaries is about 19 KB on the wire.
  ResponseArenaAllocator<v1::ListCredentialsRequest,
                         v1::ListCredentialsResponse, 32 * 1024>
      list_allocator_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_CREDENTIAL_SERVICE_H_
