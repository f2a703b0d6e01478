#include <string>

#include "client/internal/convert.h"
#include "common/secret.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

void ValuesToProto(const FieldValues& values,
                   google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [name, value] : values) {
    (*out)[name] = std::string(value.Reveal());
  }
}

void WipeValues(google::protobuf::Map<std::string, std::string>* values) {
  for (auto& [name, value] : *values) WipeString(value);
}

}  // namespace

BindingState FromProto(v1::ResourceBinding::State s) {
  const int n = static_cast<int>(s);
  return n >= 0 && n <= v1::ResourceBinding::State_MAX
             ? static_cast<BindingState>(n)
             : BindingState::kUnspecified;
}
v1::ResourceBinding::State ToProto(BindingState s) {
  return static_cast<v1::ResourceBinding::State>(s);
}

void ToProto(const ListCredentialsOptions& v, v1::ListCredentialsRequest* out) {
  out->set_provider(v.provider);
  out->set_page_size(v.page_size);
  out->set_page_token(v.page_token);
}

void ToProto(const CredentialInput& v, v1::PutCredentialRequest* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  ValuesToProto(v.values, out->mutable_values());
  out->set_keep_existing(v.keep_existing);
  out->set_from_file(v.from_file.Reveal().data(), v.from_file.size());
  StringsToProto(v.generate, out->mutable_generate());
  if (v.rotation_period != absl::ZeroDuration()) {
    ToProto(v.rotation_period, out->mutable_rotation_period());
  }
}

void ToProto(const CredentialCandidate& v, v1::ValidateCredentialRequest* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  ValuesToProto(v.values, out->mutable_values());
  out->set_from_file(v.from_file.Reveal().data(), v.from_file.size());
}

void WipeSecrets(v1::PutCredentialRequest& m) {
  WipeValues(m.mutable_values());
  WipeString(*m.mutable_from_file());
}

void WipeSecrets(v1::ValidateCredentialRequest& m) {
  WipeValues(m.mutable_values());
  WipeString(*m.mutable_from_file());
}

std::vector<ProviderInfo> FromProto(const v1::ListProvidersResponse& m) {
  return ListFromProto<ProviderInfo>(m.providers());
}
void ToProto(const std::vector<ProviderInfo>& v,
             v1::ListProvidersResponse* out) {
  ListToProto(v, out->mutable_providers());
}

CredentialPage FromProto(const v1::ListCredentialsResponse& m) {
  CredentialPage v;
  v.credentials = ListFromProto<CredentialSummary>(m.credentials());
  v.next_page_token = m.next_page_token();
  return v;
}
void ToProto(const CredentialPage& v, v1::ListCredentialsResponse* out) {
  ListToProto(v.credentials, out->mutable_credentials());
  out->set_next_page_token(v.next_page_token);
}

StoredCredential FromProto(const v1::PutCredentialResponse& m) {
  StoredCredential v;
  v.credential = FromProto(m.credential());
  v.findings = ListFromProto<Finding>(m.findings());
  v.generated = StringsFromProto(m.generated());
  return v;
}
void ToProto(const StoredCredential& v, v1::PutCredentialResponse* out) {
  ToProto(v.credential, out->mutable_credential());
  ListToProto(v.findings, out->mutable_findings());
  StringsToProto(v.generated, out->mutable_generated());
}

Diagnosis FromProto(const v1::ValidateCredentialResponse& m) {
  Diagnosis v;
  v.valid = m.valid();
  v.readiness = FromProto(m.readiness());
  v.findings = ListFromProto<Finding>(m.findings());
  v.missing_fields = StringsFromProto(m.missing_fields());
  v.required_permissions = StringsFromProto(m.required_permissions());
  v.fields = ListFromProto<MaskedField>(m.fields());
  v.manual_checks = StringsFromProto(m.manual_checks());
  v.profile = m.profile();
  return v;
}
void ToProto(const Diagnosis& v, v1::ValidateCredentialResponse* out) {
  out->set_valid(v.valid);
  out->set_readiness(ToProto(v.readiness));
  ListToProto(v.findings, out->mutable_findings());
  StringsToProto(v.missing_fields, out->mutable_missing_fields());
  StringsToProto(v.required_permissions, out->mutable_required_permissions());
  ListToProto(v.fields, out->mutable_fields());
  StringsToProto(v.manual_checks, out->mutable_manual_checks());
  out->set_profile(v.profile);
}

Requirement FromProto(const v1::Requirement& m) {
  Requirement v;
  v.provider = m.provider();
  v.profile = m.profile();
  v.configured = m.configured();
  v.readiness = FromProto(m.readiness());
  v.missing_fields = StringsFromProto(m.missing_fields());
  v.required_permissions = StringsFromProto(m.required_permissions());
  v.reason = m.reason();
  v.profile_source = m.profile_source();
  v.binding_note = m.binding_note();
  return v;
}
void ToProto(const Requirement& v, v1::Requirement* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_configured(v.configured);
  out->set_readiness(ToProto(v.readiness));
  StringsToProto(v.missing_fields, out->mutable_missing_fields());
  StringsToProto(v.required_permissions, out->mutable_required_permissions());
  out->set_reason(v.reason);
  out->set_profile_source(v.profile_source);
  out->set_binding_note(v.binding_note);
}

std::vector<Requirement> FromProto(const v1::ResolveRequirementsResponse& m) {
  return ListFromProto<Requirement>(m.requirements());
}
void ToProto(const std::vector<Requirement>& v,
             v1::ResolveRequirementsResponse* out) {
  ListToProto(v, out->mutable_requirements());
}

CredentialVersion FromProto(const v1::CredentialVersion& m) {
  CredentialVersion v;
  v.version = m.version();
  v.created_at = FromProto(m.created_at());
  v.fingerprint = m.fingerprint();
  v.current = m.current();
  v.rotation_period = FromProto(m.rotation_period());
  return v;
}
void ToProto(const CredentialVersion& v, v1::CredentialVersion* out) {
  out->set_version(v.version);
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  out->set_fingerprint(v.fingerprint);
  out->set_current(v.current);
  if (v.rotation_period != absl::ZeroDuration()) {
    ToProto(v.rotation_period, out->mutable_rotation_period());
  }
}

CredentialHistory FromProto(const v1::ListCredentialVersionsResponse& m) {
  CredentialHistory v;
  v.provider = m.provider();
  v.profile = m.profile();
  v.versions = ListFromProto<CredentialVersion>(m.versions());
  return v;
}
void ToProto(const CredentialHistory& v,
             v1::ListCredentialVersionsResponse* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  ListToProto(v.versions, out->mutable_versions());
}

RolledBackCredential FromProto(const v1::RollbackCredentialResponse& m) {
  RolledBackCredential v;
  v.credential = FromProto(m.credential());
  v.restored_version = m.restored_version();
  v.findings = ListFromProto<Finding>(m.findings());
  return v;
}
void ToProto(const RolledBackCredential& v,
             v1::RollbackCredentialResponse* out) {
  ToProto(v.credential, out->mutable_credential());
  out->set_restored_version(v.restored_version);
  ListToProto(v.findings, out->mutable_findings());
}

DefaultProfileChange FromProto(const v1::SetDefaultProfileResponse& m) {
  DefaultProfileChange v;
  v.provider = m.provider();
  v.profile = m.profile();
  v.previous_profile = m.previous_profile();
  v.configured = m.configured();
  return v;
}
void ToProto(const DefaultProfileChange& v,
             v1::SetDefaultProfileResponse* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_previous_profile(v.previous_profile);
  out->set_configured(v.configured);
}

ResourceBinding FromProto(const v1::ResourceBinding& m) {
  ResourceBinding v;
  v.resource = m.resource();
  v.provider = m.provider();
  v.profile = m.profile();
  v.fingerprint = m.fingerprint();
  v.credential_version = m.credential_version();
  v.grant_id = m.grant_id();
  v.created_at = FromProto(m.created_at());
  v.updated_at = FromProto(m.updated_at());
  v.state = FromProto(m.state());
  v.note = m.note();
  return v;
}
void ToProto(const ResourceBinding& v, v1::ResourceBinding* out) {
  out->set_resource(v.resource);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_fingerprint(v.fingerprint);
  out->set_credential_version(v.credential_version);
  out->set_grant_id(v.grant_id);
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  if (HasTime(v.updated_at)) ToProto(v.updated_at, out->mutable_updated_at());
  out->set_state(ToProto(v.state));
  out->set_note(v.note);
}

std::vector<ResourceBinding> FromProto(const v1::ListBindingsResponse& m) {
  return ListFromProto<ResourceBinding>(m.bindings());
}
void ToProto(const std::vector<ResourceBinding>& v,
             v1::ListBindingsResponse* out) {
  ListToProto(v, out->mutable_bindings());
}

}  // namespace internal

absl::string_view BindingStateName(BindingState state) {
  return v1::ResourceBinding::State_Name(internal::ToProto(state));
}

}  // namespace client
}  // namespace credbroker
