#include "client/credbroker/client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/internal/channel.h"
#include "client/internal/convert_credential.h"
#include "common/files.h"
#include "common/secret.h"
#include "common/status.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "credbroker/v1/lock_service.grpc.pb.h"

namespace credbroker {
namespace client {

std::string DefaultAddress() {
  return absl::StrCat("unix:", DefaultDataDir(), "/broker.sock");
}

std::string DefaultTokenFile(const std::string& role) {
  return absl::StrCat(DefaultDataDir(), "/", role, ".token");
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (absl::IsNotFound(contents.status())) {
    return absl::NotFoundError(absl::StrCat(
        "token file ", path,
        " not found: start credbrokerd first (it creates the token files in "
        "its data directory), or pass --token_file"));
  }
  if (!contents.ok()) return contents.status();
  return std::string(absl::StripAsciiWhitespace(*contents));
}

struct CredentialClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::CredentialService::Stub> stub;
  std::string authorization;
  absl::Duration timeout;

  void Prepare(grpc::ClientContext& ctx) const {
    ctx.AddMetadata("authorization", authorization);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  }

  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request) const {
    grpc::ClientContext ctx;
    Prepare(ctx);
    Response response;
    grpc::Status status = ((*stub).*method)(&ctx, request, &response);
    if (!status.ok()) return internal::FromCallStatus(status, channel.get());
    return response;
  }
};

CredentialClient::CredentialClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
CredentialClient::~CredentialClient() = default;

absl::StatusOr<std::unique_ptr<CredentialClient>> CredentialClient::Connect(
    const Options& options) {
  auto impl = std::make_unique<Impl>();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      internal::MakeChannel(options);
  if (!channel.ok()) return channel.status();
  impl->channel = std::move(*channel);
  impl->stub = v1::CredentialService::NewStub(impl->channel);
  impl->authorization = absl::StrCat("Bearer ", options.token);
  impl->timeout = options.timeout;
  return std::unique_ptr<CredentialClient>(
      new CredentialClient(std::move(impl)));
}

using Stub = v1::CredentialService::Stub;

namespace {

// A call's answer as the client's plain type, or the call's error.
template <typename Response>
auto Converted(absl::StatusOr<Response> response)
    -> absl::StatusOr<decltype(internal::FromProto(*response))> {
  if (!response.ok()) return response.status();
  return internal::FromProto(*response);
}

}  // namespace

absl::StatusOr<std::vector<ProviderInfo>> CredentialClient::ListProviders() {
  return Converted(
      impl_->Call<v1::ListProvidersRequest, v1::ListProvidersResponse>(
          &Stub::ListProviders, v1::ListProvidersRequest()));
}
absl::StatusOr<CredentialPage> CredentialClient::ListCredentials(
    const ListCredentialsOptions& options) {
  v1::ListCredentialsRequest r;
  internal::ToProto(options, &r);
  return Converted(
      impl_->Call<v1::ListCredentialsRequest, v1::ListCredentialsResponse>(
          &Stub::ListCredentials, r));
}
absl::StatusOr<CredentialSummary> CredentialClient::GetCredential(
    const std::string& provider, const std::string& profile, int64_t version) {
  v1::GetCredentialRequest r;
  r.set_provider(provider);
  r.set_profile(profile);
  r.set_version(version);
  return Converted(impl_->Call<v1::GetCredentialRequest, v1::CredentialSummary>(
      &Stub::GetCredential, r));
}
absl::StatusOr<StoredCredential> CredentialClient::PutCredential(
    const CredentialInput& input) {
  v1::PutCredentialRequest r;
  internal::ToProto(input, &r);
  absl::StatusOr<v1::PutCredentialResponse> response =
      impl_->Call<v1::PutCredentialRequest, v1::PutCredentialResponse>(
          &Stub::PutCredential, r);
  internal::WipeSecrets(&r);
  return Converted(std::move(response));
}
absl::StatusOr<int64_t> CredentialClient::DeleteCredential(
    const std::string& provider, const std::string& profile) {
  v1::DeleteCredentialRequest r;
  r.set_provider(provider);
  r.set_profile(profile);
  absl::StatusOr<v1::DeleteCredentialResponse> response =
      impl_->Call<v1::DeleteCredentialRequest, v1::DeleteCredentialResponse>(
          &Stub::DeleteCredential, r);
  if (!response.ok()) return response.status();
  return response->versions_deleted();
}
absl::StatusOr<Diagnosis> CredentialClient::ValidateCredential(
    const CredentialCandidate& candidate) {
  v1::ValidateCredentialRequest r;
  internal::ToProto(candidate, &r);
  absl::StatusOr<v1::ValidateCredentialResponse> response =
      impl_
          ->Call<v1::ValidateCredentialRequest, v1::ValidateCredentialResponse>(
              &Stub::ValidateCredential, r);
  internal::WipeSecrets(&r);
  return Converted(std::move(response));
}
absl::StatusOr<std::vector<Requirement>> CredentialClient::ResolveRequirements(
    const std::vector<std::string>& targets, const std::string& profile,
    const std::string& resource) {
  v1::ResolveRequirementsRequest r;
  internal::StringsToProto(targets, r.mutable_targets());
  r.set_profile(profile);
  r.set_resource(resource);
  return Converted(impl_->Call<v1::ResolveRequirementsRequest,
                               v1::ResolveRequirementsResponse>(
      &Stub::ResolveRequirements, r));
}
absl::StatusOr<v1::ListGrantsResponse> CredentialClient::ListGrants(
    const v1::ListGrantsRequest& r) {
  return impl_->Call<v1::ListGrantsRequest, v1::ListGrantsResponse>(
      &Stub::ListGrants, r);
}
absl::StatusOr<v1::RevokeGrantResponse> CredentialClient::RevokeGrant(
    const v1::RevokeGrantRequest& r) {
  return impl_->Call<v1::RevokeGrantRequest, v1::RevokeGrantResponse>(
      &Stub::RevokeGrant, r);
}
absl::StatusOr<v1::ListAuditEventsResponse> CredentialClient::ListAuditEvents(
    const v1::ListAuditEventsRequest& r) {
  return impl_->Call<v1::ListAuditEventsRequest, v1::ListAuditEventsResponse>(
      &Stub::ListAuditEvents, r);
}
absl::StatusOr<v1::ListStandingApprovalsResponse>
CredentialClient::ListStandingApprovals(
    const v1::ListStandingApprovalsRequest& r) {
  return impl_->Call<v1::ListStandingApprovalsRequest,
                     v1::ListStandingApprovalsResponse>(
      &Stub::ListStandingApprovals, r);
}
absl::StatusOr<v1::RevokeStandingApprovalResponse>
CredentialClient::RevokeStandingApproval(
    const v1::RevokeStandingApprovalRequest& r) {
  return impl_->Call<v1::RevokeStandingApprovalRequest,
                     v1::RevokeStandingApprovalResponse>(
      &Stub::RevokeStandingApproval, r);
}
absl::StatusOr<CredentialHistory> CredentialClient::ListCredentialVersions(
    const std::string& provider, const std::string& profile) {
  v1::ListCredentialVersionsRequest r;
  r.set_provider(provider);
  r.set_profile(profile);
  return Converted(impl_->Call<v1::ListCredentialVersionsRequest,
                               v1::ListCredentialVersionsResponse>(
      &Stub::ListCredentialVersions, r));
}
absl::StatusOr<RolledBackCredential> CredentialClient::RollbackCredential(
    const std::string& provider, const std::string& profile, int64_t version) {
  v1::RollbackCredentialRequest r;
  r.set_provider(provider);
  r.set_profile(profile);
  r.set_version(version);
  return Converted(
      impl_
          ->Call<v1::RollbackCredentialRequest, v1::RollbackCredentialResponse>(
              &Stub::RollbackCredential, r));
}
absl::StatusOr<DefaultProfileChange> CredentialClient::SetDefaultProfile(
    const std::string& provider, const std::string& profile) {
  v1::SetDefaultProfileRequest r;
  r.set_provider(provider);
  r.set_profile(profile);
  return Converted(
      impl_->Call<v1::SetDefaultProfileRequest, v1::SetDefaultProfileResponse>(
          &Stub::SetDefaultProfile, r));
}
absl::StatusOr<std::vector<ResourceBinding>> CredentialClient::ListBindings(
    const std::string& provider) {
  v1::ListBindingsRequest r;
  r.set_provider(provider);
  return Converted(
      impl_->Call<v1::ListBindingsRequest, v1::ListBindingsResponse>(
          &Stub::ListBindings, r));
}

absl::StatusOr<v1::SetApprovalPinResponse> CredentialClient::SetApprovalPin(
    const v1::SetApprovalPinRequest& r) {
  return impl_->Call<v1::SetApprovalPinRequest, v1::SetApprovalPinResponse>(
      &Stub::SetApprovalPin, r);
}
absl::StatusOr<v1::ApprovalPinStatus> CredentialClient::GetApprovalPinStatus() {
  return impl_->Call<v1::GetApprovalPinStatusRequest, v1::ApprovalPinStatus>(
      &Stub::GetApprovalPinStatus, v1::GetApprovalPinStatusRequest());
}
absl::StatusOr<v1::PasskeyChallenge>
CredentialClient::BeginPasskeyRegistration() {
  return impl_->Call<v1::BeginPasskeyRegistrationRequest, v1::PasskeyChallenge>(
      &Stub::BeginPasskeyRegistration, v1::BeginPasskeyRegistrationRequest());
}
absl::StatusOr<v1::Passkey> CredentialClient::FinishPasskeyRegistration(
    const v1::FinishPasskeyRegistrationRequest& r) {
  return impl_->Call<v1::FinishPasskeyRegistrationRequest, v1::Passkey>(
      &Stub::FinishPasskeyRegistration, r);
}
absl::StatusOr<v1::ListPasskeysResponse> CredentialClient::ListPasskeys() {
  return impl_->Call<v1::ListPasskeysRequest, v1::ListPasskeysResponse>(
      &Stub::ListPasskeys, v1::ListPasskeysRequest());
}
absl::StatusOr<v1::RemovePasskeyResponse> CredentialClient::RemovePasskey(
    const v1::RemovePasskeyRequest& r) {
  return impl_->Call<v1::RemovePasskeyRequest, v1::RemovePasskeyResponse>(
      &Stub::RemovePasskey, r);
}
absl::StatusOr<v1::VerifyAuditLogResponse> CredentialClient::VerifyAuditLog() {
  return impl_->Call<v1::VerifyAuditLogRequest, v1::VerifyAuditLogResponse>(
      &Stub::VerifyAuditLog, v1::VerifyAuditLogRequest());
}

absl::StatusOr<bool> CredentialClient::Unlock(const SecretBytes& passphrase) {
  v1::UnlockRequest request;
  request.set_passphrase(passphrase.Reveal().data(), passphrase.size());
  v1::UnlockResponse response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status = v1::LockService::NewStub(impl_->channel)
                            ->Unlock(&ctx, request, &response);
  WipeString(*request.mutable_passphrase());
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return response.unlocked_now();
}

absl::StatusOr<v1::LockState> CredentialClient::GetLockState() {
  v1::LockState response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status =
      v1::LockService::NewStub(impl_->channel)
          ->GetLockState(&ctx, v1::GetLockStateRequest(), &response);
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return response;
}

absl::StatusOr<bool> CredentialClient::Lock() {
  v1::LockResponse response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status = v1::LockService::NewStub(impl_->channel)
                            ->Lock(&ctx, v1::LockRequest(), &response);
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return response.locked_now();
}

absl::StatusOr<v1::RekeyResponse> CredentialClient::Rekey(
    v1::RekeyRequest& request) {
  v1::RekeyResponse response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status =
      v1::LockService::NewStub(impl_->channel)->Rekey(&ctx, request, &response);
  WipeString(*request.mutable_current_passphrase());
  WipeString(*request.mutable_new_passphrase());
  WipeString(*request.mutable_pin());
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return response;
}

}  // namespace client
}  // namespace credbroker
