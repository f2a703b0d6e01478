// What a locked broker serves besides health, reflection and LockService:
//  - the agent's CredentialBroker: a Session or RequestCredential is
//    accepted, each need answered PENDING_APPROVAL with no request id and
//    the message kLockedNeedMessage, and the stream kept open; the unlock
//    ends it UNAVAILABLE (kUnlockedReconnect) and the agent sends its needs
//    again to the unlocked broker. Nothing is recorded while locked.
//    ReleaseGrant is FAILED_PRECONDITION locked.
//  - the provider catalog, which needs no key: CredentialService.ListProviders
//    and ApprovalService.GetCredentialForm for a provider (no current
//    values; a form for a request is FAILED_PRECONDITION locked);
//  - every other method: FAILED_PRECONDITION naming how to unlock.
// Thread-safe; the registry and everything in `env` must outlive them.
#ifndef CREDBROKER_BROKER_RPC_LOCKED_SERVICES_H_
#define CREDBROKER_BROKER_RPC_LOCKED_SERVICES_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "broker/providers/registry.h"
#include "broker/rpc/flow_services.h"
#include "broker/rpc/streams.h"
#include "broker/rpc/unary.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"

namespace credbroker {

// What an agent's need hears while the store is locked.
inline constexpr char kLockedNeedMessage[] =
    "locked — unlock in the IDE or with `credctl unlock`; the need is sent "
    "again "
    "once the store is unlocked";
// How the unlock ends the locked broker's agent streams (UNAVAILABLE).
// Every restart of the listeners (unlock, lock, rekey) ends streams with a
// message containing "reconnect now", which clients take as the sign to
// reconnect at once (client/agent.cc); a shutdown's message does not.
inline constexpr char kUnlockedReconnect[] =
    "unlocked: reconnect now and send the need again";

// Session and RequestCredential are raw, as in BrokerServiceImpl, so that
// invalid UTF-8 in a need is named here too.
class LockedBrokerService final : public BrokerServiceBase {
 public:
  LockedBrokerService(RpcEnv env, StreamRegistry* streams)
      : env_(env), streams_(streams) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* RequestCredential(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ReleaseGrant(
      grpc::CallbackServerContext* context,
      const v1::ReleaseGrantRequest* request,
      v1::ReleaseGrantResponse* response) override;

 private:
  const RpcEnv env_;
  StreamRegistry* const streams_;
};

// Every method no registered service has: the catalog, else locked.
class LockedFallback final : public grpc::CallbackGenericService {
 public:
  LockedFallback(RpcEnv env, const ProviderRegistry* catalog)
      : env_(env), catalog_(catalog) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const RpcEnv env_;
  const ProviderRegistry* const catalog_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_LOCKED_SERVICES_H_
