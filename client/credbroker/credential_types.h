// Plain C++ types for CredentialClient's calls about stored credentials
// (client.h): what they send and what they answer. They mirror
// protos/credbroker/v1/credential_service.proto (its comments say what each
// field means), with the conventions of types.h: unset times are
// absl::InfinitePast(), unset durations absl::ZeroDuration(), secret values
// SecretBytes.
#ifndef CREDBROKER_CLIENT_CREDBROKER_CREDENTIAL_TYPES_H_
#define CREDBROKER_CLIENT_CREDBROKER_CREDENTIAL_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/credbroker/types.h"
#include "common/secret.h"

namespace credbroker {
namespace client {

// Which stored credentials to list, one page at a time.
struct ListCredentialsOptions {
  std::string provider;    // Empty: every provider.
  int32_t page_size = 0;   // 0: the broker's default (100); at most 1000.
  std::string page_token;  // The previous page's next_page_token.
};

// One page of stored credentials, masked.
struct CredentialPage {
  std::vector<CredentialSummary> credentials;
  std::string next_page_token;  // Empty on the last page.
};

// Values to store as a new version of a provider/profile.
struct CredentialInput {
  std::string provider;
  std::string profile;  // Empty: the provider's default profile.
  FieldValues values;   // Field name to value; empty values count as unset.
  // Fields not named in `values` keep their stored value.
  bool keep_existing = false;
  // A whole key file (GCP service account, Azure JSON); empty: none.
  SecretBytes from_file;
  // Generatable fields the broker fills with a strong random value.
  std::vector<std::string> generate;
  // Override for this profile; ZeroDuration: the provider's.
  absl::Duration rotation_period = absl::ZeroDuration();
};

// The version PutCredential stored and what the broker did with the values.
struct StoredCredential {
  CredentialSummary credential;  // The new current version, masked.
  std::vector<Finding> findings;
  std::vector<std::string> generated;  // Fields the broker generated.
};

// Values to diagnose; empty `values` and `from_file`: the stored ones.
struct CredentialCandidate {
  std::string provider;
  std::string profile;  // Empty: the provider's default profile.
  FieldValues values;
  SecretBytes from_file;
};

// ValidateCredential's answer: whether the values would work, what to fix.
struct Diagnosis {
  bool valid = false;  // No error finding and no missing field.
  Readiness readiness = Readiness::kUnspecified;
  std::vector<Finding> findings;
  std::vector<std::string> missing_fields;
  std::vector<std::string> required_permissions;
  std::vector<MaskedField> fields;  // Normalized non-sensitive values.
  std::vector<std::string> manual_checks;
  std::string profile;  // The profile diagnosed.
};

// One credential some targets need, and whether it is ready.
struct Requirement {
  std::string provider;
  std::string profile;
  bool configured = false;
  Readiness readiness = Readiness::kUnspecified;
  std::vector<std::string> missing_fields;
  std::vector<std::string> required_permissions;
  std::string reason;
  std::string profile_source;  // "requested", "default" or "binding".
  std::string binding_note;
};

// One stored version: never its values.
struct CredentialVersion {
  int64_t version = 0;
  absl::Time created_at = absl::InfinitePast();
  std::string fingerprint;
  bool current = false;
  absl::Duration rotation_period = absl::ZeroDuration();  // Zero: provider's.
};

// The history of one provider/profile, oldest version first.
struct CredentialHistory {
  std::string provider;
  std::string profile;
  std::vector<CredentialVersion> versions;
};

// The new version RollbackCredential made from an earlier one.
struct RolledBackCredential {
  CredentialSummary credential;  // The new current version.
  int64_t restored_version = 0;  // The version whose values it holds.
  std::vector<Finding> findings;
};

// What SetDefaultProfile changed.
struct DefaultProfileChange {
  std::string provider;
  std::string profile;  // The default profile now.
  std::string previous_profile;
  bool configured = false;  // A credential is stored under it.
};

// Whether the credential behind a resource binding is unchanged.
enum class BindingState {
  kUnspecified = 0,
  kCurrent = 1,
  kRotated = 2,
  kProfileDeleted = 3,
};

// Which provider/profile created a named resource (cluster).
struct ResourceBinding {
  std::string resource;
  std::string provider;
  std::string profile;
  std::string fingerprint;
  int64_t credential_version = 0;
  std::string grant_id;
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
  BindingState state = BindingState::kUnspecified;
  std::string note;  // What the approver should know when not kCurrent.
};

// The wire's name ("STATE_CURRENT", ...), for printing.
absl::string_view BindingStateName(BindingState state);

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_CREDENTIAL_TYPES_H_
