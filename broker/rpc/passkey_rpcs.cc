// The passkey RPCs: CredentialService's registration, list and removal, and
// ApprovalService's challenge for approving a request with a passkey. They
// run on the executor (the PIN's Argon2id and SQLite writes block).
#include <string>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/credential_service.h"
#include "broker/rpc/flow_services.h"
#include "common/secret.h"

namespace credbroker {
namespace {

absl::Status NoPasskeys() {
  return absl::FailedPreconditionError("this broker has no passkey support");
}

void ChallengeToProto(const PasskeyChallenge& in, const RelyingParty& rp,
                      v1::PasskeyChallenge* out) {
  out->set_challenge(in.challenge);
  out->set_rp_id(in.rp_id);
  out->set_user_handle(in.user_handle);
  for (const std::string& id : in.credential_ids) out->add_credential_ids(id);
  ToProto(in.expires, out->mutable_expires());
  for (const std::string& o : rp.origins) out->add_origins(o);
  out->set_user_verification_required(rp.require_user_verification);
}

void PasskeyToProto(const PasskeyInfo& in, v1::Passkey* out) {
  out->set_id(in.id);
  out->set_name(in.name);
  out->set_algorithm(in.algorithm);
  out->set_sign_count(in.sign_count);
  ToProto(in.created, out->mutable_created());
  if (in.last_used != absl::InfinitePast())
    ToProto(in.last_used, out->mutable_last_used());
}

}  // namespace

// The purpose a passkey challenge for approving `request_id` is issued for.
std::string ApprovePurpose(absl::string_view request_id) {
  return absl::StrCat("Approve ", request_id);
}

grpc::ServerUnaryReactor* CredentialServiceImpl::BeginPasskeyRegistration(
    grpc::CallbackServerContext* context,
    const v1::BeginPasskeyRegistrationRequest* request,
    v1::PasskeyChallenge* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(context, request, response, env_, Role::kApprover,
                  "BeginPasskeyRegistration",
                  [this, caller](const v1::BeginPasskeyRegistrationRequest&,
                                 v1::PasskeyChallenge& resp) -> absl::Status {
                    if (env_.passkeys == nullptr) return NoPasskeys();
                    CB_ASSIGN_OR_RETURN(
                        PasskeyChallenge c,
                        env_.passkeys->BeginRegistration(caller));
                    ChallengeToProto(c, env_.passkeys->relying_party(), &resp);
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::FinishPasskeyRegistration(
    grpc::CallbackServerContext* context,
    const v1::FinishPasskeyRegistrationRequest* request,
    v1::Passkey* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover,
      "FinishPasskeyRegistration",
      [this, caller](const v1::FinishPasskeyRegistrationRequest& req,
                     v1::Passkey& resp) -> absl::Status {
        if (env_.passkeys == nullptr) return NoPasskeys();
        auto& mutable_req =
            const_cast<v1::FinishPasskeyRegistrationRequest&>(req);
        SecretBytes pin = SecretBytes::TakeFrom(*mutable_req.mutable_pin());
        CB_ASSIGN_OR_RETURN(PasskeyInfo info,
                            env_.passkeys->FinishRegistration(
                                pin, req.name(), req.client_data_json(),
                                req.attestation_object(), caller));
        PasskeyToProto(info, &resp);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListPasskeys(
    grpc::CallbackServerContext* context,
    const v1::ListPasskeysRequest* request,
    v1::ListPasskeysResponse* response) {
  return RunUnary(context, request, response, env_, Role::kApprover,
                  "ListPasskeys",
                  [this](const v1::ListPasskeysRequest&,
                         v1::ListPasskeysResponse& resp) -> absl::Status {
                    if (env_.passkeys == nullptr) return absl::OkStatus();
                    CB_ASSIGN_OR_RETURN(std::vector<PasskeyInfo> list,
                                        env_.passkeys->List());
                    for (const PasskeyInfo& p : list)
                      PasskeyToProto(p, resp.add_passkeys());
                    resp.set_required(env_.passkeys->required());
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::RemovePasskey(
    grpc::CallbackServerContext* context,
    const v1::RemovePasskeyRequest* request,
    v1::RemovePasskeyResponse* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover, "RemovePasskey",
      [this, caller](const v1::RemovePasskeyRequest& req,
                     v1::RemovePasskeyResponse&) -> absl::Status {
        if (env_.passkeys == nullptr) return NoPasskeys();
        if (req.all() == !req.id().empty()) {
          return absl::InvalidArgumentError(
              "name one passkey (id) or set all, not both");
        }
        auto& mutable_req = const_cast<v1::RemovePasskeyRequest&>(req);
        SecretBytes pin = SecretBytes::TakeFrom(*mutable_req.mutable_pin());
        return env_.passkeys->Remove(req.id(), pin, caller);
      });
}

grpc::ServerUnaryReactor* ApprovalServiceImpl::BeginPasskeyAssertion(
    grpc::CallbackServerContext* context,
    const v1::BeginPasskeyAssertionRequest* request,
    v1::PasskeyChallenge* response) {
  Caller caller = CallerOf(env_, *context, "approver");
  return RunUnary(
      context, request, response, env_, Role::kApprover,
      "BeginPasskeyAssertion",
      [this, caller](const v1::BeginPasskeyAssertionRequest& req,
                     v1::PasskeyChallenge& resp) -> absl::Status {
        if (env_.passkeys == nullptr) return NoPasskeys();
        if (req.request_id().empty()) {
          return absl::InvalidArgumentError("name the request (request_id)");
        }
        CB_ASSIGN_OR_RETURN(PasskeyChallenge c,
                            env_.passkeys->BeginAssertion(
                                ApprovePurpose(req.request_id()), caller));
        ChallengeToProto(c, env_.passkeys->relying_party(), &resp);
        return absl::OkStatus();
      });
}

}  // namespace credbroker
