// Plain C++ types for the approver's access calls of CredentialClient
// (client.h): grants, standing approvals, the audit log, the approval PIN,
// passkeys and the store's lock. They mirror the messages of
// protos/credbroker/v1/credential_service.proto and lock_service.proto
// (whose comments say what each field means), with the conventions of
// types.h: absl::InfinitePast() is an unset time, absl::ZeroDuration() an
// unset duration, enums keep the wire's numbers, and PINs and passphrases
// are SecretBytes.
#ifndef CREDBROKER_CLIENT_CREDBROKER_ACCESS_TYPES_H_
#define CREDBROKER_CLIENT_CREDBROKER_ACCESS_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/credbroker/types.h"
#include "common/secret.h"

namespace credbroker {
namespace client {

// Which grants ListGrants returns, one page at a time.
struct GrantQuery {
  bool include_ended = false;  // Also released, revoked and expired grants.
  int32_t page_size = 0;       // 0: the broker's default (100); at most 1000.
  std::string page_token;      // The previous page's next_page_token.
};

// One page of grants, oldest first.
struct GrantPage {
  std::vector<GrantInfo> grants;
  std::string next_page_token;  // Empty on the last page.
};

// Which audit events ListAuditEvents returns, one page at a time.
struct AuditQuery {
  absl::Time since = absl::InfinitePast();  // Unset: from the first event.
  absl::Time until = absl::InfinitePast();  // Events before it; unset: no end.
  std::string provider;                     // Empty: every provider.
  std::string kind;                         // Empty: every kind.
  int32_t page_size = 0;   // 0: the broker's default (100); at most 1000.
  std::string page_token;  // The previous page's next_page_token.
};

// One page of audit events, oldest first.
struct AuditPage {
  std::vector<AuditEvent> events;
  std::string next_page_token;  // Empty on the last page.
};

// What VerifyAuditLog found walking the audit log's hash chain.
struct AuditLogCheck {
  bool intact = false;             // Every event's hash and link verified.
  int64_t events_checked = 0;      // Events intact before any break.
  int64_t broken_at_sequence = 0;  // The first bad event; 0 when intact.
  std::string problem;             // What is wrong there, in words.
};

// An approval made with scope kStanding: it grants matching needs until it
// expires or is revoked.
struct StandingApproval {
  std::string id;
  std::string provider;
  std::string profile;
  std::string action_pattern;
  absl::Time created_at = absl::InfinitePast();
  absl::Time expires_at = absl::InfinitePast();
  bool revoked = false;
};

// A change of the approval PIN: set (no PIN yet), change, or clear (empty
// new_pin).
struct PinChange {
  SecretBytes current_pin;  // Required when a PIN is set.
  SecretBytes new_pin;      // 4 to 128 bytes; empty clears the PIN.
  // The store's passphrase, for the first PIN of a passphrase-protected
  // store (ApprovalPinStatus::first_pin_needs_passphrase).
  SecretBytes store_passphrase;
};

// The approval PIN's state; never the PIN or its hash.
struct ApprovalPinStatus {
  bool pin_set = false;
  int32_t failed_attempts = 0;  // Wrong PINs since the last right one.
  // Set while approvals are locked after too many wrong PINs.
  absl::Time locked_until = absl::InfinitePast();
  bool required = false;  // False only with --approval_factor=none.
  bool first_pin_needs_passphrase = false;
  // Set while the asking process may approve without the PIN.
  absl::Time window_until = absl::InfinitePast();
  // How long a correct PIN opens that window for. Zero: never (a value,
  // not "unset", for this field).
  absl::Duration unlock_window = absl::ZeroDuration();
  bool passkey_required = false;
  int32_t passkeys = 0;  // How many are registered.
};

// The browser's answer to navigator.credentials.create, and the PIN.
struct PasskeyRegistration {
  SecretBytes pin;                 // The approval PIN, typed.
  std::string name;                // 1 to 64 characters, e.g. "YubiKey 5".
  std::string client_data_json;    // Raw bytes.
  std::string attestation_object;  // Raw bytes.
};

// A registered passkey (never its key).
struct Passkey {
  std::string id;  // The credential ID, base64url without padding.
  std::string name;
  int64_t algorithm = 0;  // COSE: -7 ES256, -8 EdDSA.
  uint32_t sign_count = 0;
  absl::Time created = absl::InfinitePast();
  absl::Time last_used = absl::InfinitePast();  // Unset: never used.
};

struct PasskeyList {
  std::vector<Passkey> passkeys;
  bool required = false;  // Approvals need a passkey (--require_passkey).
};

// Which passkey RemovePasskey removes: the one with `id`, or all.
struct PasskeyRemoval {
  std::string id;  // Empty with `all`.
  bool all = false;
  SecretBytes pin;  // The approval PIN, typed.
};

// What protects the store's key at rest.
enum class KeySource {
  kUnspecified = 0,
  kPassphrase = 1,  // Argon2id of a passphrase: nothing on disk opens it.
  kKeyFile = 2,     // A 0600 file any process running as the user can read.
};

struct LockState {
  bool locked = false;
  std::string message;  // In words, e.g. how to unlock.
  KeySource key_source = KeySource::kUnspecified;
  std::string key_file;                                   // With kKeyFile.
  absl::Duration auto_lock_after = absl::ZeroDuration();  // Zero: never.
};

// A change of what protects the store's key.
struct KeyChange {
  // Required for a passphrase store, ignored for a key-file store.
  SecretBytes current_passphrase;
  KeySource to = KeySource::kUnspecified;  // kPassphrase or kKeyFile.
  SecretBytes new_passphrase;  // With kPassphrase: at least 8 characters.
  // The approval PIN, typed (empty: the calling process's unlock window).
  SecretBytes pin;
};

struct RekeyResult {
  KeySource key_source = KeySource::kUnspecified;  // What protects it now.
  std::string key_file;                            // With kKeyFile.
  std::string message;  // What changed and how to start the broker now.
};

// The wire's name ("KEY_SOURCE_PASSPHRASE", ...), for printing.
absl::string_view KeySourceName(KeySource source);

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_ACCESS_TYPES_H_
