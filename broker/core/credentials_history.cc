// CredentialManager's history (credentials.h): Delete, which removes every
// version of a profile, ListVersions and Rollback.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/credentials_internal.h"
#include "broker/core/record_codec.h"
#include "common/errors.h"

namespace credbroker {

absl::StatusOr<int64_t> CredentialManager::Delete(absl::string_view provider_id,
                                                  absl::string_view profile_in,
                                                  const Caller& caller) {
  absl::StatusOr<const Provider*> provider = registry_->Get(provider_id);
  absl::StatusOr<std::string> profile =
      provider.ok() ? ResolveProfile((*provider)->spec().id, profile_in)
                    : provider.status();
  if (!profile.ok()) {
    AuditRefused("credential.delete", caller, provider_id,
                 profile_in.empty() ? "default" : profile_in, profile.status());
    return profile.status();
  }
  const std::string& id = (*provider)->spec().id;
  Store::DeleteAuditFn audit_of;
  if (audit_ != nullptr) {
    // Written with the deletion, in its transaction.
    audit_of = [&](int64_t removed) {
      return *ChangeEvent("credential.delete", caller, id, *profile,
                          absl::OkStatus(),
                          absl::StrCat(removed, " versions removed"));
    };
  }
  absl::StatusOr<int64_t> deleted = store_->DeleteCredential(
      id, *profile, audit_of, audit_ != nullptr ? audit_->HashFn() : nullptr);
  if (!deleted.ok()) {
    AuditRefused("credential.delete", caller, id, *profile, deleted.status());
  }
  return deleted;
}

absl::StatusOr<CredentialHistory> CredentialManager::ListVersions(
    absl::string_view provider_id, absl::string_view profile_in) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CredentialHistory history;
  history.provider = provider->spec().id;
  CB_ASSIGN_OR_RETURN(history.profile,
                      ResolveProfile(history.provider, profile_in));
  CB_ASSIGN_OR_RETURN(std::vector<CredentialRecord> records,
                      store_->ListVersions(history.provider, history.profile));
  if (records.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no credential stored for ", history.provider, "/", history.profile));
  }
  const int64_t latest = records.back().version;
  for (const CredentialRecord& r : records) {
    CredentialVersionInfo v;
    v.version = r.version;
    v.created_at = r.created_at;
    v.fingerprint = r.fingerprint;
    v.current = r.version == latest;
    v.rotation_period = r.rotation_period;
    history.versions.push_back(std::move(v));
  }
  return history;
}

absl::StatusOr<RollbackResult> CredentialManager::Rollback(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version, const Caller& caller) {
  absl::StatusOr<RollbackResult> result =
      RollbackVersion(provider_id, profile_in, version, caller);
  if (!result.ok()) {
    AuditRefused("credential.rollback", caller, provider_id, profile_in,
                 result.status(), absl::StrCat("restore version ", version));
  }
  return result;
}

absl::StatusOr<RollbackResult> CredentialManager::RollbackVersion(
    absl::string_view provider_id, absl::string_view profile_in,
    int64_t version, const Caller& caller) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  const ProviderSpec& spec = provider->spec();
  CB_ASSIGN_OR_RETURN(std::string profile, ResolveProfile(spec.id, profile_in));
  if (version <= 0) {
    return InvalidArgumentWithViolations(
        "invalid version",
        {{"version",
          "give the number of an earlier version (1, 2, ...), as "
          "ListCredentialVersions shows it"}});
  }
  CB_ASSIGN_OR_RETURN(CredentialRecord current,
                      store_->GetCredential(spec.id, profile, 0));
  if (current.version == version) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", version, " of ", spec.id, "/", profile,
                     " is already the current version; nothing to roll back"));
  }
  CB_ASSIGN_OR_RETURN(CredentialRecord old,
                      store_->GetCredential(spec.id, profile, version));
  CB_ASSIGN_OR_RETURN(FieldValues values, Open(old));
  RollbackResult result;
  result.restored_version = version;
  // The old values are restored as they were; today's rules are reported,
  // not enforced, so that a rollback always brings back what worked.
  result.findings = provider->Validate(values);
  SecretBytes plaintext = EncodeFieldValues(values);
  std::string fingerprint = sealer_->Fingerprint(plaintext);
  Store::AuditOfFn audit_of;
  if (audit_ != nullptr) {
    // Written with the new version, in its transaction.
    audit_of = [&](const CredentialRecord& r) {
      return *ChangeEvent(
          "credential.rollback", caller, r.provider, r.profile,
          absl::OkStatus(),
          absl::StrCat("version ", version, " restored as version ", r.version,
                       ", fingerprint ", r.fingerprint));
    };
  }
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->PutCredential(
          spec.id, profile, current.rotation_period,
          [&](int64_t v)
              -> absl::StatusOr<std::pair<std::string, std::string>> {
            return std::make_pair(
                sealer_->Seal(plaintext,
                              RecordAssociatedData(spec.id, profile, v)),
                fingerprint);
          },
          audit_of, audit_ != nullptr ? audit_->HashFn() : nullptr));
  result.credential =
      SummaryOf(provider->spec(), record, FactsOf(*provider, values));
  CB_RETURN_IF_ERROR(MarkDefault(result.credential));
  return result;
}

}  // namespace credbroker
