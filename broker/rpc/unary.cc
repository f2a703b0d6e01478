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

void AuditRefusal(const RpcEnv& env, const grpc::ServerContextBase& context,
                  absl::string_view rpc, const absl::Status& refusal) {
  if (env.audit == nullptr) return;
  AuditRecord event;
  event.kind = "call.refused";
  absl::StatusOr<Role> presented = env.auth->Authenticate(context);
  event.role = presented.ok() ? std::string(RoleName(*presented)) : "";
  event.peer = context.peer();
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
  event.peer = context.peer();
  event.outcome = outcome.ok() ? "ok" : absl::StatusCodeToString(outcome.code());
  Write(env, std::move(event));
}

}  // namespace credbroker
