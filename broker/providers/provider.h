// A Provider knows one credential kind: its form (fields, how-to-get steps,
// required permissions, rotation period), how to normalize what a user
// pasted, and how to validate it offline. Providers are immutable after
// construction and safe to use from any thread.
#ifndef CREDBROKER_BROKER_PROVIDERS_PROVIDER_H_
#define CREDBROKER_BROKER_PROVIDERS_PROVIDER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/secret.h"

namespace credbroker {

struct FieldSpec {
  std::string name;        // Key in FieldValues, lower_snake: "access_key_id".
  std::string label;       // "AWS Access Key ID".
  bool sensitive = false;  // Never shown back; masked in listings.
  bool optional = false;
  std::string format_hint;    // "20 characters, starts with AKIA or ASIA".
  std::string default_value;  // "us-east-1".
  bool derived = false;       // Filled from other fields (GCP project_id).
  bool generatable = false;   // The broker can generate it (Redis password).
  bool multiline = false;     // A JSON key file, a PEM block.
  // Shown as "AKIA…MPLE" in listings even though not sensitive.
  bool partially_masked = false;
  // Where the user finds the value, in the words of the guide's steps:
  // "IAM → Users → your user → Security credentials → Create access key".
  std::string where_to_find;
  // The credential's own expiry date (YYYY-MM-DD or RFC 3339), where the
  // provider shows one: past it, the stored credential is EXPIRED.
  bool expiry = false;
};

struct ProviderSpec {
  std::string id;            // "aws", "gcp", ..., "custom".
  std::string display_name;  // "Amazon Web Services".
  std::string description;
  std::vector<FieldSpec> fields;
  std::vector<std::string> how_to_get;
  std::vector<std::string> required_permissions;
  std::vector<std::string> troubleshooting;
  // The guide's security advice for this provider (dedicated account, MFA,
  // audit logs to watch).
  std::vector<std::string> best_practices;
  absl::Duration rotation_period = absl::Hours(24 * 90);
  bool arbitrary_fields = false;  // "custom": any field names.
  bool oauth = false;             // Netlify.
  std::string default_region;

  const FieldSpec* FindField(absl::string_view name) const;
};

enum class Severity { kInfo, kWarning, kError };

// One diagnosis: what is wrong with a field and what to do. Never contains a
// secret value (it may name the field, the expected format, a length).
struct Finding {
  std::string field;  // Empty: the credential as a whole.
  Severity severity = Severity::kError;
  std::string code;  // Stable id: "whitespace_trimmed", "missing_field", ...
  std::string
      message;  // "The access key ID has 19 characters; AWS key IDs have 20."
  std::string
      fix;  // "Copy the key ID again from IAM → Users → Security credentials."
};

struct NormalizeResult {
  FieldValues values;
  std::vector<Finding> findings;  // What normalization changed (kInfo) etc.
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual const ProviderSpec& spec() const = 0;

  // Cleans up what a user pasted: trims stray whitespace (and reports it),
  // strips a scheme and trailing slash from a domain, extracts fields from a
  // key file given as `file_contents` (GCP service-account JSON, Azure JSON).
  // Unknown field names are an error for every provider but "custom".
  // Returns INVALID_ARGUMENT (with field violations) only when the input
  // cannot be interpreted at all (malformed JSON file); format problems of
  // individual fields are left to Validate.
  virtual absl::StatusOr<NormalizeResult> Normalize(
      FieldValues values, absl::string_view file_contents) const = 0;

  // Offline checks of normalized values: required fields present, formats.
  // Returns every finding; a credential is valid when none is kError.
  virtual std::vector<Finding> Validate(const FieldValues& values) const = 0;
};

// Names of required (non-optional, non-derived) fields missing in `values`.
std::vector<std::string> MissingFields(const ProviderSpec& spec,
                                       const FieldValues& values);

bool HasErrors(const std::vector<Finding>& findings);

// An expiry value: "YYYY-MM-DD" (the start of that day, UTC, as the
// consoles show a date) or an RFC 3339 time ("2026-11-26T12:00:00Z", as AWS
// STS prints Expiration). nullopt when it is neither.
std::optional<absl::Time> ParseExpiry(absl::string_view value);

// The expiry of the credential in `values` (the first field of `spec`
// marked `expiry` that holds a parseable value), or nullopt.
std::optional<absl::Time> ExpiryOf(const ProviderSpec& spec,
                                   const FieldValues& values);

// The display form of a stored value in a listing: plain fields in full,
// partially masked fields as "AKIA…MPLE", sensitive ones as "…MPLE" when long
// enough to keep 4 characters hidden from guessing, else "set".
std::string MaskValue(const FieldSpec& spec, const SecretBytes& value);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_PROVIDERS_PROVIDER_H_
