#include "broker/store/forwarding_store.h"

#include <utility>

namespace credbroker {

ForwardingStore::ForwardingStore(Store* inner) : inner_(inner) {}

ForwardingStore::ForwardingStore(std::unique_ptr<Store> inner)
    : owned_(std::move(inner)), inner_(owned_.get()) {}

absl::StatusOr<CredentialRecord> ForwardingStore::PutCredential(
    absl::string_view provider, absl::string_view profile,
    absl::Duration rotation_period, const SealFn& seal,
    const AuditOfFn& audit_of, const AuditHashFn& hash_fn) {
  return inner_->PutCredential(provider, profile, rotation_period, seal,
                               audit_of, hash_fn);
}

absl::StatusOr<CredentialRecord> ForwardingStore::GetCredential(
    absl::string_view provider, absl::string_view profile, int64_t version) {
  return inner_->GetCredential(provider, profile, version);
}

absl::StatusOr<std::vector<CredentialRecord>> ForwardingStore::ListCredentials(
    const ListCredentialsOptions& options) {
  return inner_->ListCredentials(options);
}

absl::StatusOr<std::vector<CredentialRecord>> ForwardingStore::ListVersions(
    absl::string_view provider, absl::string_view profile) {
  return inner_->ListVersions(provider, profile);
}

absl::StatusOr<int64_t> ForwardingStore::DeleteCredential(
    absl::string_view provider, absl::string_view profile,
    const DeleteAuditFn& audit_of, const AuditHashFn& hash_fn) {
  return inner_->DeleteCredential(provider, profile, audit_of, hash_fn);
}

absl::StatusOr<std::string> ForwardingStore::GetMeta(absl::string_view key) {
  return inner_->GetMeta(key);
}

absl::Status ForwardingStore::PutMeta(absl::string_view key,
                                      absl::string_view value) {
  return inner_->PutMeta(key, value);
}

absl::StatusOr<AuditRecord> ForwardingStore::AppendAudit(
    AuditRecord event, const AuditHashFn& hash_fn) {
  return inner_->AppendAudit(std::move(event), hash_fn);
}

absl::StatusOr<std::vector<AuditRecord>> ForwardingStore::ListAudit(
    const AuditQuery& query) {
  return inner_->ListAudit(query);
}

absl::Status ForwardingStore::ReserveSpace(int64_t bytes) {
  return inner_->ReserveSpace(bytes);
}

absl::Status ForwardingStore::WriteFlow(const FlowWrite& write,
                                        const AuditHashFn& hash_fn) {
  return inner_->WriteFlow(write, hash_fn);
}

absl::StatusOr<std::vector<RequestRecord>> ForwardingStore::ListRequests(
    bool open_only) {
  return inner_->ListRequests(open_only);
}

absl::StatusOr<RequestRecord> ForwardingStore::GetRequest(
    absl::string_view request_id) {
  return inner_->GetRequest(request_id);
}

absl::StatusOr<std::vector<GrantRecord>> ForwardingStore::ListGrants(
    const ListGrantsOptions& options) {
  return inner_->ListGrants(options);
}

absl::StatusOr<GrantRecord> ForwardingStore::GetGrant(
    absl::string_view grant_id) {
  return inner_->GetGrant(grant_id);
}

absl::StatusOr<std::vector<StandingRecord>> ForwardingStore::ListStanding() {
  return inner_->ListStanding();
}

absl::StatusOr<BindingRecord> ForwardingStore::GetBinding(
    absl::string_view provider, absl::string_view resource) {
  return inner_->GetBinding(provider, resource);
}

absl::StatusOr<std::vector<BindingRecord>> ForwardingStore::ListBindings(
    absl::string_view provider) {
  return inner_->ListBindings(provider);
}

absl::Status ForwardingStore::CheckIntegrity() {
  return inner_->CheckIntegrity();
}

Store::WriteStats ForwardingStore::GetWriteStats() {
  return inner_->GetWriteStats();
}

Store::ReadStats ForwardingStore::GetReadStats() {
  return inner_->GetReadStats();
}

std::optional<Store::ChangeMark> ForwardingStore::CurrentChangeMark() {
  return inner_->CurrentChangeMark();
}

}  // namespace credbroker
