#include "broker/rpc/unary.h"

#include <iostream>

#include "absl/strings/str_cat.h"

namespace credbroker {
namespace {

void Write(const RpcEnv& env, AuditRecord event) {
  absl::Status s = env.audit->Record(std::move(event));
  if (!s.ok()) {
    std::cerr << "credbrokerd: could not write an audit event: " << s.message()
              << "\n";
  }
}

}  // namespace

Caller CallerOf(const RpcEnv& env, const grpc::ServerContextBase& context,
                absl::string_view role) {
  if (env.peers != nullptr) return env.peers->Resolve(context, std::string(role));
  Caller caller;
  caller.role = std::string(role);
  caller.peer = context.peer();
  return caller;
}

void AuditRefusal(const RpcEnv& env, const grpc::ServerContextBase& context,
                  absl::string_view rpc, const absl::Status& refusal) {
  if (env.audit == nullptr) return;
  AuditRecord event;
  event.kind = "call.refused";
  absl::StatusOr<Role> presented = env.auth->Authenticate(context);
  event.role = presented.ok() ? std::string(RoleName(*presented)) : "";
  event.peer = CallerOf(env, context, event.role).peer;
  event.action = std::string(rpc);
  event.outcome = absl::StatusCodeToString(refusal.code());
  env.executor->Schedule([env, event = std::move(event)]() mutable {
    Write(env, std::move(event));
  });
}

void AuditCall(const RpcEnv& env, const grpc::ServerContextBase& context,
               Role role, const absl::Status& outcome, AuditRecord event) {
  if (env.audit == nullptr) return;
  event.role = std::string(RoleName(role));
  event.peer = CallerOf(env, context, event.role).peer;
  event.outcome = outcome.ok() ? "ok" : absl::StatusCodeToString(outcome.code());
  Write(env, std::move(event));
}

}  // namespace credbroker
