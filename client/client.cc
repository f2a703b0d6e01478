#include "client/credbroker/client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/internal/channel.h"
#include "client/internal/convert.h"
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
  internal::WipeSecrets(r);
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
  internal::WipeSecrets(r);
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
absl::StatusOr<GrantPage> CredentialClient::ListGrants(
    const GrantQuery& query) {
  return Converted(impl_->Call<v1::ListGrantsRequest, v1::ListGrantsResponse>(
      &Stub::ListGrants, internal::AsProto<v1::ListGrantsRequest>(query)));
}
absl::Status CredentialClient::RevokeGrant(const std::string& grant_id,
                                           const std::string& reason) {
  v1::RevokeGrantRequest request;
  request.set_grant_id(grant_id);
  request.set_reason(reason);
  return impl_
      ->Call<v1::RevokeGrantRequest, v1::RevokeGrantResponse>(
          &Stub::RevokeGrant, request)
      .status();
}
absl::StatusOr<AuditPage> CredentialClient::ListAuditEvents(
    const AuditQuery& query) {
  return Converted(
      impl_->Call<v1::ListAuditEventsRequest, v1::ListAuditEventsResponse>(
          &Stub::ListAuditEvents,
          internal::AsProto<v1::ListAuditEventsRequest>(query)));
}
absl::StatusOr<std::vector<StandingApproval>>
CredentialClient::ListStandingApprovals(bool include_ended) {
  v1::ListStandingApprovalsRequest request;
  request.set_include_ended(include_ended);
  return Converted(impl_->Call<v1::ListStandingApprovalsRequest,
                               v1::ListStandingApprovalsResponse>(
      &Stub::ListStandingApprovals, request));
}
absl::Status CredentialClient::RevokeStandingApproval(const std::string& id) {
  v1::RevokeStandingApprovalRequest request;
  request.set_id(id);
  return impl_
      ->Call<v1::RevokeStandingApprovalRequest,
             v1::RevokeStandingApprovalResponse>(&Stub::RevokeStandingApproval,
                                                 request)
      .status();
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

absl::StatusOr<bool> CredentialClient::SetApprovalPin(const PinChange& change) {
  auto request = internal::AsProto<v1::SetApprovalPinRequest>(change);
  absl::StatusOr<v1::SetApprovalPinResponse> r =
      impl_->Call<v1::SetApprovalPinRequest, v1::SetApprovalPinResponse>(
          &Stub::SetApprovalPin, request);
  internal::WipeSecrets(request);
  if (!r.ok()) return r.status();
  return r->pin_set();
}
absl::StatusOr<ApprovalPinStatus> CredentialClient::GetApprovalPinStatus() {
  return Converted(
      impl_->Call<v1::GetApprovalPinStatusRequest, v1::ApprovalPinStatus>(
          &Stub::GetApprovalPinStatus, v1::GetApprovalPinStatusRequest()));
}
absl::StatusOr<PasskeyChallenge> CredentialClient::BeginPasskeyRegistration() {
  return Converted(
      impl_->Call<v1::BeginPasskeyRegistrationRequest, v1::PasskeyChallenge>(
          &Stub::BeginPasskeyRegistration,
          v1::BeginPasskeyRegistrationRequest()));
}
absl::StatusOr<Passkey> CredentialClient::FinishPasskeyRegistration(
    const PasskeyRegistration& registration) {
  auto request =
      internal::AsProto<v1::FinishPasskeyRegistrationRequest>(registration);
  absl::StatusOr<v1::Passkey> r =
      impl_->Call<v1::FinishPasskeyRegistrationRequest, v1::Passkey>(
          &Stub::FinishPasskeyRegistration, request);
  internal::WipeSecrets(request);
  return Converted(std::move(r));
}
absl::StatusOr<PasskeyList> CredentialClient::ListPasskeys() {
  return Converted(
      impl_->Call<v1::ListPasskeysRequest, v1::ListPasskeysResponse>(
          &Stub::ListPasskeys, v1::ListPasskeysRequest()));
}
absl::Status CredentialClient::RemovePasskey(const PasskeyRemoval& removal) {
  auto request = internal::AsProto<v1::RemovePasskeyRequest>(removal);
  absl::Status status =
      impl_
          ->Call<v1::RemovePasskeyRequest, v1::RemovePasskeyResponse>(
              &Stub::RemovePasskey, request)
          .status();
  internal::WipeSecrets(request);
  return status;
}
absl::StatusOr<AuditLogCheck> CredentialClient::VerifyAuditLog() {
  return Converted(
      impl_->Call<v1::VerifyAuditLogRequest, v1::VerifyAuditLogResponse>(
          &Stub::VerifyAuditLog, v1::VerifyAuditLogRequest()));
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

absl::StatusOr<LockState> CredentialClient::GetLockState() {
  v1::LockState response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status =
      v1::LockService::NewStub(impl_->channel)
          ->GetLockState(&ctx, v1::GetLockStateRequest(), &response);
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return internal::FromProto(response);
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

absl::StatusOr<RekeyResult> CredentialClient::Rekey(const KeyChange& change) {
  auto request = internal::AsProto<v1::RekeyRequest>(change);
  v1::RekeyResponse response;
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  grpc::Status status =
      v1::LockService::NewStub(impl_->channel)->Rekey(&ctx, request, &response);
  internal::WipeSecrets(request);
  if (!status.ok())
    return internal::FromCallStatus(status, impl_->channel.get());
  return internal::FromProto(response);
}

}  // namespace client
}  // namespace credbroker
