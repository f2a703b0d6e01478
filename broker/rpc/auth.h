// Bearer-token authentication and role checks for every credbroker RPC.
// Immutable after construction; thread-safe.
#ifndef CREDBROKER_BROKER_RPC_AUTH_H_
#define CREDBROKER_BROKER_RPC_AUTH_H_

#include <string>

#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credbroker {

enum class Role { kAgent, kApprover };
absl::string_view RoleName(Role role);

class Authenticator {
 public:
  Authenticator(std::string agent_token, std::string approver_token);
  ~Authenticator();

  // The role of the token in `authorization: Bearer <token>`.
  // UNAUTHENTICATED when the header is missing, malformed or names no token
  // (the message never says which).
  absl::StatusOr<Role> Authenticate(const grpc::ServerContextBase& context) const;

  // OK when the caller's token has `role`; PERMISSION_DENIED when it has the
  // other one; UNAUTHENTICATED as above. `rpc` names the method in messages.
  absl::Status Require(const grpc::ServerContextBase& context, Role role,
                       absl::string_view rpc) const;

 private:
  std::string agent_token_;
  std::string approver_token_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_AUTH_H_
