#include "broker/rpc/convert.h"

#include <algorithm>

namespace credbroker {

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::Time() || t == absl::InfinitePast()) return;
  int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  int64_t nanos = absl::ToInt64Nanoseconds(d);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

v1::Readiness ToProto(Readiness r) {
  switch (r) {
    case Readiness::kReady:
      return v1::READINESS_READY;
    case Readiness::kIncomplete:
      return v1::READINESS_INCOMPLETE;
    case Readiness::kInvalid:
      return v1::READINESS_INVALID;
    case Readiness::kRotationDue:
      return v1::READINESS_ROTATION_DUE;
    case Readiness::kExpired:
      return v1::READINESS_EXPIRED;
    case Readiness::kVerifyFailed:
      return v1::READINESS_VERIFY_FAILED;
  }
  return v1::READINESS_UNSPECIFIED;
}

v1::Severity ToProto(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return v1::SEVERITY_INFO;
    case Severity::kWarning:
      return v1::SEVERITY_WARNING;
    case Severity::kError:
      return v1::SEVERITY_ERROR;
  }
  return v1::SEVERITY_UNSPECIFIED;
}

void ToProto(const FieldSpec& in, v1::FieldSpec* out) {
  out->set_name(in.name);
  out->set_label(in.label);
  out->set_sensitive(in.sensitive);
  out->set_optional(in.optional);
  out->set_format_hint(in.format_hint);
  out->set_default_value(in.default_value);
  out->set_derived(in.derived);
  out->set_generatable(in.generatable);
  out->set_multiline(in.multiline);
}

void ToProto(const ProviderSpec& in, v1::ProviderInfo* out) {
  out->set_id(in.id);
  out->set_display_name(in.display_name);
  out->set_description(in.description);
  for (const FieldSpec& f : in.fields) ToProto(f, out->add_fields());
  for (const auto& s : in.how_to_get) out->add_how_to_get(s);
  for (const auto& s : in.required_permissions)
    out->add_required_permissions(s);
  for (const auto& s : in.troubleshooting) out->add_troubleshooting(s);
  ToProto(in.rotation_period, out->mutable_rotation_period());
  out->set_arbitrary_fields(in.arbitrary_fields);
  out->set_oauth(in.oauth);
  out->set_default_region(in.default_region);
}

void ToProto(const Finding& in, v1::Finding* out) {
  out->set_field(in.field);
  out->set_severity(ToProto(in.severity));
  out->set_code(in.code);
  out->set_message(in.message);
  out->set_fix(in.fix);
}

void ToProto(const MaskedField& in, v1::MaskedField* out) {
  out->set_name(in.name);
  out->set_sensitive(in.sensitive);
  out->set_set(in.set);
  out->set_display(in.display);
}

void ToProto(const CredentialSummary& in, v1::CredentialSummary* out) {
  out->set_provider(in.provider);
  out->set_profile(in.profile);
  out->set_version(in.version);
  out->set_version_count(in.version_count);
  out->set_readiness(ToProto(in.readiness));
  for (const auto& f : in.fields) ToProto(f, out->add_fields());
  for (const auto& f : in.findings) ToProto(f, out->add_findings());
  ToProto(in.created_at, out->mutable_created_at());
  ToProto(in.updated_at, out->mutable_updated_at());
  ToProto(in.rotation_due_at, out->mutable_rotation_due_at());
  out->set_fingerprint(in.fingerprint);
  out->set_is_default(in.is_default);
  out->set_days_until_rotation(in.days_until_rotation);
  if (in.expires_at != absl::InfinitePast()) {
    ToProto(in.expires_at, out->mutable_expires_at());
  }
}

Need FromProto(const v1::CredentialNeeded& in) {
  Need need;
  need.need_id = in.need_id();
  need.provider = in.provider();
  need.profile = in.profile();
  need.action = in.action();
  // A proto map has no order; sort for a stable record.
  for (const auto& [k, v] : in.context()) need.context.emplace_back(k, v);
  std::sort(need.context.begin(), need.context.end());
  if (in.has_requested_ttl())
    need.requested_ttl = FromProto(in.requested_ttl());
  return need;
}

void ToProto(const Need& in, v1::CredentialNeeded* out) {
  out->set_need_id(in.need_id);
  out->set_provider(in.provider);
  out->set_profile(in.profile);
  out->set_action(in.action);
  for (const auto& [k, v] : in.context) (*out->mutable_context())[k] = v;
  if (in.requested_ttl > absl::ZeroDuration()) {
    ToProto(in.requested_ttl, out->mutable_requested_ttl());
  }
}

void ToProto(const RequestView& in, v1::ApprovalRequest* out) {
  const RequestRecord& r = in.record;
  out->set_request_id(r.request_id);
  v1::CredentialNeeded* need = out->mutable_need();
  need->set_need_id(r.need_id);
  need->set_provider(r.provider);
  need->set_profile(r.profile);
  need->set_action(r.action);
  for (const auto& [k, v] : r.context) (*need->mutable_context())[k] = v;
  if (r.requested_ttl > absl::ZeroDuration()) {
    ToProto(r.requested_ttl, need->mutable_requested_ttl());
  }
  out->set_state(static_cast<v1::RequestState>(r.state));
  for (const auto& f : r.missing_fields) out->add_missing_fields(f);
  ToProto(r.created_at, out->mutable_created_at());
  ToProto(r.expires_at, out->mutable_expires_at());
  out->set_agent_session(r.session_key);
  out->set_agent_connected(in.agent_connected);
  out->set_agent_peer(r.agent_peer);
  out->set_decision(r.decision);
  out->set_binding_note(r.binding_note);
  if (in.credential_readiness.has_value()) {
    out->set_credential_readiness(ToProto(*in.credential_readiness));
  }
}

void ToProto(const GrantRecord& in, absl::Time now, v1::GrantInfo* out) {
  out->set_grant_id(in.grant_id);
  out->set_provider(in.provider);
  out->set_profile(in.profile);
  out->set_credential_version(in.credential_version);
  out->set_scope(static_cast<v1::Scope>(in.scope));
  ToProto(in.created_at, out->mutable_created_at());
  ToProto(in.expires_at, out->mutable_expires_at());
  out->set_request_id(in.request_id);
  out->set_action(in.action);
  out->set_agent_session(in.session_key);
  bool ended = in.ended_at != absl::InfiniteFuture();
  out->set_revoked(ended && in.end_reason.rfind("revoked", 0) == 0);
  out->set_released(ended && in.end_reason == "released");
  if (ended) {
    ToProto(in.ended_at, out->mutable_ended_at());
    out->set_end_reason(in.end_reason);
  } else if (in.expires_at <= now) {
    out->set_end_reason("expired");
  }
}

void ToProto(const NeedUpdate& in, v1::NeedUpdate* out) {
  out->set_need_id(in.need_id);
  out->set_request_id(in.request_id);
  out->set_state(static_cast<v1::RequestState>(in.state));
  for (const auto& f : in.missing_fields) out->add_missing_fields(f);
  out->set_reason(in.reason);
  out->set_message(in.message);
  if (in.grant.has_value()) {
    const GrantRecord& g = in.grant->record;
    v1::Grant* grant = out->mutable_grant();
    grant->set_grant_id(g.grant_id);
    grant->set_provider(g.provider);
    grant->set_profile(g.profile);
    grant->set_credential_version(g.credential_version);
    grant->set_scope(static_cast<v1::Scope>(g.scope));
    ToProto(g.expires_at, grant->mutable_expires_at());
    grant->set_request_id(g.request_id);
    grant->set_action(g.action);
    for (const auto& [name, value] : in.grant->values) {
      (*grant->mutable_values())[name] = std::string(value.Reveal());
    }
  }
}

Scope FromProto(v1::Scope scope) {
  switch (scope) {
    case v1::SCOPE_ONCE:
      return Scope::kOnce;
    case v1::SCOPE_SESSION:
      return Scope::kSession;
    case v1::SCOPE_STANDING:
      return Scope::kStanding;
    default:
      return Scope::kUnspecified;
  }
}

FieldValues TakeValues(
    google::protobuf::Map<std::string, std::string>* values) {
  FieldValues out;
  for (auto& [name, value] : *values) {
    out.emplace(name, SecretBytes::TakeFrom(value));
  }
  return out;
}

SecretBytes TakeString(std::string* value) {
  return SecretBytes::TakeFrom(*value);
}

}  // namespace credbroker
