#ifndef CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_
#define CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/store/store.h"

namespace credbroker {

// A store that passes every call to a real one; tests override the calls
// they need to fail, edit or count.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> inner)
      : inner_(std::move(inner)) {}

  absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override {
    return inner_->PutCredential(provider, profile, rotation_period, seal,
                                 audit_of, hash_fn);
  }
  absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                 absl::string_view profile,
                                                 int64_t version) override {
    return inner_->GetCredential(provider, profile, version);
  }
  absl::StatusOr<std::vector<CredentialRecord>> ListCredentials(
      const ListCredentialsOptions& options) override {
    return inner_->ListCredentials(options);
  }
  absl::StatusOr<std::vector<CredentialRecord>> ListVersions(
      absl::string_view provider, absl::string_view profile) override {
    return inner_->ListVersions(provider, profile);
  }
  absl::StatusOr<int64_t> DeleteCredential(
      absl::string_view provider, absl::string_view profile,
      const DeleteAuditFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override {
    return inner_->DeleteCredential(provider, profile, audit_of, hash_fn);
  }
  absl::StatusOr<std::string> GetMeta(absl::string_view key) override {
    return inner_->GetMeta(key);
  }
  absl::Status PutMeta(absl::string_view key,
                       absl::string_view value) override {
    return inner_->PutMeta(key, value);
  }
  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override {
    return inner_->AppendAudit(std::move(event), hash_fn);
  }
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) override {
    return inner_->ListAudit(query);
  }
  absl::Status ReserveSpace(int64_t bytes) override {
    return inner_->ReserveSpace(bytes);
  }
  absl::Status WriteFlow(const FlowWrite& write,
                         const AuditHashFn& hash_fn) override {
    return inner_->WriteFlow(write, hash_fn);
  }
  absl::StatusOr<std::vector<RequestRecord>> ListRequests(
      bool open_only) override {
    return inner_->ListRequests(open_only);
  }
  absl::StatusOr<RequestRecord> GetRequest(
      absl::string_view request_id) override {
    return inner_->GetRequest(request_id);
  }
  absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options) override {
    return inner_->ListGrants(options);
  }
  absl::StatusOr<GrantRecord> GetGrant(absl::string_view grant_id) override {
    return inner_->GetGrant(grant_id);
  }
  absl::StatusOr<std::vector<StandingRecord>> ListStanding() override {
    return inner_->ListStanding();
  }
  absl::StatusOr<BindingRecord> GetBinding(
      absl::string_view provider, absl::string_view resource) override {
    return inner_->GetBinding(provider, resource);
  }
  absl::StatusOr<std::vector<BindingRecord>> ListBindings(
      absl::string_view provider) override {
    return inner_->ListBindings(provider);
  }
  absl::Status CheckIntegrity() override { return inner_->CheckIntegrity(); }
  WriteStats GetWriteStats() override { return inner_->GetWriteStats(); }
  std::optional<ChangeMark> CurrentChangeMark() override {
    return inner_->CurrentChangeMark();
  }

 private:
  std::unique_ptr<Store> inner_;
};

}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CORE_FORWARDING_STORE_H_
