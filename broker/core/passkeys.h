// Passkeys: WebAuthn credentials as the human-presence factor, next to (or,
// with the policy's `required`, instead of) the approval PIN for approvals.
// The broker is the relying party: it issues single-use, short-lived
// challenges, checks registrations and assertions (broker/crypto/webauthn.h)
// and keeps the registered credentials.
//
// Registering or removing a passkey changes the factor, so it needs the
// approval PIN, typed (an unlock window does not count). Each assertion
// answers a challenge issued for one decision ("Approve <request id>"), so
// an assertion for one request cannot approve another, and a used or
// expired challenge is refused.
//
// At rest: the credentials (id, public key, signature counter) are sealed
// under the data key with a record counter in the associated data, and the
// counter must match the latest passkey event of the audit chain, so a
// passkey planted, edited, removed or rolled back in the database (an older
// signature counter) is detected: every passkey operation then fails with
// DATA_LOSS until the passkeys are removed with the PIN.
//
// Thread-safe. Methods block (SQLite, Argon2id through the PIN): never call
// one from a gRPC reactor.
#ifndef CREDBROKER_BROKER_CORE_PASSKEYS_H_
#define CREDBROKER_BROKER_CORE_PASSKEYS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/core/approval_pin.h"
#include "broker/core/audit.h"
#include "broker/core/sealed_record.h"
#include "broker/crypto/crypto.h"
#include "broker/crypto/webauthn.h"
#include "broker/store/store.h"
#include "common/secret.h"

namespace credbroker {

struct PasskeyPolicy {
  RelyingParty rp;
  // Approvals need a passkey assertion; the PIN alone no longer suffices.
  bool required = false;
  absl::Duration challenge_lifetime = absl::Minutes(2);
  size_t max_passkeys = 16;
  size_t max_pending_challenges = 64;
};

// A registered passkey, without its key.
struct PasskeyInfo {
  std::string id;  // The credential ID, base64url.
  std::string name;
  int64_t algorithm = 0;
  uint32_t sign_count = 0;
  absl::Time created = absl::InfinitePast();
  absl::Time last_used = absl::InfinitePast();
};

// What a browser needs for a ceremony.
struct PasskeyChallenge {
  std::string challenge;  // Raw bytes.
  std::string rp_id;
  // Registration: the user handle (random, one per store); empty otherwise.
  std::string user_handle;
  // Registration: passkeys to exclude; assertion: passkeys allowed. Raw.
  std::vector<std::string> credential_ids;
  absl::Time expires = absl::InfinitePast();
};

// The raw bytes of navigator.credentials.get's answer.
struct PasskeyAssertionInput {
  std::string credential_id;
  std::string client_data_json;
  std::string authenticator_data;
  std::string signature;
};

class Passkeys {
 public:
  // All pointers must outlive this object. Call Load() before use.
  Passkeys(Store* store, const Sealer* sealer, AuditLog* audit,
           ApprovalPin* pin, Clock clock, PasskeyPolicy policy);

  // Reads the sealed record. An error only when the store cannot be read;
  // a tampered record is remembered (see the class comment).
  absl::Status Load();

  bool required() const { return policy_.required; }
  const RelyingParty& relying_party() const { return policy_.rp; }

  // A registration challenge. FAILED_PRECONDITION when the store already
  // holds max_passkeys.
  absl::StatusOr<PasskeyChallenge> BeginRegistration(const Caller& caller);

  // Checks a registration answering a challenge of BeginRegistration and
  // stores the passkey as `name`. Needs the typed PIN (ApprovalPin's codes);
  // PERMISSION_DENIED (audited, naming the reason) for a failed check;
  // INVALID_ARGUMENT for malformed input or a name over 64 characters;
  // ALREADY_EXISTS for a credential registered before.
  absl::StatusOr<PasskeyInfo> FinishRegistration(
      const SecretBytes& pin, absl::string_view name,
      absl::string_view client_data_json, absl::string_view attestation_object,
      const Caller& caller);

  // A challenge for the decision `purpose` (e.g. "Approve <request id>").
  // FAILED_PRECONDITION when no passkey is registered.
  absl::StatusOr<PasskeyChallenge> BeginAssertion(absl::string_view purpose,
                                                  const Caller& caller);

  // The human-presence check of a decision: OK for a valid assertion
  // answering a challenge issued for `purpose` (the challenge is spent
  // either way), else PERMISSION_DENIED naming the reason (a signature
  // counter that went back is audited as a possibly cloned authenticator).
  // Without an assertion: PERMISSION_DENIED when passkeys are required,
  // else ApprovalPin::Check. `what` names the operation ("Approve").
  absl::Status CheckDecision(const SecretBytes& pin,
                             const PasskeyAssertionInput* assertion,
                             absl::string_view what, absl::string_view purpose,
                             const Caller& caller);

  // The registered passkeys, oldest first. DATA_LOSS when tampered.
  absl::StatusOr<std::vector<PasskeyInfo>> List();

  // Removes the passkey `id` (base64url), or every passkey when `id` is
  // empty (also the way out of a tampered record). Needs the typed PIN.
  // NOT_FOUND for an unknown id.
  absl::Status Remove(absl::string_view id, const SecretBytes& pin,
                      const Caller& caller);

 private:
  struct Entry {
    PasskeyInfo info;
    WebAuthnCredential credential;
  };
  struct Pending {
    std::string purpose;
    absl::Time expires;
  };

  // Spends the challenge that `client_data_json` answers; returns its raw
  // bytes when it was issued for `purpose` and has not expired.
  absl::StatusOr<std::string> SpendChallengeLocked(
      absl::string_view client_data_json, absl::string_view purpose)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PasskeyChallenge IssueLocked(std::string purpose)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckAssertionLocked(const PasskeyAssertionInput& assertion,
                                    absl::string_view what,
                                    absl::string_view purpose,
                                    const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TamperedLocked(absl::string_view what, const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `entries` as record counter_ + 1 with its audit event.
  absl::Status SaveLocked(std::vector<Entry> entries, absl::string_view kind,
                          const Caller& caller, absl::string_view detail)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Serialize(const std::vector<Entry>& entries) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Parse(const SecretBytes& plain)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Refuse(absl::Status status, const Caller& caller,
                      std::string detail);

  Store* const store_;
  AuditLog* const audit_;
  const SealedRecord record_;  // The registered passkeys, as JSON.
  ApprovalPin* const pin_;
  const Clock clock_;
  const PasskeyPolicy policy_;

  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::string user_handle_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool tampered_ ABSL_GUARDED_BY(mu_) = false;
  // Issued challenges (base64url) not yet spent.
  std::map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_PASSKEYS_H_
