#include "broker/core/approval_pin.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/status_macros.h"
#include "broker/crypto/password_hash.h"
#include "common/errors.h"

namespace credbroker {
namespace {

// Meta keys. The PIN record is a SealedRecord "v2:<counter>:<hex>" of the
// Argon2id hash (empty once cleared); the older format was
// "<mac>\n<argon2id hash>". The lockout is "<failures> <locked_until unix
// micros> <mac>".
constexpr char kLockoutKey[] = "approval_pin_lockout";
// Audit kinds. Successful set / cleared / reset / sealed events name the
// record they wrote as "(record N)".
constexpr char kPinSet[] = "pin.set";
constexpr char kPinCleared[] = "pin.cleared";
constexpr char kPinReset[] = "pin.reset";
constexpr char kPinSealed[] = "pin.sealed";
constexpr char kPinRefused[] = "pin.refused";

int64_t Seconds(absl::Duration d) {
  return std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

constexpr SealedRecordFormat kRecordFormat = {
    "approval_pin", "v2:",       "credbroker.approval_pin.v2",
    "pin.",         kPinRefused, "the approval PIN record"};

}  // namespace

ApprovalPin::ApprovalPin(Store* store, const Sealer* sealer, AuditLog* audit,
                         Clock clock, PinPolicy policy,
                         PassphraseCheck store_passphrase)
    : store_(store),
      sealer_(sealer),
      audit_(audit),
      record_(kRecordFormat, store, sealer, audit),
      clock_(std::move(clock)),
      policy_(policy),
      store_passphrase_(std::move(store_passphrase)) {}

std::string ApprovalPin::LockoutMac(int failures, int64_t until) const {
  return sealer_->AuditMac(absl::StrCat("credbroker.approval_pin_lockout.v1;",
                                        failures, ";", until));
}

// The older format: an Argon2id string under a MAC. Checked as it was,
// then sealed, so that the hash is no longer readable at rest. Whether it
// was sound (and so was the lockout row written with it).
absl::StatusOr<bool> ApprovalPin::SealOlderRecordLocked(
    const std::string& text) {
  size_t nl = text.find('\n');
  std::string hash = nl == std::string::npos ? "" : text.substr(nl + 1);
  std::string mac =
      sealer_->AuditMac(absl::StrCat("credbroker.approval_pin.v1;", hash));
  if (hash.empty() ||
      !ConstantTimeEquals(absl::StrCat(mac, "\n", hash), text)) {
    tampered_ = true;
    return false;
  }
  Caller broker;
  broker.role = "broker";
  broker.peer = "credbrokerd";
  CB_RETURN_IF_ERROR(
      SaveRecordLocked(hash, 1, kPinSealed, broker,
                       "approval PIN record sealed under the data key"));
  return true;
}

absl::Status ApprovalPin::Load() {
  absl::MutexLock lock(&mu_);
  hash_.clear();
  counter_ = 0;
  tampered_ = false;
  CB_ASSIGN_OR_RETURN(LoadedRecord record, record_.Load());
  // An older pin.set names no record: its record is in the older format.
  const bool legacy_set = record.audited < 0 && record.newest_kind == kPinSet;
  bool legacy_lockout_ok = false;
  if (record.state == LoadedRecord::kNone) {
    tampered_ = legacy_set;
  } else if (record.state == LoadedRecord::kTampered) {
    tampered_ = true;
  } else if (record.state == LoadedRecord::kSealed) {
    hash_ = std::string(record.plain.Reveal());
    counter_ = record.counter;
  } else {
    CB_ASSIGN_OR_RETURN(legacy_lockout_ok, SealOlderRecordLocked(record.text));
  }
  absl::StatusOr<std::string> lockout = store_->GetMeta(kLockoutKey);
  if (!lockout.ok() && !absl::IsNotFound(lockout.status()))
    return lockout.status();
  failures_ = 0;
  locked_until_ = absl::InfinitePast();
  if (lockout.ok() && !lockout->empty()) {
    std::vector<std::string> parts = absl::StrSplit(*lockout, ' ');
    int64_t until = 0;
    int failures = 0;
    const bool parsed = parts.size() >= 2 &&
                        absl::SimpleAtoi(parts[0], &failures) &&
                        absl::SimpleAtoi(parts[1], &until);
    const bool verified =
        parsed &&
        (parts.size() == 3
             ? ConstantTimeEquals(parts[2], LockoutMac(failures, until))
             : legacy_lockout_ok);
    if (!verified) {
      // Edited to buy more guesses: refuse like an edited PIN record.
      tampered_ = true;
    } else {
      failures_ = failures;
      if (until > 0) locked_until_ = absl::FromUnixMicros(until);
      if (parts.size() == 2) CB_RETURN_IF_ERROR(SaveLockout());
    }
  }
  return absl::OkStatus();
}

absl::Status ApprovalPin::SaveLockout() {
  int64_t until = locked_until_ == absl::InfinitePast()
                      ? 0
                      : absl::ToUnixMicros(locked_until_);
  return store_->PutMeta(
      kLockoutKey,
      absl::StrCat(failures_, " ", until, " ", LockoutMac(failures_, until)));
}

absl::Status ApprovalPin::SaveRecordLocked(const std::string& hash,
                                           uint64_t counter,
                                           absl::string_view kind,
                                           const Caller& caller,
                                           absl::string_view detail) {
  CB_RETURN_IF_ERROR(
      record_.Write(SecretBytes(hash), counter,
                    EventBy(kind, caller, "ok", std::string(detail))));
  hash_ = hash;
  counter_ = counter;
  tampered_ = false;
  windows_.clear();
  return absl::OkStatus();
}

void ApprovalPin::Audit(absl::string_view kind, const Caller& caller,
                        absl::string_view outcome, std::string detail) {
  // A refusal that cannot be audited is still a refusal.
  (void)audit_->Record(EventBy(kind, caller, outcome, std::move(detail)));
}

absl::Status ApprovalPin::RecordDisabled(const Caller& caller) {
  return audit_->Record(EventBy(
      "factor.disabled", caller, "ok",
      "started without the human-presence factor: approvals need no PIN"));
}

absl::Status ApprovalPin::Refuse(absl::Status status, const Caller& caller,
                                 std::string detail) {
  Audit(kPinRefused, caller, absl::StatusCodeToString(status.code()),
        std::move(detail));
  return status;
}

absl::Status ApprovalPin::Check(const SecretBytes& pin, const Caller& caller,
                                absl::string_view what) {
  absl::MutexLock lock(&mu_);
  return CheckLocked(pin, caller, what, /*allow_window=*/true);
}

absl::Status ApprovalPin::CheckTyped(const SecretBytes& pin,
                                     const Caller& caller,
                                     absl::string_view what) {
  absl::MutexLock lock(&mu_);
  return CheckLocked(pin, caller, what, /*allow_window=*/false);
}

absl::Status ApprovalPin::CountFailureLocked(absl::string_view what,
                                             absl::string_view wrong,
                                             const Caller& caller) {
  ++failures_;
  std::string lock_note;
  if (failures_ >= policy_.free_attempts) {
    int doublings = std::min(failures_ - policy_.free_attempts, 30);
    absl::Duration lockout = std::min(
        policy_.first_lockout * (int64_t{1} << doublings), policy_.max_lockout);
    locked_until_ = clock_() + lockout;
    lock_note =
        absl::StrCat("; approvals are locked for ", Seconds(lockout), " s");
  }
  // The count must survive a restart; failing to save it fails the call.
  CB_RETURN_IF_ERROR(SaveLockout());
  return Refuse(absl::PermissionDeniedError(absl::StrCat(
                    "wrong ", wrong, " for ", what, " (", failures_,
                    failures_ == 1 ? " wrong attempt" : " wrong attempts", ")",
                    lock_note)),
                caller,
                absl::StrCat(what, ": wrong ", wrong, ", attempt ", failures_,
                             lock_note));
}

absl::Status ApprovalPin::CheckLocked(const SecretBytes& pin,
                                      const Caller& caller,
                                      absl::string_view what,
                                      bool allow_window) {
  if (tampered_) {
    return Refuse(
        absl::DataLossError(absl::StrCat(what,
                                         " refused: the approval PIN record in "
                                         "the store was altered, removed or "
                                         "replaced by an older one behind the "
                                         "broker's back. Check `credctl audit "
                                         "verify`, then restart credbrokerd "
                                         "with --reset_approval_pin and set a "
                                         "new PIN")),
        caller, absl::StrCat(what, ": PIN record tampered"));
  }
  if (hash_.empty()) {
    if (!policy_.required) return absl::OkStatus();
    return Refuse(absl::FailedPreconditionError(
                      absl::StrCat(what,
                                   " needs the approval PIN, and none is set "
                                   "yet: choose one with `credctl "
                                   "pin set` in a terminal (or in the IDE's "
                                   "approval form). Only a person "
                                   "who knows it can approve, so an agent that "
                                   "reads the approver token "
                                   "cannot approve itself")),
                  caller, absl::StrCat(what, ": no PIN set"));
  }
  CB_RETURN_IF_ERROR(CheckLockoutLocked(what, caller));
  const absl::Time now = clock_();
  if (pin.empty()) {
    return CheckUnlockWindowLocked(caller, what, allow_window, now);
  }
  CB_ASSIGN_OR_RETURN(bool match, VerifyPassword(hash_, pin));
  if (!match) return CountFailureLocked(what, "approval PIN", caller);
  return AcceptPinLocked(caller, allow_window, now);
}

absl::Status ApprovalPin::CheckUnlockWindowLocked(const Caller& caller,
                                                  absl::string_view what,
                                                  bool allow_window,
                                                  absl::Time now) {
  auto window = windows_.find(ProcessKey{caller.pid, caller.start_time});
  if (allow_window && caller.pid != 0 && window != windows_.end()) {
    if (now < window->second) return absl::OkStatus();
    windows_.erase(window);
  }
  return Refuse(absl::PermissionDeniedError(absl::StrCat(
                    what,
                    " needs the approval PIN, the human-presence factor: "
                    "type it when credctl "
                    "asks (on the terminal, or with --pin_fd N), or send it "
                    "in the `pin` "
                    "field; a correct PIN lets the same process approve "
                    "without it for ",
                    absl::FormatDuration(policy_.unlock_window))),
                caller, absl::StrCat(what, ": no PIN given"));
}

absl::Status ApprovalPin::AcceptPinLocked(const Caller& caller,
                                          bool allow_window, absl::Time now) {
  if (failures_ != 0 || locked_until_ != absl::InfinitePast()) {
    failures_ = 0;
    locked_until_ = absl::InfinitePast();
    CB_RETURN_IF_ERROR(SaveLockout());
  }
  if (allow_window && caller.pid != 0 &&
      policy_.unlock_window > absl::ZeroDuration()) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      it = it->second <= now ? windows_.erase(it) : std::next(it);
    }
    windows_[ProcessKey{caller.pid, caller.start_time}] =
        now + policy_.unlock_window;
  }
  return absl::OkStatus();
}

absl::Status ApprovalPin::CheckLockoutLocked(absl::string_view what,
                                             const Caller& caller) {
  const absl::Time now = clock_();
  if (now >= locked_until_) return absl::OkStatus();
  return Refuse(absl::ResourceExhaustedError(
                    absl::StrCat(what, " is locked after ", failures_,
                                 " wrong attempts; try again in ",
                                 Seconds(locked_until_ - now), " s")),
                caller, absl::StrCat(what, ": locked out"));
}

absl::Status ApprovalPin::CheckPassphraseLocked(const SecretBytes& passphrase,
                                                const Caller& caller) {
  CB_RETURN_IF_ERROR(CheckLockoutLocked("SetApprovalPin", caller));
  if (passphrase.empty()) {
    return Refuse(absl::PermissionDeniedError(
                      "setting the first approval PIN of a "
                      "passphrase-protected store needs the "
                      "store's passphrase (field store_passphrase; credctl "
                      "asks for it): it "
                      "shows that the person who owns the store, not a process "
                      "that read the "
                      "approver token, chooses the PIN"),
                  caller, "SetApprovalPin: no store passphrase given");
  }
  if (!store_passphrase_(passphrase).ok()) {
    return CountFailureLocked("SetApprovalPin", "store passphrase", caller);
  }
  return absl::OkStatus();
}

absl::Status ApprovalPin::Set(const SecretBytes& current,
                              const SecretBytes& new_pin,
                              const SecretBytes& store_passphrase,
                              const Caller& caller) {
  if (!new_pin.empty() && (new_pin.size() < policy_.min_length ||
                           new_pin.size() > policy_.max_length)) {
    return InvalidArgumentWithViolations(
        "the new approval PIN has the wrong length",
        {{"new_pin",
          absl::StrCat("use ", policy_.min_length, " to ", policy_.max_length,
                       " characters (empty clears the PIN)")}});
  }
  absl::MutexLock lock(&mu_);
  if (tampered_ || !hash_.empty()) {
    CB_RETURN_IF_ERROR(
        CheckLocked(current, caller, "SetApprovalPin", /*allow_window=*/false));
  } else if (store_passphrase_) {
    if (new_pin.empty()) return absl::OkStatus();  // Nothing to clear.
    CB_RETURN_IF_ERROR(CheckPassphraseLocked(store_passphrase, caller));
  }
  std::string hash;
  if (!new_pin.empty()) {
    CB_ASSIGN_OR_RETURN(hash, HashPassword(new_pin));
  }
  const char* detail = hash.empty()    ? "approval PIN cleared"
                       : hash_.empty() ? "approval PIN set"
                                       : "approval PIN changed";
  return SaveRecordLocked(hash, counter_ + 1,
                          hash.empty() ? kPinCleared : kPinSet, caller, detail);
}

absl::Status ApprovalPin::Reset(const Caller& caller) {
  absl::MutexLock lock(&mu_);
  failures_ = 0;
  locked_until_ = absl::InfinitePast();
  CB_RETURN_IF_ERROR(SaveLockout());
  // After a tampered record the counter is unknown: the next one is above
  // anything the audit log names.
  CB_ASSIGN_OR_RETURN(const uint64_t next, record_.NextCounter(counter_));
  return SaveRecordLocked(
      "", next, kPinReset, caller,
      "approval PIN reset by the operator (--reset_approval_pin)");
}

PinStatus ApprovalPin::Status(const Caller& caller) {
  absl::MutexLock lock(&mu_);
  PinStatus s;
  s.set = !hash_.empty() || tampered_;
  s.required = policy_.required;
  s.first_pin_needs_passphrase = store_passphrase_ != nullptr;
  s.failed_attempts = failures_;
  s.locked_until = locked_until_;
  s.unlock_window = policy_.unlock_window;
  auto window = windows_.find({caller.pid, caller.start_time});
  if (caller.pid != 0 && window != windows_.end() &&
      clock_() < window->second) {
    s.window_until = window->second;
  }
  return s;
}

}  // namespace credbroker
