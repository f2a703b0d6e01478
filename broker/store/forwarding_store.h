// ForwardingStore is a Store that passes every call to an inner Store. A
// decorator derives from it and overrides only the calls it changes, so that
// a method added to Store is forwarded in this one place. Thread-safe as the
// inner store is; errors are the inner store's.
#ifndef CREDBROKER_BROKER_STORE_FORWARDING_STORE_H_
#define CREDBROKER_BROKER_STORE_FORWARDING_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/store/store.h"

namespace credbroker {

class ForwardingStore : public Store {
 public:
  // Borrows `inner`, which must outlive this store.
  explicit ForwardingStore(Store* inner);
  // Owns `inner` (a test's instrumented store, a spill opened for one).
  explicit ForwardingStore(std::unique_ptr<Store> inner);

  absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override;
  absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                 absl::string_view profile,
                                                 int64_t version) override;
  absl::StatusOr<std::vector<CredentialRecord>> ListCredentials(
      const ListCredentialsOptions& options) override;
  absl::StatusOr<std::vector<CredentialRecord>> ListVersions(
      absl::string_view provider, absl::string_view profile) override;
  absl::StatusOr<int64_t> DeleteCredential(
      absl::string_view provider, absl::string_view profile,
      const DeleteAuditFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override;
  absl::StatusOr<std::string> GetMeta(absl::string_view key) override;
  absl::Status PutMeta(absl::string_view key, absl::string_view value) override;
  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) override;
  absl::Status ReserveSpace(int64_t bytes) override;
  absl::Status WriteFlow(const FlowWrite& write,
                         const AuditHashFn& hash_fn) override;
  absl::StatusOr<std::vector<RequestRecord>> ListRequests(
      bool open_only) override;
  absl::StatusOr<RequestRecord> GetRequest(
      absl::string_view request_id) override;
  absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options) override;
  absl::StatusOr<GrantRecord> GetGrant(absl::string_view grant_id) override;
  absl::StatusOr<std::vector<StandingRecord>> ListStanding() override;
  absl::StatusOr<BindingRecord> GetBinding(absl::string_view provider,
                                           absl::string_view resource) override;
  absl::StatusOr<std::vector<BindingRecord>> ListBindings(
      absl::string_view provider) override;
  absl::Status CheckIntegrity() override;
  WriteStats GetWriteStats() override;
  ReadStats GetReadStats() override;
  std::optional<ChangeMark> CurrentChangeMark() override;

 protected:
  Store& inner() const { return *inner_; }

 private:
  std::unique_ptr<Store> owned_;  // Null when `inner_` is borrowed.
  Store* const inner_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_FORWARDING_STORE_H_
