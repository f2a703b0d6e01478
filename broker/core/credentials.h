// CredentialManager is the broker's credential logic: normalize, validate,
// seal and store new versions; read them back masked with their readiness;
// delete; diagnose. It knows nothing of gRPC. Thread-safe: every method may
// be called concurrently (the Store serializes writes).
#ifndef CREDBROKER_BROKER_CORE_CREDENTIALS_H_
#define CREDBROKER_BROKER_CORE_CREDENTIALS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/common/secret.h"
#include "broker/crypto/crypto.h"
#include "broker/providers/registry.h"
#include "broker/store/store.h"

namespace credbroker {

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
};

struct PutCredentialInput {
  std::string provider;
  std::string profile;  // Empty: "default".
  FieldValues values;
  bool keep_existing = false;
  SecretBytes file_contents;
  std::vector<std::string> generate;
  absl::Duration rotation_period = absl::ZeroDuration();
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
};

// Limits on what a caller may send; larger input is INVALID_ARGUMENT.
inline constexpr size_t kMaxFields = 64;
inline constexpr size_t kMaxValueBytes = 64 * 1024;
inline constexpr size_t kMaxFileBytes = 256 * 1024;

// "default" for an empty name; INVALID_ARGUMENT unless the name is 1-64 of
// [a-z0-9_.-], starting with a letter or digit.
absl::StatusOr<std::string> CheckProfileName(absl::string_view profile);

class CredentialManager {
 public:
  // `store`, `sealer` and `registry` must outlive the manager.
  CredentialManager(Store* store, const Sealer* sealer,
                    const ProviderRegistry* registry, Clock clock);

  // INVALID_ARGUMENT (with field violations) for an unknown provider, a bad
  // profile name, unknown fields, malformed files or values that fail the
  // provider's rules; nothing is stored then. Otherwise a new version.
  absl::StatusOr<PutCredentialResult> Put(PutCredentialInput input);

  // NOT_FOUND when nothing is stored; DATA_LOSS when the record does not
  // decrypt. `version` 0 is the current version.
  absl::StatusOr<CredentialSummary> Get(absl::string_view provider,
                                        absl::string_view profile,
                                        int64_t version);

  // The current values, for releasing to an approved agent (and nothing
  // else). Same errors as Get.
  struct StoredValues {
    int64_t version = 0;
    FieldValues values;
  };
  absl::StatusOr<StoredValues> GetValues(absl::string_view provider,
                                         absl::string_view profile,
                                         int64_t version);

  absl::StatusOr<ListCredentialsResult> List(absl::string_view provider,
                                             int page_size,
                                             absl::string_view page_token);

  // Number of versions removed; NOT_FOUND when none were stored.
  absl::StatusOr<int64_t> Delete(absl::string_view provider,
                                 absl::string_view profile);

  // Diagnoses candidate values (when `values` or `file_contents` is given)
  // or the stored credential, storing nothing.
  absl::StatusOr<ValidateResult> Validate(absl::string_view provider,
                                          absl::string_view profile,
                                          FieldValues values,
                                          const SecretBytes& file_contents);

  // For each target (a provider id or a deploy target in words), the
  // credential it needs and whether it is ready.
  absl::StatusOr<std::vector<Requirement>> ResolveRequirements(
      const std::vector<std::string>& targets, absl::string_view profile);

  const ProviderRegistry& registry() const { return *registry_; }

 private:
  absl::StatusOr<FieldValues> Open(const CredentialRecord& record) const;
  CredentialSummary Summarize(const Provider& provider,
                              const CredentialRecord& record,
                              const FieldValues& values) const;

  Store* store_;
  const Sealer* sealer_;
  const ProviderRegistry* registry_;
  Clock clock_;
};

// Masked display of every field of `values` per the provider's spec.
std::vector<MaskedField> MaskFields(const ProviderSpec& spec,
                                    const FieldValues& values);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_CREDENTIALS_H_
