#include "broker/rpc/unary.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace credbroker {

Caller CallerOf(const RpcEnv& env, const grpc::ServerContextBase& context,
                absl::string_view role) {
  if (env.peers != nullptr)
    return env.peers->Resolve(context, std::string(role));
  Caller caller;
  caller.role = std::string(role);
  caller.peer = context.peer();
  return caller;
}

namespace {

// Who the throttle and the refusal audit count the caller as: its uid for a
// Unix connection, its IP address (no port) over TCP. Cheap: no /proc scan.
std::string CallerKey(const RpcEnv& env,
                      const grpc::ServerContextBase& context) {
  std::string peer = context.peer();
  if (env.peers != nullptr) return env.peers->CallerKey(peer);
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
absl::Status CheckCaller(const RpcEnv& env,
                         const grpc::ServerContextBase& context, Role role,
                         absl::string_view rpc) {
  absl::StatusOr<Role> presented = env.auth->Authenticate(context);
  // A valid token is never throttled: a lockout earned by someone else's
  // guesses must not shut the owner out.
  if (presented.ok()) return Authenticator::RoleAllows(*presented, role, rpc);
  if (env.throttle == nullptr || !PresentsBearerToken(context))
    return presented.status();
  // A good token does not wipe the count (a caller holding one token could
  // otherwise interleave it with guesses of the other): failures are
  // forgotten only after a quiet period.
  const std::string key = CallerKey(env, context);
  if (absl::Status locked = env.throttle->Check(key); !locked.ok())
    return locked;
  env.throttle->RecordFailure(key);
  return presented.status();
}

}  // namespace

absl::Status Authorize(const RpcEnv& env,
                       const grpc::ServerContextBase& context, Role role,
                       absl::string_view rpc) {
  absl::Status allowed = CheckCaller(env, context, role, rpc);
  if (allowed.ok() && env.key_use != nullptr) env.key_use->Touch();
  return allowed;
}

bool AuthorizeUnary(const RpcEnv& env, grpc::CallbackServerContext* context,
                    grpc::ServerUnaryReactor* reactor, Role role,
                    absl::string_view rpc) {
  absl::Status allowed = Authorize(env, *context, role, rpc);
  if (allowed.ok()) return true;
  AuditRefusal(env, *context, rpc, allowed);
  reactor->Finish(ToGrpcStatus(allowed));
  return false;
}

void AuditRefusal(const RpcEnv& env, const grpc::ServerContextBase& context,
                  absl::string_view rpc, const absl::Status& refusal) {
  if (env.refusals == nullptr) return;
  absl::StatusOr<Role> presented = env.auth->Authenticate(context);
  std::string role = presented.ok() ? std::string(RoleName(*presented)) : "";
  // No /proc scan for a TCP caller here: a storm of refusals stays cheap.
  std::string peer =
      env.peers != nullptr
          ? env.peers->Resolve(context, role, PeerLookup::kNoTcpScan).peer
          : context.peer();
  env.refusals->RefusedCall(CallerKey(env, context), std::move(role),
                            std::move(peer), rpc, refusal);
}

}  // namespace credbroker
