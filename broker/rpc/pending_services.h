// credbroker.v1.CredentialBroker and ApprovalService as served before the
// approval flow exists: each RPC checks the caller's role, then answers
// UNIMPLEMENTED, so clients see the final API and role rules already.
#ifndef CREDBROKER_BROKER_RPC_PENDING_SERVICES_H_
#define CREDBROKER_BROKER_RPC_PENDING_SERVICES_H_

#include "broker/rpc/unary.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"

namespace credbroker {

class PendingBrokerService final : public v1::CredentialBroker::CallbackService {
 public:
  explicit PendingBrokerService(RpcEnv env) : env_(env) {}
  grpc::ServerBidiReactor<v1::SessionRequest, v1::NeedUpdate>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::NeedUpdate>* RequestCredential(
      grpc::CallbackServerContext* context,
      const v1::RequestCredentialRequest* request) override;
  grpc::ServerUnaryReactor* ReleaseGrant(grpc::CallbackServerContext* context,
                                         const v1::ReleaseGrantRequest* request,
                                         v1::ReleaseGrantResponse* response) override;

 private:
  RpcEnv env_;
};

class PendingApprovalService final : public v1::ApprovalService::CallbackService {
 public:
  explicit PendingApprovalService(RpcEnv env) : env_(env) {}
  grpc::ServerWriteReactor<v1::ApprovalEvent>* WatchRequests(
      grpc::CallbackServerContext* context,
      const v1::WatchRequestsRequest* request) override;
  grpc::ServerUnaryReactor* GetCredentialForm(
      grpc::CallbackServerContext* context,
      const v1::GetCredentialFormRequest* request,
      v1::CredentialForm* response) override;
  grpc::ServerUnaryReactor* Approve(grpc::CallbackServerContext* context,
                                    const v1::ApproveRequest* request,
                                    v1::ApproveResponse* response) override;
  grpc::ServerUnaryReactor* Deny(grpc::CallbackServerContext* context,
                                 const v1::DenyRequest* request,
                                 v1::DenyResponse* response) override;

 private:
  RpcEnv env_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_PENDING_SERVICES_H_
