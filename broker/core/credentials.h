// CredentialManager is the broker's credential logic: normalize, validate,
// seal and store new versions; read them back masked with their readiness;
// delete; diagnose; audit each change in the transaction that makes it. It
// knows nothing of gRPC. Thread-safe: every method may be called
// concurrently (the Store serializes writes).
#ifndef CREDBROKER_BROKER_CORE_CREDENTIALS_H_
#define CREDBROKER_BROKER_CORE_CREDENTIALS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/core/caller.h"
#include "broker/crypto/crypto.h"
#include "broker/providers/registry.h"
#include "broker/store/store.h"
#include "common/secret.h"

namespace credbroker {

class AuditLog;

using Clock = std::function<absl::Time()>;

enum class Readiness {
  kReady,
  kIncomplete,
  kInvalid,
  kRotationDue,
  kExpired,
  kVerifyFailed,
};
absl::string_view ReadinessName(Readiness r);

struct MaskedField {
  std::string name;
  bool sensitive = false;
  bool set = false;
  std::string display;
};

struct CredentialSummary {
  std::string provider;
  std::string profile;
  int64_t version = 0;
  int64_t version_count = 0;
  Readiness readiness = Readiness::kReady;
  std::vector<MaskedField> fields;
  std::vector<Finding> findings;
  std::vector<std::string> missing_fields;
  absl::Time created_at;
  absl::Time updated_at;
  absl::Time rotation_due_at;
  std::string fingerprint;
  bool is_default = false;          // The provider's default profile.
  int64_t days_until_rotation = 0;  // Whole days; <= 0 once due.
  // A known expiry of the credential itself (a field marked `expiry`);
  // InfinitePast when none was given.
  absl::Time expires_at = absl::InfinitePast();
};

// One stored version, as history shows it: never its values.
struct CredentialVersionInfo {
  int64_t version = 0;
  absl::Time created_at;
  std::string fingerprint;
  bool current = false;
  absl::Duration rotation_period = absl::ZeroDuration();  // Zero: provider's.
};

struct CredentialHistory {
  std::string provider;
  std::string profile;
  std::vector<CredentialVersionInfo> versions;  // Oldest first.
};

struct RollbackResult {
  CredentialSummary credential;  // The new current version.
  int64_t restored_version = 0;
  std::vector<Finding> findings;  // Today's rules applied to the old values.
};

struct DefaultProfileChange {
  std::string provider;
  std::string profile;
  std::string previous_profile;
  bool configured = false;  // A credential is stored under `profile`.
};

// A resource binding and whether the credential behind it is unchanged.
enum class BindingState { kCurrent, kRotated, kProfileDeleted };
struct BindingView {
  BindingRecord record;
  BindingState state = BindingState::kCurrent;
  std::string note;  // For the approver when not kCurrent; never a value.
};

// The profile a need or a requirement resolves to, and why.
struct ProfileChoice {
  std::string profile;
  std::string source;                  // "requested", "binding" or "default".
  std::optional<BindingView> binding;  // The resource's binding, if any.
  std::string note;  // For the approver; "" when nothing to say.
};

struct PutCredentialInput {
  std::string provider;
  std::string profile;  // Empty: "default".
  FieldValues values;
  bool keep_existing = false;
  SecretBytes file_contents;
  std::vector<std::string> generate;
  absl::Duration rotation_period = absl::ZeroDuration();
  // Values for fields still empty once the stored ones are kept (an
  // approval fills in the need's context and the provider's defaults).
  FieldValues fill_in;
};

struct PutCredentialResult {
  CredentialSummary credential;
  std::vector<Finding> findings;
  std::vector<std::string> generated;
};

struct ValidateResult {
  bool valid = false;
  Readiness readiness = Readiness::kReady;
  std::vector<Finding> findings;
  std::vector<std::string> missing_fields;
  std::vector<std::string> required_permissions;
  std::vector<MaskedField> fields;
  // The guide's troubleshooting items that no offline check can settle.
  std::vector<std::string> manual_checks;
  std::string profile;  // The profile diagnosed.
};

struct ListCredentialsResult {
  std::vector<CredentialSummary> credentials;
  std::string next_page_token;
};

struct Requirement {
  std::string provider;
  std::string profile;
  bool configured = false;
  Readiness readiness = Readiness::kIncomplete;
  std::vector<std::string> missing_fields;
  std::vector<std::string> required_permissions;
  std::string reason;
  std::string profile_source;  // "requested", "binding" or "default".
  std::string binding_note;
};

// Limits on what a caller may send; larger input is INVALID_ARGUMENT.
inline constexpr size_t kMaxFields = 64;
inline constexpr size_t kMaxValueBytes = 64 * 1024;
inline constexpr size_t kMaxFileBytes = 256 * 1024;
inline constexpr size_t kMaxResourceBytes = 1024;

// "default" for an empty name; INVALID_ARGUMENT unless the name is 1-64 of
// [a-z0-9_.-], starting with a letter or digit. CredentialManager resolves
// an empty name to the provider's default profile instead.
absl::StatusOr<std::string> CheckProfileName(absl::string_view profile);

// The store meta key holding `provider`'s default profile.
std::string DefaultProfileKey(absl::string_view provider);

class CredentialManager {
 public:
  // `store`, `sealer`, `registry` and `audit` must outlive the manager.
  // With `audit`, every change (Put, Delete, Rollback, SetDefaultProfile)
  // is written with its audit event, naming `caller`, in one transaction:
  // when the event cannot be written, nothing changes. A refused change is
  // audited too (best effort: nothing changed). Without it, nothing is
  // audited (tests).
  CredentialManager(Store* store, const Sealer* sealer,
                    const ProviderRegistry* registry, Clock clock,
                    AuditLog* audit = nullptr);

  // In every method below an empty profile means the provider's default
  // profile (see SetDefaultProfile), and an unknown provider or a malformed
  // profile name is INVALID_ARGUMENT with a field violation.

  // INVALID_ARGUMENT (with field violations) for an unknown provider, a bad
  // profile name, unknown fields, malformed files or values that fail the
  // provider's rules (an expiry date already past included); nothing is
  // stored then. Otherwise a new version (audited as credential.put).
  absl::StatusOr<PutCredentialResult> Put(PutCredentialInput input,
                                          const Caller& caller = Caller());

  // A new version made as Put makes it (same checks and errors), sealed as
  // the version the store assigns next, but not written: the caller writes
  // `record` in its own transaction (FlowWrite::credential, which fails
  // with ABORTED when another version came first) with its audit event.
  // The caches need nothing then: the commit changes the store's mark.
  struct PreparedVersion {
    CredentialRecord record;  // Sealed; version = the next one.
    FieldValues values;       // What the version holds, normalized.
  };
  absl::StatusOr<PreparedVersion> PrepareVersion(PutCredentialInput input);

  // When an answer read from the store may be given again without reading
  // it: while the store has committed nothing since `mark` (every write,
  // an approval's included, is one of its commits) and the clock is in
  // [from, until) (the clock-dependent parts of a summary change only at
  // instants computable from the record). Never without a mark.
  struct AnswerLife {
    std::optional<Store::ChangeMark> mark;
    absl::Time from = absl::InfiniteFuture();
    absl::Time until = absl::InfinitePast();
  };
  // Whether an answer with `life` would still be the same now.
  bool StillHolds(const AnswerLife& life);

  // NOT_FOUND when nothing is stored; DATA_LOSS when the record does not
  // decrypt. `version` 0 is the current version. With `life`, how long the
  // answer holds.
  absl::StatusOr<CredentialSummary> Get(absl::string_view provider,
                                        absl::string_view profile,
                                        int64_t version,
                                        AnswerLife* life = nullptr);

  // The current values, for releasing to an approved agent (and nothing
  // else). Same errors as Get.
  struct StoredValues {
    std::string profile;  // The profile read (the default when asked so).
    int64_t version = 0;
    std::string fingerprint;
    Readiness readiness = Readiness::kReady;
    FieldValues values;
  };
  absl::StatusOr<StoredValues> GetValues(absl::string_view provider,
                                         absl::string_view profile,
                                         int64_t version);

  absl::StatusOr<ListCredentialsResult> List(absl::string_view provider,
                                             int page_size,
                                             absl::string_view page_token);

  // Number of versions removed; NOT_FOUND when none were stored. Audited
  // as credential.delete.
  absl::StatusOr<int64_t> Delete(absl::string_view provider,
                                 absl::string_view profile,
                                 const Caller& caller = Caller());

  // Diagnoses candidate values (when `values` or `file_contents` is given)
  // or the stored credential, storing nothing.
  absl::StatusOr<ValidateResult> Validate(absl::string_view provider,
                                          absl::string_view profile,
                                          FieldValues values,
                                          const SecretBytes& file_contents);
  // Validate of the stored credential (Validate with no values), with how
  // long the answer holds.
  absl::StatusOr<ValidateResult> ValidateStored(absl::string_view provider,
                                                absl::string_view profile,
                                                AnswerLife* life = nullptr);

  // For each target (a provider id or a deploy target in words), the
  // credential it needs and whether it is ready. The profile of each is
  // `profile` when given, else the one `resource` is bound to (when given
  // and bound), else the provider's default.
  absl::StatusOr<std::vector<Requirement>> ResolveRequirements(
      const std::vector<std::string>& targets, absl::string_view profile,
      absl::string_view resource = "");

  // --- History ---
  // Every version, oldest first. NOT_FOUND when nothing is stored.
  absl::StatusOr<CredentialHistory> ListVersions(absl::string_view provider,
                                                 absl::string_view profile);
  // Stores a new version with the values of `version` (which must be an
  // earlier one), keeping the profile's rotation period override.
  // INVALID_ARGUMENT for version <= 0; NOT_FOUND when the profile or the
  // version is absent; FAILED_PRECONDITION when `version` is current;
  // DATA_LOSS when it does not decrypt. Audited as credential.rollback.
  absl::StatusOr<RollbackResult> Rollback(absl::string_view provider,
                                          absl::string_view profile,
                                          int64_t version,
                                          const Caller& caller = Caller());

  // --- Default profiles ---
  // The provider's default profile: the one set, else "default".
  absl::StatusOr<std::string> DefaultProfile(absl::string_view provider);
  // Sets it (an empty profile: back to "default"). The profile need not be
  // stored yet; the result says whether it is. Audited as
  // credential.default.
  absl::StatusOr<DefaultProfileChange> SetDefaultProfile(
      absl::string_view provider, absl::string_view profile,
      const Caller& caller = Caller());
  // `profile` checked, or the provider's default when empty. `provider`
  // must be a catalog id.
  absl::StatusOr<std::string> ResolveProfile(absl::string_view provider,
                                             absl::string_view profile);

  // --- Resource bindings ---
  // The profile for a need of `provider` that asks for `profile` (may be
  // empty) and names `resource` (may be empty): see ProfileChoice.
  // `binding_of`, when set, reads the binding instead of the store (the
  // request manager's store, which may also look in a spill).
  using BindingLookup = std::function<absl::StatusOr<BindingRecord>(
      absl::string_view provider, absl::string_view resource)>;
  absl::StatusOr<ProfileChoice> ChooseProfile(
      absl::string_view provider, absl::string_view profile,
      absl::string_view resource, const BindingLookup& binding_of = nullptr);
  // Bindings with their state, ordered by provider and resource.
  absl::StatusOr<std::vector<BindingView>> ListBindings(
      absl::string_view provider);
  // Whether the credential behind `binding` is unchanged.
  absl::StatusOr<BindingView> ViewBinding(BindingRecord binding);

  const ProviderRegistry& registry() const { return *registry_; }

 private:
  // Put's checks (credentials_put.cc): the values to store as a new version
  // of input.provider/profile, normalized and checked, with the stored
  // values kept (keep_existing) and the asked fields generated. `latest` is
  // the stored latest version, when it was read (keep_existing, or
  // `read_latest`).
  struct CheckedValues {
    const Provider* provider = nullptr;
    std::string profile;
    absl::Duration rotation_period = absl::ZeroDuration();
    FieldValues values;
    std::vector<Finding> findings;  // No errors.
    std::vector<std::string> generated;
    std::optional<CredentialRecord> latest;
  };
  absl::StatusOr<CheckedValues> CheckValues(PutCredentialInput input,
                                            bool read_latest);
  // Put, Rollback and SetDefaultProfile but for auditing a refusal.
  absl::StatusOr<PutCredentialResult> PutChecked(PutCredentialInput input,
                                                 const Caller& caller);
  absl::StatusOr<DefaultProfileChange> ChangeDefaultProfile(
      absl::string_view provider, absl::string_view profile,
      const Caller& caller);
  absl::StatusOr<RollbackResult> RollbackVersion(absl::string_view provider,
                                                 absl::string_view profile,
                                                 int64_t version,
                                                 const Caller& caller);
  // The audit event of a change of provider/profile by `caller`, stamped
  // now (outcome "ok" or the status code's name). Null without `audit_`.
  std::optional<AuditRecord> ChangeEvent(absl::string_view kind,
                                         const Caller& caller,
                                         absl::string_view provider,
                                         absl::string_view profile,
                                         const absl::Status& outcome,
                                         std::string detail) const;
  // Records the event of a refused change (nothing changed, so there is no
  // transaction to join); a failed write is reported on stderr.
  void AuditRefused(absl::string_view kind, const Caller& caller,
                    absl::string_view provider, absl::string_view profile,
                    const absl::Status& refusal, std::string detail = "");

  absl::StatusOr<FieldValues> Open(const CredentialRecord& record) const;
  // What a stored version's values say, whatever the time: their masked
  // display, the provider's findings, the missing fields, the expiry.
  struct ValueFacts {
    std::vector<MaskedField> fields;
    std::vector<Finding> findings;
    std::vector<std::string> missing_fields;
    std::optional<absl::Time> expiry;
  };
  ValueFacts FactsOf(const Provider& provider, const FieldValues& values) const;
  // The summary: the facts plus what depends on the time (rotation due,
  // expiry findings, readiness). With `changes_at`, also the first instant
  // after the clock's `now` at which that part of it can change (a whole
  // day of days_until_rotation or of an expiry, the rotation due time, an
  // expiry, the start of its "expires soon" warning): the summary holds
  // for every time in [now, *changes_at).
  CredentialSummary SummaryOf(const ProviderSpec& spec,
                              const CredentialRecord& record,
                              const ValueFacts& facts) const;
  CredentialSummary SummaryOf(const ProviderSpec& spec,
                              const CredentialRecord& record,
                              const ValueFacts& facts, absl::Time now,
                              absl::Time* changes_at) const;
  // The facts of `record`, opened (DATA_LOSS when it does not open).
  absl::StatusOr<ValueFacts> StoredFacts(const Provider& provider,
                                         const CredentialRecord& record) const;
  // The summary of the stored version of an already resolved profile, and
  // how long it holds.
  absl::StatusOr<CredentialSummary> Summarize(const Provider& provider,
                                              const std::string& profile,
                                              int64_t version,
                                              AnswerLife* life);
  // Sets s.is_default from the provider's default profile.
  absl::Status MarkDefault(CredentialSummary& s);

  // Nothing read from the store is kept here: the store's index of latest
  // rows is the one cache of credential facts (broker/store/latest_index.h).
  Store* store_;
  const Sealer* sealer_;
  const ProviderRegistry* registry_;
  Clock clock_;
  AuditLog* audit_;  // May be null.
};

// Masked display of every field of `values` per the provider's spec.
std::vector<MaskedField> MaskFields(const ProviderSpec& spec,
                                    const FieldValues& values);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_CREDENTIALS_H_
