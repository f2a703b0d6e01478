#include "broker/rpc/credential_service.h"

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/convert.h"
#include "broker/rpc/unary.h"

namespace credbroker {
namespace {

// Secret values arrive in request strings owned by gRPC; the adapter moves
// them into wiped memory and clears the originals.
template <typename Request>
Request& Mutable(const Request& request) {
  return const_cast<Request&>(request);
}

}  // namespace

grpc::ServerUnaryReactor* CredentialServiceImpl::ListProviders(
    grpc::CallbackServerContext* context, const v1::ListProvidersRequest* request,
    v1::ListProvidersResponse* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "ListProviders", *executor_,
                  [this](const v1::ListProvidersRequest&,
                         v1::ListProvidersResponse& resp) {
                    for (const auto& p : credentials_->registry().providers()) {
                      ToProto(p->spec(), resp.add_providers());
                    }
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListCredentials(
    grpc::CallbackServerContext* context, const v1::ListCredentialsRequest* request,
    v1::ListCredentialsResponse* response) {
  return RunUnary(
      context, request, response, *auth_, Role::kApprover, "ListCredentials",
      *executor_,
      [this](const v1::ListCredentialsRequest& req,
             v1::ListCredentialsResponse& resp) -> absl::Status {
        CB_ASSIGN_OR_RETURN(
            ListCredentialsResult result,
            credentials_->List(req.provider(), req.page_size(), req.page_token()));
        for (const auto& c : result.credentials) {
          ToProto(c, resp.add_credentials());
        }
        resp.set_next_page_token(result.next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::GetCredential(
    grpc::CallbackServerContext* context, const v1::GetCredentialRequest* request,
    v1::CredentialSummary* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "GetCredential", *executor_,
                  [this](const v1::GetCredentialRequest& req,
                         v1::CredentialSummary& resp) -> absl::Status {
                    CB_ASSIGN_OR_RETURN(
                        CredentialSummary s,
                        credentials_->Get(req.provider(), req.profile(),
                                          req.version()));
                    ToProto(s, &resp);
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::PutCredential(
    grpc::CallbackServerContext* context, const v1::PutCredentialRequest* request,
    v1::PutCredentialResponse* response) {
  return RunUnary(
      context, request, response, *auth_, Role::kApprover, "PutCredential",
      *executor_,
      [this](const v1::PutCredentialRequest& req,
             v1::PutCredentialResponse& resp) -> absl::Status {
        v1::PutCredentialRequest& m = Mutable(req);
        PutCredentialInput input;
        input.provider = req.provider();
        input.profile = req.profile();
        input.values = TakeValues(m.mutable_values());
        input.file_contents = TakeString(m.mutable_from_file());
        input.keep_existing = req.keep_existing();
        input.generate.assign(req.generate().begin(), req.generate().end());
        if (req.has_rotation_period()) {
          input.rotation_period = FromProto(req.rotation_period());
        }
        CB_ASSIGN_OR_RETURN(PutCredentialResult result,
                            credentials_->Put(std::move(input)));
        ToProto(result.credential, resp.mutable_credential());
        for (const auto& f : result.findings) ToProto(f, resp.add_findings());
        for (const auto& g : result.generated) resp.add_generated(g);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::DeleteCredential(
    grpc::CallbackServerContext* context, const v1::DeleteCredentialRequest* request,
    v1::DeleteCredentialResponse* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "DeleteCredential", *executor_,
                  [this](const v1::DeleteCredentialRequest& req,
                         v1::DeleteCredentialResponse& resp) -> absl::Status {
                    CB_ASSIGN_OR_RETURN(
                        int64_t n, credentials_->Delete(req.provider(), req.profile()));
                    resp.set_versions_deleted(n);
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ValidateCredential(
    grpc::CallbackServerContext* context, const v1::ValidateCredentialRequest* request,
    v1::ValidateCredentialResponse* response) {
  return RunUnary(
      context, request, response, *auth_, Role::kApprover, "ValidateCredential",
      *executor_,
      [this](const v1::ValidateCredentialRequest& req,
             v1::ValidateCredentialResponse& resp) -> absl::Status {
        v1::ValidateCredentialRequest& m = Mutable(req);
        FieldValues values = TakeValues(m.mutable_values());
        SecretBytes file = TakeString(m.mutable_from_file());
        CB_ASSIGN_OR_RETURN(ValidateResult result,
                            credentials_->Validate(req.provider(), req.profile(),
                                                   std::move(values), file));
        resp.set_valid(result.valid);
        resp.set_readiness(ToProto(result.readiness));
        for (const auto& f : result.findings) ToProto(f, resp.add_findings());
        for (const auto& f : result.missing_fields) resp.add_missing_fields(f);
        for (const auto& p : result.required_permissions) {
          resp.add_required_permissions(p);
        }
        for (const auto& f : result.fields) ToProto(f, resp.add_fields());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ResolveRequirements(
    grpc::CallbackServerContext* context,
    const v1::ResolveRequirementsRequest* request,
    v1::ResolveRequirementsResponse* response) {
  return RunUnary(
      context, request, response, *auth_, Role::kApprover, "ResolveRequirements",
      *executor_,
      [this](const v1::ResolveRequirementsRequest& req,
             v1::ResolveRequirementsResponse& resp) -> absl::Status {
        std::vector<std::string> targets(req.targets().begin(), req.targets().end());
        CB_ASSIGN_OR_RETURN(std::vector<Requirement> reqs,
                            credentials_->ResolveRequirements(targets, req.profile()));
        for (const Requirement& r : reqs) {
          v1::Requirement* out = resp.add_requirements();
          out->set_provider(r.provider);
          out->set_profile(r.profile);
          out->set_configured(r.configured);
          out->set_readiness(ToProto(r.readiness));
          for (const auto& f : r.missing_fields) out->add_missing_fields(f);
          for (const auto& p : r.required_permissions) {
            out->add_required_permissions(p);
          }
          out->set_reason(r.reason);
        }
        return absl::OkStatus();
      });
}

// Grants are created by the approval flow (ApprovalService.Approve), which
// this build does not serve yet: there are none to list or revoke.
grpc::ServerUnaryReactor* CredentialServiceImpl::ListGrants(
    grpc::CallbackServerContext* context, const v1::ListGrantsRequest* request,
    v1::ListGrantsResponse* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "ListGrants", *executor_,
                  [](const v1::ListGrantsRequest&, v1::ListGrantsResponse&) {
                    return absl::OkStatus();
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::RevokeGrant(
    grpc::CallbackServerContext* context, const v1::RevokeGrantRequest* request,
    v1::RevokeGrantResponse* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "RevokeGrant", *executor_,
                  [](const v1::RevokeGrantRequest& req, v1::RevokeGrantResponse&) {
                    return absl::NotFoundError(
                        absl::StrCat("no grant with id \"", req.grant_id(), "\""));
                  });
}

grpc::ServerUnaryReactor* CredentialServiceImpl::ListAuditEvents(
    grpc::CallbackServerContext* context, const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  return RunUnary(context, request, response, *auth_, Role::kApprover,
                  "ListAuditEvents", *executor_,
                  [](const v1::ListAuditEventsRequest&,
                     v1::ListAuditEventsResponse&) {
                    return absl::UnimplementedError(
                        "the audit log is not recorded by this build yet");
                  });
}

}  // namespace credbroker
