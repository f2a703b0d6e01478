#include "client/internal/convert.h"
#include "common/secret.h"

namespace credbroker {
namespace client {
namespace internal {

ApprovalEvent::Kind FromProto(v1::ApprovalEvent::Kind k) {
  const int n = static_cast<int>(k);
  return n >= 0 && n <= v1::ApprovalEvent::Kind_MAX
             ? static_cast<ApprovalEvent::Kind>(n)
             : ApprovalEvent::Kind::kUnspecified;
}

v1::ApprovalEvent::Kind ToProto(ApprovalEvent::Kind k) {
  return static_cast<v1::ApprovalEvent::Kind>(k);
}

NeedUpdate FromProto(const v1::NeedUpdate& m) {
  NeedUpdate v;
  v.need_id = m.need_id();
  v.request_id = m.request_id();
  v.state = FromProto(m.state());
  v.missing_fields = StringsFromProto(m.missing_fields());
  if (m.has_grant()) v.grant = FromProto(m.grant());
  v.reason = m.reason();
  v.message = m.message();
  v.error_code = m.error_code();
  v.field_errors = ListFromProto<Finding>(m.field_errors());
  return v;
}

void ToProto(const NeedUpdate& v, v1::NeedUpdate* out) {
  out->set_need_id(v.need_id);
  out->set_request_id(v.request_id);
  out->set_state(ToProto(v.state));
  StringsToProto(v.missing_fields, out->mutable_missing_fields());
  if (v.grant.has_value()) ToProto(*v.grant, out->mutable_grant());
  out->set_reason(v.reason);
  out->set_message(v.message);
  out->set_error_code(v.error_code);
  ListToProto(v.field_errors, out->mutable_field_errors());
}

ApprovalEvent FromProto(const v1::ApprovalEvent& m) {
  ApprovalEvent v;
  v.kind = FromProto(m.kind());
  if (m.has_request()) v.request = FromProto(m.request());
  if (m.has_credential()) v.credential = FromProto(m.credential());
  v.message = m.message();
  return v;
}

void ToProto(const ApprovalEvent& v, v1::ApprovalEvent* out) {
  out->set_kind(ToProto(v.kind));
  if (v.request.has_value()) ToProto(*v.request, out->mutable_request());
  if (v.credential.has_value()) {
    ToProto(*v.credential, out->mutable_credential());
  }
  out->set_message(v.message);
}

FormField FromProto(const v1::FormField& m) {
  FormField v;
  v.spec = FromProto(m.spec());
  v.current_value = m.current_value();
  v.is_set = m.is_set();
  return v;
}

void ToProto(const FormField& v, v1::FormField* out) {
  ToProto(v.spec, out->mutable_spec());
  out->set_current_value(v.current_value);
  out->set_is_set(v.is_set);
}

CredentialForm FromProto(const v1::CredentialForm& m) {
  CredentialForm v;
  v.provider = m.provider();
  v.profile = m.profile();
  v.display_name = m.display_name();
  v.fields = ListFromProto<FormField>(m.fields());
  v.how_to_get = StringsFromProto(m.how_to_get());
  v.required_permissions = StringsFromProto(m.required_permissions());
  if (m.has_request()) v.request = FromProto(m.request());
  v.oauth = m.oauth();
  v.notes = StringsFromProto(m.notes());
  return v;
}

void ToProto(const CredentialForm& v, v1::CredentialForm* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_display_name(v.display_name);
  ListToProto(v.fields, out->mutable_fields());
  StringsToProto(v.how_to_get, out->mutable_how_to_get());
  StringsToProto(v.required_permissions, out->mutable_required_permissions());
  if (v.request.has_value()) ToProto(*v.request, out->mutable_request());
  out->set_oauth(v.oauth);
  StringsToProto(v.notes, out->mutable_notes());
}

Approval FromProto(const v1::ApproveRequest& m) {
  Approval v;
  v.request_id = m.request_id();
  for (const auto& [name, value] : m.values()) {
    v.values.emplace(name, SecretBytes(value));
  }
  v.scope = FromProto(m.scope());
  v.ttl = FromProto(m.ttl());
  v.action_pattern = m.action_pattern();
  v.pin = SecretBytes(m.pin());
  v.generate = StringsFromProto(m.generate());
  if (m.has_passkey()) v.passkey = FromProto(m.passkey());
  return v;
}

void ToProto(const Approval& v, v1::ApproveRequest* out) {
  out->set_request_id(v.request_id);
  for (const auto& [name, value] : v.values) {
    (*out->mutable_values())[name] = std::string(value.Reveal());
  }
  out->set_scope(ToProto(v.scope));
  if (v.ttl != absl::ZeroDuration()) ToProto(v.ttl, out->mutable_ttl());
  out->set_action_pattern(v.action_pattern);
  out->set_pin(std::string(v.pin.Reveal()));
  StringsToProto(v.generate, out->mutable_generate());
  if (v.passkey.has_value()) ToProto(*v.passkey, out->mutable_passkey());
}

ApprovalResult FromProto(const v1::ApproveResponse& m) {
  ApprovalResult v;
  v.grant_id = m.grant_id();
  v.standing_approval_id = m.standing_approval_id();
  return v;
}

void ToProto(const ApprovalResult& v, v1::ApproveResponse* out) {
  out->set_grant_id(v.grant_id);
  out->set_standing_approval_id(v.standing_approval_id);
}

FormQuery FromProto(const v1::GetCredentialFormRequest& m) {
  FormQuery v;
  v.request_id = m.request_id();
  v.provider = m.provider();
  v.profile = m.profile();
  return v;
}

void ToProto(const FormQuery& v, v1::GetCredentialFormRequest* out) {
  out->set_request_id(v.request_id);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
}

void WipeSecrets(v1::Grant& m) {
  for (auto& [name, value] : *m.mutable_values()) WipeString(value);
}

void WipeSecrets(v1::NeedUpdate& m) {
  if (m.has_grant()) WipeSecrets(*m.mutable_grant());
}

void WipeSecrets(v1::ApproveRequest& m) {
  for (auto& [name, value] : *m.mutable_values()) WipeString(value);
  WipeString(*m.mutable_pin());
}

}  // namespace internal

absl::string_view ApprovalEventKindName(ApprovalEvent::Kind kind) {
  return v1::ApprovalEvent::Kind_Name(internal::ToProto(kind));
}

}  // namespace client
}  // namespace credbroker
