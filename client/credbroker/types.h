// Plain C++ types for what the broker's services exchange, shared by the
// client library's calls (client.h, agent.h, approval.h). They mirror
// protos/credbroker/v1/types.proto field for field (its comments say what
// each field means); no generated protobuf type appears in the client's
// public headers.
//
// Conventions:
// - Times are absl::Time; absl::InfinitePast() means "not set".
// - Durations are absl::Duration; absl::ZeroDuration() means "not set".
// - Secret values (credential values, passphrases, PINs) are SecretBytes:
//   locked in memory where the system allows and wiped when destroyed.
// - Enums keep the wire's numbers; kUnspecified is 0.
#ifndef CREDBROKER_CLIENT_CREDBROKER_TYPES_H_
#define CREDBROKER_CLIENT_CREDBROKER_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/secret.h"

namespace credbroker {
namespace client {

// One field of a provider's credential form.
struct FieldSpec {
  std::string name;   // Key of the values maps, e.g. "access_key_id".
  std::string label;  // What a form shows.
  bool sensitive = false;
  bool optional = false;
  std::string format_hint;
  std::string default_value;
  bool derived = false;      // Filled in by the broker from other fields.
  bool generatable = false;  // The broker can generate it.
  bool multiline = false;
};

// A provider the broker can hold credentials for, with the guide's
// instructions.
struct ProviderInfo {
  std::string id;  // "aws", "gcp", ..., "custom".
  std::string display_name;
  std::string description;
  std::vector<FieldSpec> fields;  // In form order.
  std::vector<std::string> how_to_get;
  std::vector<std::string> required_permissions;
  absl::Duration rotation_period = absl::ZeroDuration();
  bool arbitrary_fields = false;
  bool oauth = false;
  std::vector<std::string> troubleshooting;
  std::string default_region;
  std::string default_profile;
};

// Whether a stored credential can be used.
enum class Readiness {
  kUnspecified = 0,
  kReady = 1,
  kIncomplete = 2,
  kInvalid = 3,
  kRotationDue = 4,
  kExpired = 5,
  kVerifyFailed = 6,
};

enum class Severity {
  kUnspecified = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
};

// One diagnosis about one field; never contains a secret value.
struct Finding {
  std::string field;  // Empty for the credential as a whole.
  Severity severity = Severity::kUnspecified;
  std::string code;  // Stable id, e.g. "whitespace_trimmed".
  std::string message;
  std::string fix;
};

// A stored field as an approver may see it: secrets masked.
struct MaskedField {
  std::string name;
  bool sensitive = false;
  bool set = false;
  std::string display;
};

// A configured provider/profile, its current version and whether it works.
struct CredentialSummary {
  std::string provider;
  std::string profile;
  int64_t version = 0;
  Readiness readiness = Readiness::kUnspecified;
  std::vector<MaskedField> fields;
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
  absl::Time rotation_due_at = absl::InfinitePast();
  std::vector<Finding> findings;
  std::string fingerprint;
  int64_t version_count = 0;
  bool is_default = false;
  int64_t days_until_rotation = 0;
  absl::Time expires_at = absl::InfinitePast();
};

// What an agent asks for.
struct CredentialNeeded {
  std::string need_id;
  std::string provider;
  std::string profile;  // Empty: the bound or the default profile.
  std::string action;
  std::map<std::string, std::string> context;
  absl::Duration requested_ttl = absl::ZeroDuration();
};

// How far an approval reaches.
enum class Scope {
  kUnspecified = 0,  // In an approval: kOnce.
  kOnce = 1,
  kSession = 2,
  kStanding = 3,
};

// Credential values released to an agent for one approved need.
struct Grant {
  std::string grant_id;
  std::string provider;
  std::string profile;
  int64_t credential_version = 0;
  FieldValues values;  // Secrets included.
  Scope scope = Scope::kUnspecified;
  absl::Time expires_at = absl::InfinitePast();
  std::string request_id;
  std::string action;
};

// A grant as the approver lists it: no values.
struct GrantInfo {
  std::string grant_id;
  std::string provider;
  std::string profile;
  int64_t credential_version = 0;
  Scope scope = Scope::kUnspecified;
  absl::Time created_at = absl::InfinitePast();
  absl::Time expires_at = absl::InfinitePast();
  std::string request_id;
  std::string action;
  std::string agent_session;
  bool revoked = false;
  bool released = false;
  absl::Time ended_at = absl::InfinitePast();
  std::string end_reason;
};

// Where a credential need stands.
enum class RequestState {
  kUnspecified = 0,
  kPendingApproval = 1,
  kNeedsInput = 2,
  kGranted = 3,
  kDenied = 4,
  kExpired = 5,
  kCancelled = 6,
  kRevoked = 7,
  kRejected = 8,
};

// A pending (or decided) request as approvers see it.
struct ApprovalRequest {
  std::string request_id;
  CredentialNeeded need;
  RequestState state = RequestState::kUnspecified;
  std::vector<std::string> missing_fields;
  absl::Time created_at = absl::InfinitePast();
  absl::Time expires_at = absl::InfinitePast();
  std::string agent_session;
  bool agent_connected = false;
  std::string agent_peer;
  Readiness credential_readiness = Readiness::kUnspecified;
  std::string decision;
  std::string binding_note;
};

// One entry of the audit log; never carries a secret value.
struct AuditEvent {
  int64_t sequence = 0;
  absl::Time time = absl::InfinitePast();
  std::string kind;
  std::string role;
  std::string peer;
  std::string provider;
  std::string profile;
  std::string request_id;
  std::string grant_id;
  std::string action;
  std::string outcome;
  std::string detail;
  std::string hash;
  std::string prev_hash;
};

// What a browser needs for a WebAuthn ceremony. Byte fields are raw bytes.
struct PasskeyChallenge {
  std::string challenge;
  std::string rp_id;
  std::string user_handle;
  std::vector<std::string> credential_ids;
  absl::Time expires = absl::InfinitePast();
  std::vector<std::string> origins;
  bool user_verification_required = false;
};

// A passkey's answer to navigator.credentials.get, raw bytes.
struct PasskeyAssertion {
  std::string credential_id;
  std::string client_data_json;
  std::string authenticator_data;
  std::string signature;
};

// The wire's names ("READINESS_READY", "SCOPE_ONCE", ...), for printing.
absl::string_view ReadinessName(Readiness readiness);
absl::string_view SeverityName(Severity severity);
absl::string_view ScopeName(Scope scope);
absl::string_view RequestStateName(RequestState state);

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_TYPES_H_
