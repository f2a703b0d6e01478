// ApprovalPin: the human-presence factor every approval needs. The agent
// runs as the user and can read the approver token, so a token only says
// which API a caller may use; Approve also needs the approval PIN, which
// only the person knows. By default the factor is required: until a PIN is
// set, approvals are refused with FAILED_PRECONDITION saying how to set
// one; --approval_factor=none turns it into the older optional PIN.
//
// A correct PIN opens an unlock window for the calling process (pid and
// start time, as the kernel identified it), so a person approving several
// requests from one IDE types it once; another process never shares it,
// and a caller whose process is unknown (pid 0) never gets one.
//
// At rest: the PIN's Argon2id hash is sealed under the data key (so an
// offline guess needs the key) with a record counter in its associated
// data; the counter must match the latest PIN event of the audit chain, so
// an older record put back, or a record edited or deleted, refuses every
// approval (DATA_LOSS) until the operator resets it. The lockout state
// carries a MAC. Setting the first PIN of a passphrase-protected store
// needs the store's passphrase, so a process that read the approver token
// cannot choose the PIN before the person does.
//
// Thread-safe. Every method may block (SQLite, Argon2id): never call one
// from a gRPC reactor. Checks are serialized, so parallel guesses cannot
// outrun the failure count.
#ifndef CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_
#define CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/requests.h"
#include "broker/core/sealed_record.h"
#include "broker/crypto/crypto.h"
#include "broker/store/store.h"
#include "common/secret.h"

namespace credbroker {

struct PinPolicy {
  // The factor is on: approvals need a PIN, and none set refuses them.
  // Off (--approval_factor=none): a PIN is checked only once one is set.
  bool required = true;
  // How long a correct PIN lets the same process approve without typing
  // it again. Zero: every approval carries the PIN.
  absl::Duration unlock_window = absl::Minutes(5);
  // Wrong PINs allowed before the first lockout.
  int free_attempts = 5;
  // The first lockout; each further wrong PIN doubles it, up to the max.
  absl::Duration first_lockout = absl::Seconds(30);
  absl::Duration max_lockout = absl::Hours(1);
  size_t min_length = 4;
  size_t max_length = 128;
};

// OK when `passphrase` opens the store; anything else refuses it.
using PassphraseCheck =
    std::function<absl::Status(const SecretBytes& passphrase)>;

struct PinStatus {
  bool set = false;
  bool required = false;
  // Setting the first PIN needs the store's passphrase.
  bool first_pin_needs_passphrase = false;
  int failed_attempts = 0;
  absl::Time locked_until = absl::InfinitePast();
  // The end of the asking process's unlock window (InfinitePast: none).
  absl::Time window_until = absl::InfinitePast();
  absl::Duration unlock_window = absl::ZeroDuration();
};

class ApprovalPin {
 public:
  // All pointers must outlive this object. `store_passphrase` is set for a
  // passphrase-protected store (see Set). Call Load() before use.
  ApprovalPin(Store* store, const Sealer* sealer, AuditLog* audit, Clock clock,
              PinPolicy policy = PinPolicy(),
              PassphraseCheck store_passphrase = nullptr);

  // Reads the PIN record and the lockout state from the store, moving a
  // record of the older format to the sealed one. An error only when the
  // store cannot be read or written; a tampered record is remembered and
  // refuses every approval (see Check).
  absl::Status Load();

  // OK when `pin` is the PIN, when `pin` is empty and `caller`'s unlock
  // window is open, or when the factor is off and no PIN is set.
  // Otherwise, audited:
  //  - FAILED_PRECONDITION when the factor is required and no PIN is set.
  //  - PERMISSION_DENIED for a missing or wrong PIN. The caller is
  //    authenticated (its token is valid); the PIN is an extra step for one
  //    operation, so this is "not allowed", not UNAUTHENTICATED. A missing
  //    PIN is not a guess and does not count toward the lockout.
  //  - RESOURCE_EXHAUSTED while locked out ("try again in N s").
  //  - DATA_LOSS when the stored PIN record was edited, deleted or rolled
  //    back behind the broker's back.
  // `what` names the operation in messages ("Approve").
  absl::Status Check(const SecretBytes& pin, const Caller& caller,
                     absl::string_view what);

  // As Check, but only a typed PIN counts (an unlock window does not), for
  // changes of the factor itself such as registering a passkey.
  absl::Status CheckTyped(const SecretBytes& pin, const Caller& caller,
                          absl::string_view what);

  // Sets, changes or (empty `new_pin`) clears the PIN. With a PIN set,
  // `current` must be it (typed: an unlock window does not count). With
  // none set on a passphrase-protected store, `store_passphrase` must open
  // the store (PERMISSION_DENIED otherwise; wrong ones count toward the
  // lockout). INVALID_ARGUMENT (field "new_pin") for a PIN out of the
  // policy's length bounds. Audited; when the audit event cannot be
  // written, the change is undone and the error returned. Closes every
  // unlock window.
  absl::Status Set(const SecretBytes& current, const SecretBytes& new_pin,
                   const SecretBytes& store_passphrase, const Caller& caller);

  // Clears the PIN and the lockout without the current PIN, for the
  // operator (credbrokerd --reset_approval_pin). Audited.
  absl::Status Reset(const Caller& caller);

  // The state, and `caller`'s unlock window.
  PinStatus Status(const Caller& caller);

  // Records that the broker runs without the factor (its operator,
  // `caller`, started it with --approval_factor=none): factor.disabled.
  // The error of a failed write.
  absl::Status RecordDisabled(const Caller& caller);

 private:
  using ProcessKey = std::pair<int64_t, uint64_t>;  // pid, start time.

  absl::Status CheckLocked(const SecretBytes& pin, const Caller& caller,
                           absl::string_view what, bool allow_window)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // No PIN given: OK inside the caller's open unlock window, otherwise
  // PERMISSION_DENIED (audited).
  absl::Status CheckUnlockWindowLocked(const Caller& caller,
                                       absl::string_view what,
                                       bool allow_window, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A correct PIN: clears the lockout count and opens the caller's window.
  absl::Status AcceptPinLocked(const Caller& caller, bool allow_window,
                               absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED (audited) while wrong secrets lock `what` out.
  absl::Status CheckLockoutLocked(absl::string_view what, const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckPassphraseLocked(const SecretBytes& passphrase,
                                     const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts one wrong secret and returns the refusal to give.
  absl::Status CountFailureLocked(absl::string_view what,
                                  absl::string_view wrong, const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveLockout() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `hash` ("" for none) as record `counter`, with its audit event.
  absl::Status SaveRecordLocked(const std::string& hash, uint64_t counter,
                                absl::string_view kind, const Caller& caller,
                                absl::string_view detail)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string LockoutMac(int failures, int64_t until) const;
  absl::StatusOr<bool> SealOlderRecordLocked(const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Refuse(absl::Status status, const Caller& caller,
                      std::string detail);
  void Audit(absl::string_view kind, const Caller& caller,
             absl::string_view outcome, std::string detail);

  Store* const store_;
  const Sealer* const sealer_;
  AuditLog* const audit_;
  const SealedRecord record_;  // The PIN's hash.
  const Clock clock_;
  const PinPolicy policy_;
  const PassphraseCheck store_passphrase_;

  absl::Mutex mu_;
  std::string hash_ ABSL_GUARDED_BY(mu_);  // Empty: no PIN set.
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool tampered_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time locked_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Open unlock windows by process; expired ones are dropped as met.
  std::map<ProcessKey, absl::Time> windows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_
