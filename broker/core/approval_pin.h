// ApprovalPin: the optional PIN that every approval must carry once set, so
// that a process holding the approver token (an agent that read it from the
// data directory) still cannot approve. The store keeps only an Argon2id
// hash, bound by a MAC under the data key so that an edited record is
// detected; a record deleted while the audit log says a PIN is set is
// detected too. Wrong PINs count toward a lockout that grows exponentially
// and survives a restart.
//
// Thread-safe. Every method may block (SQLite, Argon2id): never call one
// from a gRPC reactor. Checks are serialized, so parallel guesses cannot
// outrun the failure count.
#ifndef CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_
#define CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/common/secret.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/requests.h"
#include "broker/crypto/crypto.h"
#include "broker/store/store.h"

namespace credbroker {

struct PinPolicy {
  // Wrong PINs allowed before the first lockout.
  int free_attempts = 5;
  // The first lockout; each further wrong PIN doubles it, up to the max.
  absl::Duration first_lockout = absl::Seconds(30);
  absl::Duration max_lockout = absl::Hours(1);
  size_t min_length = 4;
  size_t max_length = 128;
};

struct PinStatus {
  bool set = false;
  int failed_attempts = 0;
  absl::Time locked_until = absl::InfinitePast();
};

class ApprovalPin {
 public:
  // All pointers must outlive this object. Call Load() before use.
  ApprovalPin(Store* store, const Sealer* sealer, AuditLog* audit, Clock clock,
              PinPolicy policy = PinPolicy());

  // Reads the PIN record and the lockout state from the store. An error
  // only when the store cannot be read; a tampered record is remembered
  // and refuses every approval (see Check).
  absl::Status Load();

  // OK when no PIN is set or `pin` is the PIN. Otherwise, audited:
  //  - PERMISSION_DENIED for a missing or wrong PIN. The caller is
  //    authenticated (its bearer token is valid); the PIN is an extra
  //    authorization step for one operation, so this is "not allowed", not
  //    UNAUTHENTICATED, which tells clients their token is bad. A missing
  //    PIN is not a guess and does not count toward the lockout.
  //  - RESOURCE_EXHAUSTED while locked out ("try again in N s"): a rate
  //    limit, like a quota; the PIN is not even checked then.
  //  - DATA_LOSS when the stored PIN record was edited or deleted behind
  //    the broker's back (reset it with credbrokerd --reset_approval_pin).
  // `what` names the operation in messages ("Approve").
  absl::Status Check(const SecretBytes& pin, const Caller& caller,
                     absl::string_view what);

  // Sets, changes or (empty `new_pin`) clears the PIN; `current` must pass
  // Check when a PIN is set. INVALID_ARGUMENT (field "new_pin") for a PIN
  // out of the policy's length bounds. The change is audited; when its
  // audit event cannot be written, the change is undone and the error
  // returned.
  absl::Status Set(const SecretBytes& current, const SecretBytes& new_pin,
                   const Caller& caller);

  // Clears the PIN and the lockout without the current PIN, for the
  // operator (credbrokerd --reset_approval_pin). Audited.
  absl::Status Reset(const Caller& caller);

  PinStatus Status();

 private:
  absl::Status CheckLocked(const SecretBytes& pin, const Caller& caller,
                           absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveLockout() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string RecordOf(const std::string& hash) const;
  void Audit(absl::string_view kind, const Caller& caller,
             absl::string_view outcome, std::string detail);

  Store* const store_;
  const Sealer* const sealer_;
  AuditLog* const audit_;
  const Clock clock_;
  const PinPolicy policy_;

  absl::Mutex mu_;
  std::string hash_ ABSL_GUARDED_BY(mu_);  // Empty: no PIN set.
  bool tampered_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time locked_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_APPROVAL_PIN_H_
