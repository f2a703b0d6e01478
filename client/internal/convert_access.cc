#include <string>

#include "client/internal/convert.h"
#include "common/secret.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

// Copies a secret into a message's string; the caller wipes the message.
void SetSecret(const SecretBytes& secret, std::string* out) {
  out->assign(secret.Reveal().data(), secret.size());
}

}  // namespace

KeySource FromProto(v1::KeySource s) {
  const int n = static_cast<int>(s);
  return n >= 0 && n <= v1::KeySource_MAX ? static_cast<KeySource>(n)
                                          : KeySource::kUnspecified;
}
v1::KeySource ToProto(KeySource s) { return static_cast<v1::KeySource>(s); }

void ToProto(const GrantQuery& v, v1::ListGrantsRequest* out) {
  out->set_include_ended(v.include_ended);
  out->set_page_size(v.page_size);
  out->set_page_token(v.page_token);
}

void ToProto(const AuditQuery& v, v1::ListAuditEventsRequest* out) {
  if (HasTime(v.since)) ToProto(v.since, out->mutable_since());
  if (HasTime(v.until)) ToProto(v.until, out->mutable_until());
  out->set_provider(v.provider);
  out->set_kind(v.kind);
  out->set_page_size(v.page_size);
  out->set_page_token(v.page_token);
}

void ToProto(const PinChange& v, v1::SetApprovalPinRequest* out) {
  SetSecret(v.current_pin, out->mutable_current_pin());
  SetSecret(v.new_pin, out->mutable_new_pin());
  SetSecret(v.store_passphrase, out->mutable_store_passphrase());
}

void ToProto(const PasskeyRegistration& v,
             v1::FinishPasskeyRegistrationRequest* out) {
  SetSecret(v.pin, out->mutable_pin());
  out->set_name(v.name);
  out->set_client_data_json(v.client_data_json);
  out->set_attestation_object(v.attestation_object);
}

void ToProto(const PasskeyRemoval& v, v1::RemovePasskeyRequest* out) {
  out->set_id(v.id);
  out->set_all(v.all);
  SetSecret(v.pin, out->mutable_pin());
}

void ToProto(const KeyChange& v, v1::RekeyRequest* out) {
  SetSecret(v.current_passphrase, out->mutable_current_passphrase());
  out->set_to(ToProto(v.to));
  SetSecret(v.new_passphrase, out->mutable_new_passphrase());
  SetSecret(v.pin, out->mutable_pin());
}

void WipeSecrets(v1::SetApprovalPinRequest& m) {
  WipeString(*m.mutable_current_pin());
  WipeString(*m.mutable_new_pin());
  WipeString(*m.mutable_store_passphrase());
}

void WipeSecrets(v1::FinishPasskeyRegistrationRequest& m) {
  WipeString(*m.mutable_pin());
}

void WipeSecrets(v1::RemovePasskeyRequest& m) { WipeString(*m.mutable_pin()); }

void WipeSecrets(v1::RekeyRequest& m) {
  WipeString(*m.mutable_current_passphrase());
  WipeString(*m.mutable_new_passphrase());
  WipeString(*m.mutable_pin());
}

GrantPage FromProto(const v1::ListGrantsResponse& m) {
  GrantPage v;
  v.grants = ListFromProto<GrantInfo>(m.grants());
  v.next_page_token = m.next_page_token();
  return v;
}

void ToProto(const GrantPage& v, v1::ListGrantsResponse* out) {
  ListToProto(v.grants, out->mutable_grants());
  out->set_next_page_token(v.next_page_token);
}

AuditPage FromProto(const v1::ListAuditEventsResponse& m) {
  AuditPage v;
  v.events = ListFromProto<AuditEvent>(m.events());
  v.next_page_token = m.next_page_token();
  return v;
}

void ToProto(const AuditPage& v, v1::ListAuditEventsResponse* out) {
  ListToProto(v.events, out->mutable_events());
  out->set_next_page_token(v.next_page_token);
}

AuditLogCheck FromProto(const v1::VerifyAuditLogResponse& m) {
  AuditLogCheck v;
  v.intact = m.intact();
  v.events_checked = m.events_checked();
  v.broken_at_sequence = m.broken_at_sequence();
  v.problem = m.problem();
  return v;
}

void ToProto(const AuditLogCheck& v, v1::VerifyAuditLogResponse* out) {
  out->set_intact(v.intact);
  out->set_events_checked(v.events_checked);
  out->set_broken_at_sequence(v.broken_at_sequence);
  out->set_problem(v.problem);
}

StandingApproval FromProto(const v1::StandingApproval& m) {
  StandingApproval v;
  v.id = m.id();
  v.provider = m.provider();
  v.profile = m.profile();
  v.action_pattern = m.action_pattern();
  v.created_at = FromProto(m.created_at());
  v.expires_at = FromProto(m.expires_at());
  v.revoked = m.revoked();
  return v;
}

void ToProto(const StandingApproval& v, v1::StandingApproval* out) {
  out->set_id(v.id);
  out->set_provider(v.provider);
  out->set_profile(v.profile);
  out->set_action_pattern(v.action_pattern);
  if (HasTime(v.created_at)) ToProto(v.created_at, out->mutable_created_at());
  if (HasTime(v.expires_at)) ToProto(v.expires_at, out->mutable_expires_at());
  out->set_revoked(v.revoked);
}

std::vector<StandingApproval> FromProto(
    const v1::ListStandingApprovalsResponse& m) {
  return ListFromProto<StandingApproval>(m.approvals());
}

void ToProto(const std::vector<StandingApproval>& v,
             v1::ListStandingApprovalsResponse* out) {
  ListToProto(v, out->mutable_approvals());
}

ApprovalPinStatus FromProto(const v1::ApprovalPinStatus& m) {
  ApprovalPinStatus v;
  v.pin_set = m.pin_set();
  v.failed_attempts = m.failed_attempts();
  v.locked_until = FromProto(m.locked_until());
  v.required = m.required();
  v.first_pin_needs_passphrase = m.first_pin_needs_passphrase();
  v.window_until = FromProto(m.window_until());
  v.unlock_window = FromProto(m.unlock_window());
  v.passkey_required = m.passkey_required();
  v.passkeys = m.passkeys();
  return v;
}

void ToProto(const ApprovalPinStatus& v, v1::ApprovalPinStatus* out) {
  out->set_pin_set(v.pin_set);
  out->set_failed_attempts(v.failed_attempts);
  if (HasTime(v.locked_until))
    ToProto(v.locked_until, out->mutable_locked_until());
  out->set_required(v.required);
  out->set_first_pin_needs_passphrase(v.first_pin_needs_passphrase);
  if (HasTime(v.window_until))
    ToProto(v.window_until, out->mutable_window_until());
  // Zero is a value here ("never"), which the broker always sends.
  ToProto(v.unlock_window, out->mutable_unlock_window());
  out->set_passkey_required(v.passkey_required);
  out->set_passkeys(v.passkeys);
}

Passkey FromProto(const v1::Passkey& m) {
  Passkey v;
  v.id = m.id();
  v.name = m.name();
  v.algorithm = m.algorithm();
  v.sign_count = m.sign_count();
  v.created = FromProto(m.created());
  v.last_used = FromProto(m.last_used());
  return v;
}

void ToProto(const Passkey& v, v1::Passkey* out) {
  out->set_id(v.id);
  out->set_name(v.name);
  out->set_algorithm(v.algorithm);
  out->set_sign_count(v.sign_count);
  if (HasTime(v.created)) ToProto(v.created, out->mutable_created());
  if (HasTime(v.last_used)) ToProto(v.last_used, out->mutable_last_used());
}

PasskeyList FromProto(const v1::ListPasskeysResponse& m) {
  PasskeyList v;
  v.passkeys = ListFromProto<Passkey>(m.passkeys());
  v.required = m.required();
  return v;
}

void ToProto(const PasskeyList& v, v1::ListPasskeysResponse* out) {
  ListToProto(v.passkeys, out->mutable_passkeys());
  out->set_required(v.required);
}

LockState FromProto(const v1::LockState& m) {
  LockState v;
  v.locked = m.locked();
  v.message = m.message();
  v.key_source = FromProto(m.key_source());
  v.key_file = m.key_file();
  v.auto_lock_after = absl::Seconds(m.auto_lock_after_seconds());
  return v;
}

void ToProto(const LockState& v, v1::LockState* out) {
  out->set_locked(v.locked);
  out->set_message(v.message);
  out->set_key_source(ToProto(v.key_source));
  out->set_key_file(v.key_file);
  out->set_auto_lock_after_seconds(absl::ToInt64Seconds(v.auto_lock_after));
}

RekeyResult FromProto(const v1::RekeyResponse& m) {
  RekeyResult v;
  v.key_source = FromProto(m.key_source());
  v.key_file = m.key_file();
  v.message = m.message();
  return v;
}

void ToProto(const RekeyResult& v, v1::RekeyResponse* out) {
  out->set_key_source(ToProto(v.key_source));
  out->set_key_file(v.key_file);
  out->set_message(v.message);
}

}  // namespace internal

absl::string_view KeySourceName(KeySource source) {
  return v1::KeySource_Name(internal::ToProto(source));
}

}  // namespace client
}  // namespace credbroker
