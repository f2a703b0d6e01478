#include "broker/core/approval_pin.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/crypto/password_hash.h"

namespace credbroker {
namespace {

// Meta keys. The PIN record is "<mac>\n<argon2id hash>" ("" once cleared);
// the lockout is "<failures> <locked_until unix micros>".
constexpr char kPinKey[] = "approval_pin";
constexpr char kLockoutKey[] = "approval_pin_lockout";
// Audit kinds. Only successful pin.set / pin.cleared / pin.reset events
// tell whether a PIN should be in the store.
constexpr char kPinSet[] = "pin.set";
constexpr char kPinCleared[] = "pin.cleared";
constexpr char kPinReset[] = "pin.reset";
constexpr char kPinRefused[] = "pin.refused";

int64_t Seconds(absl::Duration d) {
  return std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

}  // namespace

ApprovalPin::ApprovalPin(Store* store, const Sealer* sealer, AuditLog* audit,
                         Clock clock, PinPolicy policy)
    : store_(store),
      sealer_(sealer),
      audit_(audit),
      clock_(std::move(clock)),
      policy_(policy) {}

std::string ApprovalPin::RecordOf(const std::string& hash) const {
  return absl::StrCat(
      sealer_->AuditMac(absl::StrCat("credbroker.approval_pin.v1;", hash)),
      "\n", hash);
}

absl::Status ApprovalPin::Load() {
  absl::MutexLock lock(&mu_);
  hash_.clear();
  tampered_ = false;
  absl::StatusOr<std::string> record = store_->GetMeta(kPinKey);
  if (!record.ok() && !absl::IsNotFound(record.status()))
    return record.status();
  if (record.ok() && !record->empty()) {
    size_t nl = record->find('\n');
    std::string hash = nl == std::string::npos ? "" : record->substr(nl + 1);
    if (hash.empty() || !ConstantTimeEquals(RecordOf(hash), *record)) {
      tampered_ = true;
    } else {
      hash_ = std::move(hash);
    }
  } else {
    // No PIN in the store: the audit log must agree that none was set.
    AuditQuery query;
    query.kind = "pin.";
    query.limit = 1000;
    std::string last;
    while (true) {
      CB_ASSIGN_OR_RETURN(std::vector<AuditRecord> events,
                          store_->ListAudit(query));
      if (events.empty()) break;
      for (const AuditRecord& e : events) {
        if (e.outcome == "ok" && e.kind != kPinRefused) last = e.kind;
      }
      query.after_sequence = events.back().sequence;
    }
    tampered_ = last == kPinSet;
  }
  absl::StatusOr<std::string> lockout = store_->GetMeta(kLockoutKey);
  if (!lockout.ok() && !absl::IsNotFound(lockout.status()))
    return lockout.status();
  failures_ = 0;
  locked_until_ = absl::InfinitePast();
  if (lockout.ok()) {
    std::vector<std::string> parts = absl::StrSplit(*lockout, ' ');
    int64_t until = 0;
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &failures_) &&
        absl::SimpleAtoi(parts[1], &until)) {
      if (until > 0) locked_until_ = absl::FromUnixMicros(until);
    } else {
      failures_ = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status ApprovalPin::SaveLockout() {
  int64_t until = locked_until_ == absl::InfinitePast()
                      ? 0
                      : absl::ToUnixMicros(locked_until_);
  return store_->PutMeta(kLockoutKey, absl::StrCat(failures_, " ", until));
}

void ApprovalPin::Audit(absl::string_view kind, const Caller& caller,
                        absl::string_view outcome, std::string detail) {
  AuditRecord event;
  event.kind = std::string(kind);
  event.role = caller.role;
  event.peer = caller.peer;
  event.outcome = std::string(outcome);
  event.detail = std::move(detail);
  // A refusal that cannot be audited is still a refusal.
  (void)audit_->Record(std::move(event));
}

absl::Status ApprovalPin::Check(const SecretBytes& pin, const Caller& caller,
                                absl::string_view what) {
  absl::MutexLock lock(&mu_);
  return CheckLocked(pin, caller, what);
}

absl::Status ApprovalPin::CheckLocked(const SecretBytes& pin,
                                      const Caller& caller,
                                      absl::string_view what) {
  if (tampered_) {
    absl::Status s = absl::DataLossError(absl::StrCat(
        what,
        " refused: the approval PIN record in the store was altered or removed "
        "behind the broker's back. Check `credctl audit verify`, then restart "
        "credbrokerd with --reset_approval_pin and set a new PIN"));
    Audit(kPinRefused, caller, absl::StatusCodeToString(s.code()),
          absl::StrCat(what, ": PIN record tampered"));
    return s;
  }
  if (hash_.empty()) return absl::OkStatus();
  const absl::Time now = clock_();
  if (now < locked_until_) {
    absl::Status s = absl::ResourceExhaustedError(
        absl::StrCat(what, " is locked after ", failures_,
                     " wrong approval PINs; try again in ",
                     Seconds(locked_until_ - now), " s"));
    Audit(kPinRefused, caller, absl::StatusCodeToString(s.code()),
          absl::StrCat(what, ": locked out"));
    return s;
  }
  if (pin.empty()) {
    absl::Status s = absl::PermissionDeniedError(absl::StrCat(
        what,
        " needs the approval PIN: this broker has one set (credctl prompts for "
        "it; over gRPC send it in the `pin` field)"));
    Audit(kPinRefused, caller, absl::StatusCodeToString(s.code()),
          absl::StrCat(what, ": no PIN given"));
    return s;
  }
  CB_ASSIGN_OR_RETURN(bool match, VerifyPassword(hash_, pin));
  if (match) {
    if (failures_ != 0 || locked_until_ != absl::InfinitePast()) {
      failures_ = 0;
      locked_until_ = absl::InfinitePast();
      CB_RETURN_IF_ERROR(SaveLockout());
    }
    return absl::OkStatus();
  }
  ++failures_;
  std::string lock_note;
  if (failures_ >= policy_.free_attempts) {
    int doublings = std::min(failures_ - policy_.free_attempts, 30);
    absl::Duration lockout = std::min(
        policy_.first_lockout * (int64_t{1} << doublings), policy_.max_lockout);
    locked_until_ = now + lockout;
    lock_note =
        absl::StrCat("; approvals are locked for ", Seconds(lockout), " s");
  }
  // The count must survive a restart; failing to save it fails the call.
  CB_RETURN_IF_ERROR(SaveLockout());
  absl::Status s = absl::PermissionDeniedError(absl::StrCat(
      "wrong approval PIN for ", what, " (", failures_,
      failures_ == 1 ? " wrong attempt" : " wrong attempts", ")", lock_note));
  Audit(kPinRefused, caller, absl::StatusCodeToString(s.code()),
        absl::StrCat(what, ": wrong PIN, attempt ", failures_, lock_note));
  return s;
}

absl::Status ApprovalPin::Set(const SecretBytes& current,
                              const SecretBytes& new_pin,
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
  if (tampered_) return CheckLocked(current, caller, "SetApprovalPin");
  if (!hash_.empty()) {
    CB_RETURN_IF_ERROR(CheckLocked(current, caller, "SetApprovalPin"));
  }
  std::string hash;
  if (!new_pin.empty()) {
    CB_ASSIGN_OR_RETURN(hash, HashPassword(new_pin));
  }
  const std::string old_record = hash_.empty() ? "" : RecordOf(hash_);
  CB_RETURN_IF_ERROR(
      store_->PutMeta(kPinKey, hash.empty() ? "" : RecordOf(hash)));
  AuditRecord event;
  event.kind = hash.empty() ? kPinCleared : kPinSet;
  event.role = caller.role;
  event.peer = caller.peer;
  event.outcome = "ok";
  event.detail = hash.empty() ? "approval PIN cleared"
                              : (hash_.empty() ? "approval PIN set"
                                               : "approval PIN changed");
  if (absl::Status s = audit_->Record(std::move(event)); !s.ok()) {
    (void)store_->PutMeta(kPinKey, old_record);
    return s;
  }
  hash_ = std::move(hash);
  return absl::OkStatus();
}

absl::Status ApprovalPin::Reset(const Caller& caller) {
  absl::MutexLock lock(&mu_);
  CB_RETURN_IF_ERROR(store_->PutMeta(kPinKey, ""));
  failures_ = 0;
  locked_until_ = absl::InfinitePast();
  CB_RETURN_IF_ERROR(SaveLockout());
  AuditRecord event;
  event.kind = kPinReset;
  event.role = caller.role;
  event.peer = caller.peer;
  event.outcome = "ok";
  event.detail = "approval PIN reset by the operator (--reset_approval_pin)";
  CB_RETURN_IF_ERROR(audit_->Record(std::move(event)));
  hash_.clear();
  tampered_ = false;
  return absl::OkStatus();
}

PinStatus ApprovalPin::Status() {
  absl::MutexLock lock(&mu_);
  PinStatus s;
  s.set = !hash_.empty() || tampered_;
  s.failed_attempts = failures_;
  s.locked_until = locked_until_;
  return s;
}

}  // namespace credbroker
