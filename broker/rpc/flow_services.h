// gRPC adapters for the approval flow: credbroker.v1.CredentialBroker (the
// agent's side) and credbroker.v1.ApprovalService (the approver's side).
// Streams are callback reactors whose blocking work runs on the executor;
// each stream writes through a bounded Outbox.
#ifndef CREDBROKER_BROKER_RPC_FLOW_SERVICES_H_
#define CREDBROKER_BROKER_RPC_FLOW_SERVICES_H_

#include "broker/core/requests.h"
#include "broker/rpc/streams.h"
#include "broker/rpc/unary.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"

namespace credbroker {

// How many messages a stream may have waiting before it is ended.
inline constexpr size_t kMaxQueuedPerStream = 256;

// Session and RequestCredential are raw methods (their messages are bytes
// the broker parses and serializes itself, so that invalid UTF-8 is named;
// see broker/rpc/wire.h); ReleaseGrant is typed.
using BrokerServiceBase = v1::CredentialBroker::WithRawCallbackMethod_Session<
    v1::CredentialBroker::WithRawCallbackMethod_RequestCredential<
        v1::CredentialBroker::WithCallbackMethod_ReleaseGrant<
            v1::CredentialBroker::Service>>>;

class BrokerServiceImpl final : public BrokerServiceBase {
 public:
  // All pointers (and everything in `env`) must outlive the service.
  BrokerServiceImpl(RequestManager* requests, RpcEnv env,
                    StreamRegistry* streams)
      : requests_(requests), env_(env), streams_(streams) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Session(
      grpc::CallbackServerContext* context) override;
  // `request` is a RequestCredentialRequest's bytes; invalid UTF-8 in it
  // ends the call INVALID_ARGUMENT naming each field.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* RequestCredential(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ReleaseGrant(
      grpc::CallbackServerContext* context,
      const v1::ReleaseGrantRequest* request,
      v1::ReleaseGrantResponse* response) override;

 private:
  RequestManager* requests_;
  RpcEnv env_;
  StreamRegistry* streams_;
};

// The purpose a passkey challenge for approving `request_id` is issued for
// (Passkeys::BeginAssertion).
std::string ApprovePurpose(absl::string_view request_id);

class ApprovalServiceImpl final : public v1::ApprovalService::CallbackService {
 public:
  ApprovalServiceImpl(RequestManager* requests, RpcEnv env,
                      StreamRegistry* streams)
      : requests_(requests), env_(env), streams_(streams) {}

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
  // In passkey_rpcs.cc.
  grpc::ServerUnaryReactor* BeginPasskeyAssertion(
      grpc::CallbackServerContext* context,
      const v1::BeginPasskeyAssertionRequest* request,
      v1::PasskeyChallenge* response) override;

 private:
  // The human-presence factor of Approve: a passkey's assertion, or the PIN.
  absl::Status CheckFactor(const SecretBytes& pin,
                           const v1::ApproveRequest& req, const Caller& caller);

  RequestManager* requests_;
  RpcEnv env_;
  StreamRegistry* streams_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_FLOW_SERVICES_H_
