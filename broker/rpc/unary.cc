#include "broker/rpc/unary.h"

#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

namespace {

// The throttle's key: the process for a connection the broker accepted
// (pid and start time), else the gRPC peer address without its port.
std::string ThrottleKey(const RpcEnv& env, const grpc::ServerContextBase& context) {
  Caller caller = CallerOf(env, context, "");
  if (caller.pid != 0) return absl::StrCat("pid:", caller.pid, ":", caller.start_time);
  std::string peer = context.peer();
  size_t colon = peer.rfind(':');
  if (colon != std::string::npos && colon > peer.find(':')) peer.resize(colon);
  return peer;
}

// Whether the call carries `authorization: Bearer <something>`: a guess,
// when it is wrong (a missing or malformed header is a misconfiguration).
bool PresentsBearerToken(const grpc::ServerContextBase& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return false;
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "bearer ";
  return value.size() > kBearer.size() &&
         absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer) &&
         !absl::StripAsciiWhitespace(value.substr(kBearer.size())).empty();
}

// The role check behind the bad-token throttle (see Authorize).
absl::Status CheckCaller(const RpcEnv& env, const grpc::ServerContextBase& context, Role role,
                         absl::string_view rpc) {
  if (env.throttle == nullptr) return env.auth->Require(context, role, rpc);
  // The key (which looks the caller's process up) is built only when the
  // throttle tracks someone or this token is refused.
  std::optional<std::string> key;
  if (!env.throttle->Idle()) {
    key = ThrottleKey(env, context);
    if (absl::Status locked = env.throttle->Check(*key); !locked.ok()) return locked;
  }
  absl::Status allowed = env.auth->Require(context, role, rpc);
  // A good token does not wipe the count (a caller holding one token could
  // otherwise interleave it with guesses of the other): failures are
  // forgotten only after a quiet period.
  if (absl::IsUnauthenticated(allowed) && PresentsBearerToken(context)) {
    if (!key.has_value()) key = ThrottleKey(env, context);
    env.throttle->RecordFailure(*key);
  }
  return allowed;
}

}  // namespace

absl::Status Authorize(const RpcEnv& env, const grpc::ServerContextBase& context,
                       Role role, absl::string_view rpc) {
  absl::Status allowed = CheckCaller(env, context, role, rpc);
  if (allowed.ok() && env.key_use != nullptr) env.key_use->Touch();
  return allowed;
}

bool AuthorizeUnary(const RpcEnv& env, grpc::CallbackServerContext* context,
                    grpc::ServerUnaryReactor* reactor, Role role, absl::string_view rpc) {
  absl::Status allowed = Authorize(env, *context, role, rpc);
  if (allowed.ok()) return true;
  AuditRefusal(env, *context, rpc, allowed);
  reactor->Finish(ToGrpcStatus(allowed));
  return false;
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

AuditRecord CallAuditEvent(const RpcEnv& env, const grpc::ServerContextBase& context,
                           Role role, const absl::Status& outcome, AuditRecord event) {
  event.role = std::string(RoleName(role));
  event.peer = CallerOf(env, context, event.role).peer;
  event.outcome = outcome.ok() ? "ok" : absl::StatusCodeToString(outcome.code());
  return event;
}

void AuditCall(const RpcEnv& env, const grpc::ServerContextBase& context,
               Role role, const absl::Status& outcome, AuditRecord event) {
  if (env.audit == nullptr) return;
  Write(env, CallAuditEvent(env, context, role, outcome, std::move(event)));
}

}  // namespace credbroker
