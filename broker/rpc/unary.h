// RunUnary: the shape of every unary credbroker handler on the callback API.
// It checks the caller's role on the gRPC thread, then runs `body` on the
// executor (where blocking SQLite and crypto work is allowed) and finishes the
// reactor with its status converted once.
#ifndef CREDBROKER_BROKER_RPC_UNARY_H_
#define CREDBROKER_BROKER_RPC_UNARY_H_

#include <functional>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/common/executor.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/status.h"

namespace credbroker {

template <typename Request, typename Response, typename Body>
grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context,
                                   const Request* request, Response* response,
                                   const Authenticator& auth, Role role,
                                   absl::string_view rpc, Executor& executor,
                                   Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status allowed = auth.Require(*context, role, rpc);
  if (!allowed.ok()) {
    reactor->Finish(ToGrpcStatus(allowed));
    return reactor;
  }
  executor.Schedule([reactor, request, response, body = std::move(body)]() mutable {
    reactor->Finish(ToGrpcStatus(body(*request, *response)));
  });
  return reactor;
}

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_UNARY_H_
