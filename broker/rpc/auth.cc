#include "broker/rpc/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/common/secret.h"
#include "broker/crypto/crypto.h"

namespace credbroker {

absl::string_view RoleName(Role role) {
  return role == Role::kAgent ? "agent" : "approver";
}

Authenticator::Authenticator(std::string agent_token, std::string approver_token)
    : agent_token_(std::move(agent_token)),
      approver_token_(std::move(approver_token)) {}

Authenticator::~Authenticator() {
  WipeString(agent_token_);
  WipeString(approver_token_);
}

absl::StatusOr<Role> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "missing credentials: send the metadata `authorization: Bearer "
        "<token>` with the token from the broker's data directory "
        "(approver.token or agent.token)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "malformed authorization metadata: expected `Bearer <token>`");
  }
  absl::string_view token = absl::StripAsciiWhitespace(value.substr(kBearer.size()));
  // Compare against both tokens every time, in constant time.
  bool is_agent = ConstantTimeEquals(token, agent_token_);
  bool is_approver = ConstantTimeEquals(token, approver_token_);
  if (is_approver) return Role::kApprover;
  if (is_agent) return Role::kAgent;
  return absl::UnauthenticatedError(
      "the bearer token is not valid for this broker: use the contents of "
      "approver.token or agent.token from its data directory");
}

absl::Status Authenticator::Require(const grpc::ServerContextBase& context,
                                    Role role, absl::string_view rpc) const {
  absl::StatusOr<Role> got = Authenticate(context);
  if (!got.ok()) return got.status();
  if (*got != role) {
    return absl::PermissionDeniedError(absl::StrCat(
        rpc, " needs the ", RoleName(role), " token; the caller presented the ",
        RoleName(*got), " token"));
  }
  return absl::OkStatus();
}

}  // namespace credbroker
