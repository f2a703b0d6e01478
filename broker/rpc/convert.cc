#include "broker/rpc/convert.h"

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
  for (const auto& s : in.required_permissions) out->add_required_permissions(s);
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
}

FieldValues TakeValues(google::protobuf::Map<std::string, std::string>* values) {
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
