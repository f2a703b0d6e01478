#include "client/internal/convert.h"

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/secret.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

template <typename E, typename P>
E EnumFromProto(P value, int last) {
  const int n = static_cast<int>(value);
  return n >= 0 && n <= last ? static_cast<E>(n) : E::kUnspecified;
}

}  // namespace

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

bool HasTime(absl::Time t) { return t != absl::InfinitePast(); }

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

Readiness FromProto(v1::Readiness r) {
  return EnumFromProto<Readiness>(r, v1::Readiness_MAX);
}
v1::Readiness ToProto(Readiness r) { return static_cast<v1::Readiness>(r); }
Severity FromProto(v1::Severity s) {
  return EnumFromProto<Severity>(s, v1::Severity_MAX);
}
v1::Severity ToProto(Severity s) { return static_cast<v1::Severity>(s); }
Scope FromProto(v1::Scope s) { return EnumFromProto<Scope>(s, v1::Scope_MAX); }
v1::Scope ToProto(Scope s) { return static_cast<v1::Scope>(s); }
RequestState FromProto(v1::RequestState s) {
  return EnumFromProto<RequestState>(s, v1::RequestState_MAX);
}
v1::RequestState ToProto(RequestState s) {
  return static_cast<v1::RequestState>(s);
}

std::vector<std::string> StringsFromProto(
    const google::protobuf::RepeatedPtrField<std::string>& ms) {
  return std::vector<std::string>(ms.begin(), ms.end());
}

void StringsToProto(const std::vector<std::string>& vs,
                    google::protobuf::RepeatedPtrField<std::string>* out) {
  for (const std::string& v : vs) out->Add(std::string(v));
}

FieldSpec FromProto(const v1::FieldSpec& m) {
  FieldSpec v;
  v.name = m.name();
  v.label = m.label();
  v.sensitive = m.sensitive();
  v.optional = m.optional();
  v.format_hint = m.format_hint();
  v.default_value = m.default_value();
  v.derived = m.derived();
  v.generatable = m.generatable();
  v.multiline = m.multiline();
  return v;
}

void ToProto(const FieldSpec& v, v1::FieldSpec* out) {
  out->set_name(v.name);
  out->set_label(v.label);
  out->set_sensitive(v.sensitive);
  out->set_optional(v.optional);
  out->set_format_hint(v.format_hint);
  out->set_default_value(v.default_value);
  out->set_derived(v.derived);
  out->set_generatable(v.generatable);
  out->set_multiline(v.multiline);
}

ProviderInfo FromProto(const v1::ProviderInfo& m) {
  ProviderInfo v;
  v.id = m.id();
  v.display_name = m.display_name();
  v.description = m.description();
  v.fields = ListFromProto<FieldSpec>(m.fields());
  v.how_to_get = StringsFromProto(m.how_to_get());
  v.required_permissions = StringsFromProto(m.required_permissions());
  v.rotation_period = FromProto(m.rotation_period());
  v.arbitrary_fields = m.arbitrary_fields();
  v.oauth = m.oauth();
  v.troubleshooting = StringsFromProto(m.troubleshooting());
  v.default_region = m.default_region();
  v.default_profile = m.default_profile();
  return v;
}

void ToProto(const ProviderInfo& v, v1::ProviderInfo* out) {
  out->set_id(v.id);
  out->set_display_name(v.display_name);
  out->set_description(v.description);
  ListToProto(v.fields, out->mutable_fields());
  StringsToProto(v.how_to_get, out->mutable_how_to_get());
  StringsToProto(v.required_permissions, out->mutable_required_permissions());
  if (v.rotation_period != absl::ZeroDuration()) {
    ToProto(v.rotation_period, out->mutable_rotation_period());
  }
  out->set_arbitrary_fields(v.arbitrary_fields);
  out->set_oauth(v.oauth);
  StringsToProto(v.troubleshooting, out->mutable_troubleshooting());
  out->set_default_region(v.default_region);
  out->set_default_profile(v.default_profile);
}

Finding FromProto(const v1::Finding& m) {
  Finding v;
  v.field = m.field();
  v.severity = FromProto(m.severity());
  v.code = m.code();
  v.message = m.message();
  v.fix = m.fix();
  return v;
}

void ToProto(const Finding& v, v1::Finding* out) {
  out->set_field(v.field);
  out->set_severity(ToProto(v.severity));
  out->set_code(v.code);
  out->set_message(v.message);
  out->set_fix(v.fix);
}

MaskedField FromProto(const v1::MaskedField& m) {
  MaskedField v;
  v.name = m.name();
  v.sensitive = m.sensitive();
  v.set = m.set();
  v.display = m.display();
  return v;
}

void ToProto(const MaskedField& v, v1::MaskedField* out) {
  out->set_name(v.name);
  out->set_sensitive(v.sensitive);
  out->set_set(v.set);
  out->set_display(v.display);
}

CredentialSummary FromProto(const v1::CredentialSummary& m) {
  CredentialSummary v;
  v.provider = m.provider();
  v.profile = m.profile();
  v.version = m.version();
  v.readiness = FromProto(m.readiness());
  v.fields = ListFromProto<MaskedField>(m.fields());
  v.created_at = FromProto(m.created_at());
  v.updated_at = FromProto(m.updated_at());
  v.rotation_due_at = FromProto(m.rotation_due_at());
  v.findings = ListFromProto<Finding>(m.findings());
  v.fingerprint = m.fingerprint();
  v.version_count = m.version_count();
  v.is_default = m.is_default();
  v.days_until_rotation = m.days_until_rotation();
  v.expires_at = FromProto(m.expires_at());
  return v;
}

void ToProto(const CredentialSummary& v, v1::CredentialSummary* out) {
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_version(v.version);
  out->set_readiness(ToProto(v.readiness));
  ListToProto(v.fields, out->mutable_fields());
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  if (HasTime(v.updated_at)) ToProto(v.updated_at, out->mutable_updated_at());
  if (HasTime(v.rotation_due_at))
    ToProto(v.rotation_due_at, out->mutable_rotation_due_at());
  ListToProto(v.findings, out->mutable_findings());
  out->set_fingerprint(v.fingerprint);
  out->set_version_count(v.version_count);
  out->set_is_default(v.is_default);
  out->set_days_until_rotation(v.days_until_rotation);
  if (HasTime(v.expires_at)) ToProto(v.expires_at, out->mutable_expires_at());
}

CredentialNeeded FromProto(const v1::CredentialNeeded& m) {
  CredentialNeeded v;
  v.need_id = m.need_id();
  v.provider = m.provider();
  v.profile = m.profile();
  v.action = m.action();
  v.context = std::map<std::string, std::string>(m.context().begin(),
                                                 m.context().end());
  v.requested_ttl = FromProto(m.requested_ttl());
  return v;
}

void ToProto(const CredentialNeeded& v, v1::CredentialNeeded* out) {
  out->set_need_id(v.need_id);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_action(v.action);
  for (const auto& [key, value] : v.context) {
    (*out->mutable_context())[key] = value;
  }
  if (v.requested_ttl != absl::ZeroDuration()) {
    ToProto(v.requested_ttl, out->mutable_requested_ttl());
  }
}

Grant FromProto(const v1::Grant& m) {
  Grant v;
  v.grant_id = m.grant_id();
  v.provider = m.provider();
  v.profile = m.profile();
  v.credential_version = m.credential_version();
  for (const auto& [name, value] : m.values()) {
    v.values.emplace(name, SecretBytes(value));
  }
  v.scope = FromProto(m.scope());
  v.expires_at = FromProto(m.expires_at());
  v.request_id = m.request_id();
  v.action = m.action();
  return v;
}

void ToProto(const Grant& v, v1::Grant* out) {
  out->set_grant_id(v.grant_id);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_credential_version(v.credential_version);
  for (const auto& [name, value] : v.values) {
    (*out->mutable_values())[name] = std::string(value.Reveal());
  }
  out->set_scope(ToProto(v.scope));
  if (HasTime(v.expires_at)) ToProto(v.expires_at, out->mutable_expires_at());
  out->set_request_id(v.request_id);
  out->set_action(v.action);
}

GrantInfo FromProto(const v1::GrantInfo& m) {
  GrantInfo v;
  v.grant_id = m.grant_id();
  v.provider = m.provider();
  v.profile = m.profile();
  v.credential_version = m.credential_version();
  v.scope = FromProto(m.scope());
  v.created_at = FromProto(m.created_at());
  v.expires_at = FromProto(m.expires_at());
  v.request_id = m.request_id();
  v.action = m.action();
  v.agent_session = m.agent_session();
  v.revoked = m.revoked();
  v.released = m.released();
  v.ended_at = FromProto(m.ended_at());
  v.end_reason = m.end_reason();
  return v;
}

void ToProto(const GrantInfo& v, v1::GrantInfo* out) {
  out->set_grant_id(v.grant_id);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_credential_version(v.credential_version);
  out->set_scope(ToProto(v.scope));
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  if (HasTime(v.expires_at)) ToProto(v.expires_at, out->mutable_expires_at());
  out->set_request_id(v.request_id);
  out->set_action(v.action);
  out->set_agent_session(v.agent_session);
  out->set_revoked(v.revoked);
  out->set_released(v.released);
  if (HasTime(v.ended_at)) ToProto(v.ended_at, out->mutable_ended_at());
  out->set_end_reason(v.end_reason);
}

ApprovalRequest FromProto(const v1::ApprovalRequest& m) {
  ApprovalRequest v;
  v.request_id = m.request_id();
  v.need = FromProto(m.need());
  v.state = FromProto(m.state());
  v.missing_fields = StringsFromProto(m.missing_fields());
  v.created_at = FromProto(m.created_at());
  v.expires_at = FromProto(m.expires_at());
  v.agent_session = m.agent_session();
  v.agent_connected = m.agent_connected();
  v.agent_peer = m.agent_peer();
  v.credential_readiness = FromProto(m.credential_readiness());
  v.decision = m.decision();
  v.binding_note = m.binding_note();
  return v;
}

void ToProto(const ApprovalRequest& v, v1::ApprovalRequest* out) {
  out->set_request_id(v.request_id);
  ToProto(v.need, out->mutable_need());
  out->set_state(ToProto(v.state));
  StringsToProto(v.missing_fields, out->mutable_missing_fields());
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  if (HasTime(v.expires_at)) ToProto(v.expires_at, out->mutable_expires_at());
  out->set_agent_session(v.agent_session);
  out->set_agent_connected(v.agent_connected);
  out->set_agent_peer(v.agent_peer);
  out->set_credential_readiness(ToProto(v.credential_readiness));
  out->set_decision(v.decision);
  out->set_binding_note(v.binding_note);
}

AuditEvent FromProto(const v1::AuditEvent& m) {
  AuditEvent v;
  v.sequence = m.sequence();
  v.time = FromProto(m.time());
  v.kind = m.kind();
  v.role = m.role();
  v.peer = m.peer();
  v.provider = m.provider();
  v.profile = m.profile();
  v.request_id = m.request_id();
  v.grant_id = m.grant_id();
  v.action = m.action();
  v.outcome = m.outcome();
  v.detail = m.detail();
  v.hash = m.hash();
  v.prev_hash = m.prev_hash();
  return v;
}

void ToProto(const AuditEvent& v, v1::AuditEvent* out) {
  out->set_sequence(v.sequence);
  if (HasTime(v.time)) ToProto(v.time, out->mutable_time());
  out->set_kind(v.kind);
  out->set_role(v.role);
  out->set_peer(v.peer);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_request_id(v.request_id);
  out->set_grant_id(v.grant_id);
  out->set_action(v.action);
  out->set_outcome(v.outcome);
  out->set_detail(v.detail);
  out->set_hash(v.hash);
  out->set_prev_hash(v.prev_hash);
}

PasskeyChallenge FromProto(const v1::PasskeyChallenge& m) {
  PasskeyChallenge v;
  v.challenge = m.challenge();
  v.rp_id = m.rp_id();
  v.user_handle = m.user_handle();
  v.credential_ids = StringsFromProto(m.credential_ids());
  v.expires = FromProto(m.expires());
  v.origins = StringsFromProto(m.origins());
  v.user_verification_required = m.user_verification_required();
  return v;
}

void ToProto(const PasskeyChallenge& v, v1::PasskeyChallenge* out) {
  out->set_challenge(v.challenge);
  out->set_rp_id(v.rp_id);
  out->set_user_handle(v.user_handle);
  StringsToProto(v.credential_ids, out->mutable_credential_ids());
  if (HasTime(v.expires)) ToProto(v.expires, out->mutable_expires());
  StringsToProto(v.origins, out->mutable_origins());
  out->set_user_verification_required(v.user_verification_required);
}

PasskeyAssertion FromProto(const v1::PasskeyAssertion& m) {
  PasskeyAssertion v;
  v.credential_id = m.credential_id();
  v.client_data_json = m.client_data_json();
  v.authenticator_data = m.authenticator_data();
  v.signature = m.signature();
  return v;
}

void ToProto(const PasskeyAssertion& v, v1::PasskeyAssertion* out) {
  out->set_credential_id(v.credential_id);
  out->set_client_data_json(v.client_data_json);
  out->set_authenticator_data(v.authenticator_data);
  out->set_signature(v.signature);
}

}  // namespace internal

absl::string_view ReadinessName(Readiness readiness) {
  return v1::Readiness_Name(internal::ToProto(readiness));
}
absl::string_view SeverityName(Severity severity) {
  return v1::Severity_Name(internal::ToProto(severity));
}
absl::string_view ScopeName(Scope scope) {
  return v1::Scope_Name(internal::ToProto(scope));
}
absl::string_view RequestStateName(RequestState state) {
  return v1::RequestState_Name(internal::ToProto(state));
}

}  // namespace client
}  // namespace credbroker
