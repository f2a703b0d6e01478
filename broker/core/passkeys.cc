#include "broker/core/passkeys.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/status_macros.h"
#include "common/json.h"

namespace credbroker {
namespace {

// Audit kinds. Events that wrote a record name it as "(record N)".
constexpr char kRegistered[] = "passkey.registered";
constexpr char kRemoved[] = "passkey.removed";
constexpr char kUsed[] = "passkey.used";
constexpr char kRefused[] = "passkey.refused";
constexpr size_t kChallengeBytes = 32;
constexpr size_t kMaxNameLength = 64;

// The registered passkeys: a SealedRecord "v1:<counter>:<hex>" of JSON.
constexpr SealedRecordFormat kRecordFormat = {
    "passkeys", "v1:",    "credbroker.passkeys.v1",
    "passkey.", kRefused, "the passkeys"};

std::string RandomBytesString(size_t size) {
  std::string out(size, '\0');
  RandomBytes(reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

int64_t Seconds(absl::Time t) {
  return t == absl::InfinitePast() ? 0 : absl::ToUnixSeconds(t);
}

absl::Time FromSeconds(double s) {
  return s <= 0 ? absl::InfinitePast()
                : absl::FromUnixSeconds(static_cast<int64_t>(s));
}

}  // namespace

Passkeys::Passkeys(Store* store, const Sealer* sealer, AuditLog* audit,
                   ApprovalPin* pin, Clock clock, PasskeyPolicy policy)
    : store_(store),
      audit_(audit),
      record_(kRecordFormat, store, sealer, audit),
      pin_(pin),
      clock_(std::move(clock)),
      policy_(std::move(policy)) {}

absl::Status Passkeys::Load() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
  user_handle_.clear();
  counter_ = 0;
  tampered_ = false;
  CB_ASSIGN_OR_RETURN(LoadedRecord record, record_.Load());
  if (record.state == LoadedRecord::kSealed && Parse(record.plain).ok()) {
    counter_ = record.counter;
    return absl::OkStatus();
  }
  // None written, or not the record the audit log names (another format
  // included).
  entries_.clear();
  tampered_ = record.state != LoadedRecord::kNone;
  user_handle_ = RandomBytesString(16);
  return absl::OkStatus();
}

std::string Passkeys::Serialize(const std::vector<Entry>& entries) const {
  std::string out =
      absl::StrCat("{\"user\":", JsonQuote(Base64UrlEncode(user_handle_)),
                   ",\"passkeys\":[");
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"id\":", JsonQuote(e.info.id),
                    ",\"name\":", JsonQuote(e.info.name),
                    ",\"alg\":", e.credential.algorithm, ",\"key\":",
                    JsonQuote(Base64UrlEncode(e.credential.public_key)),
                    ",\"count\":", e.credential.sign_count,
                    ",\"created\":", Seconds(e.info.created),
                    ",\"used\":", Seconds(e.info.last_used), "}");
  }
  return absl::StrCat(out, "]}");
}

absl::Status Passkeys::Parse(const SecretBytes& plain) {
  CB_ASSIGN_OR_RETURN(JsonValue doc, ParseJson(plain.Reveal()));
  const JsonValue* list = doc.Find("passkeys");
  absl::StatusOr<std::string> user =
      Base64UrlDecode(doc.FindString("user").value_or(""));
  if (list == nullptr || !list->is_array() || !user.ok()) {
    return absl::DataLossError("malformed passkey record");
  }
  user_handle_ = *user;
  for (const JsonValue& item : list->array_items()) {
    Entry e;
    e.info.id = std::string(item.FindString("id").value_or(""));
    e.info.name = std::string(item.FindString("name").value_or(""));
    absl::StatusOr<std::string> id = Base64UrlDecode(e.info.id);
    absl::StatusOr<std::string> key =
        Base64UrlDecode(item.FindString("key").value_or(""));
    const JsonValue* alg = item.Find("alg");
    const JsonValue* count = item.Find("count");
    if (!id.ok() || !key.ok() || alg == nullptr || count == nullptr) {
      return absl::DataLossError("malformed passkey entry");
    }
    e.credential.credential_id = *id;
    e.credential.public_key = *key;
    e.credential.algorithm = static_cast<int64_t>(alg->number_value());
    e.credential.sign_count = static_cast<uint32_t>(count->number_value());
    e.info.algorithm = e.credential.algorithm;
    e.info.sign_count = e.credential.sign_count;
    const JsonValue* created = item.Find("created");
    const JsonValue* used = item.Find("used");
    e.info.created =
        FromSeconds(created != nullptr ? created->number_value() : 0);
    e.info.last_used = FromSeconds(used != nullptr ? used->number_value() : 0);
    entries_.push_back(std::move(e));
  }
  return absl::OkStatus();
}

absl::Status Passkeys::SaveLocked(std::vector<Entry> entries,
                                  absl::string_view kind, const Caller& caller,
                                  absl::string_view detail) {
  const uint64_t counter = counter_ + 1;
  CB_RETURN_IF_ERROR(
      record_.Write(SecretBytes(Serialize(entries)), counter,
                    EventBy(kind, caller, "ok", std::string(detail))));
  entries_ = std::move(entries);
  counter_ = counter;
  tampered_ = false;
  return absl::OkStatus();
}

absl::Status Passkeys::Refuse(absl::Status status, const Caller& caller,
                              std::string detail) {
  // A refusal that cannot be audited is still a refusal.
  (void)audit_->Record(EventBy(kRefused, caller,
                               absl::StatusCodeToString(status.code()),
                               std::move(detail)));
  return status;
}

absl::Status Passkeys::TamperedLocked(absl::string_view what,
                                      const Caller& caller) {
  if (!tampered_) return absl::OkStatus();
  return Refuse(absl::DataLossError(
                    absl::StrCat(what,
                                 " refused: the passkey record in the store "
                                 "was altered, removed or replaced "
                                 "by an older one behind the broker's back. "
                                 "Check `credctl audit verify`, "
                                 "then remove every passkey with `credctl "
                                 "passkey remove --all` (it needs "
                                 "the approval PIN) and register them again")),
                caller, absl::StrCat(what, ": passkey record tampered"));
}

PasskeyChallenge Passkeys::IssueLocked(std::string purpose) {
  const absl::Time now = clock_();
  for (auto it = pending_.begin(); it != pending_.end();) {
    it = it->second.expires <= now ? pending_.erase(it) : std::next(it);
  }
  while (pending_.size() >= policy_.max_pending_challenges) {
    auto oldest = std::min_element(
        pending_.begin(), pending_.end(),
        [](auto& a, auto& b) { return a.second.expires < b.second.expires; });
    pending_.erase(oldest);
  }
  PasskeyChallenge out;
  out.challenge = RandomBytesString(kChallengeBytes);
  out.rp_id = policy_.rp.id;
  out.expires = now + policy_.challenge_lifetime;
  pending_[Base64UrlEncode(out.challenge)] =
      Pending{std::move(purpose), out.expires};
  for (const Entry& e : entries_)
    out.credential_ids.push_back(e.credential.credential_id);
  return out;
}

absl::StatusOr<std::string> Passkeys::SpendChallengeLocked(
    absl::string_view client_data_json, absl::string_view purpose) {
  absl::StatusOr<JsonValue> client = ParseJson(client_data_json);
  const std::string text =
      client.ok() ? std::string(client->FindString("challenge").value_or(""))
                  : "";
  auto it = pending_.find(text);
  const bool known = it != pending_.end();
  const bool fits =
      known && it->second.purpose == purpose && clock_() < it->second.expires;
  if (known) pending_.erase(it);  // Single use, whatever the outcome.
  absl::StatusOr<std::string> raw = Base64UrlDecode(text);
  if (!fits || !raw.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "WebAuthn: the challenge is not one the broker issued for ", purpose,
        ", or it was used or expired: fetch a new one"));
  }
  return *raw;
}

absl::StatusOr<PasskeyChallenge> Passkeys::BeginRegistration(
    const Caller& caller) {
  absl::MutexLock lock(&mu_);
  CB_RETURN_IF_ERROR(TamperedLocked("RegisterPasskey", caller));
  if (entries_.size() >= policy_.max_passkeys) {
    return absl::FailedPreconditionError(
        absl::StrCat("there are ", entries_.size(),
                     " passkeys already, the most allowed; remove one first"));
  }
  PasskeyChallenge out = IssueLocked("RegisterPasskey");
  out.user_handle = user_handle_;
  return out;
}

absl::StatusOr<PasskeyInfo> Passkeys::FinishRegistration(
    const SecretBytes& pin, absl::string_view name,
    absl::string_view client_data_json, absl::string_view attestation_object,
    const Caller& caller) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name the passkey (1 to ", kMaxNameLength, " characters)"));
  }
  CB_RETURN_IF_ERROR(pin_->CheckTyped(pin, caller, "RegisterPasskey"));
  absl::MutexLock lock(&mu_);
  CB_RETURN_IF_ERROR(TamperedLocked("RegisterPasskey", caller));
  absl::StatusOr<std::string> challenge =
      SpendChallengeLocked(client_data_json, "RegisterPasskey");
  if (!challenge.ok()) {
    return Refuse(challenge.status(), caller, "RegisterPasskey: challenge");
  }
  absl::StatusOr<WebAuthnCredential> credential = VerifyRegistration(
      policy_.rp, *challenge, client_data_json, attestation_object);
  if (!credential.ok()) {
    return Refuse(credential.status(), caller,
                  absl::StrCat("RegisterPasskey: ",
                               WebAuthnRefusalReason(credential.status())));
  }
  Entry entry;
  entry.credential = *std::move(credential);
  entry.info.id = Base64UrlEncode(entry.credential.credential_id);
  entry.info.name = std::string(name);
  entry.info.algorithm = entry.credential.algorithm;
  entry.info.sign_count = entry.credential.sign_count;
  entry.info.created = clock_();
  for (const Entry& e : entries_) {
    if (e.info.id == entry.info.id) {
      return absl::AlreadyExistsError("this passkey is registered already");
    }
  }
  std::vector<Entry> next = entries_;
  next.push_back(entry);
  CB_RETURN_IF_ERROR(
      SaveLocked(std::move(next), kRegistered, caller,
                 absl::StrCat("passkey ", JsonQuote(entry.info.name),
                              " registered, id ", entry.info.id)));
  return entry.info;
}

absl::StatusOr<PasskeyChallenge> Passkeys::BeginAssertion(
    absl::string_view purpose, const Caller& caller) {
  absl::MutexLock lock(&mu_);
  CB_RETURN_IF_ERROR(TamperedLocked(purpose, caller));
  if (entries_.empty()) {
    return absl::FailedPreconditionError(
        "no passkey is registered: register one in the IDE first (it needs the "
        "approval PIN)");
  }
  return IssueLocked(std::string(purpose));
}

absl::Status Passkeys::CheckAssertionLocked(
    const PasskeyAssertionInput& assertion, absl::string_view what,
    absl::string_view purpose, const Caller& caller) {
  CB_RETURN_IF_ERROR(TamperedLocked(what, caller));
  absl::StatusOr<std::string> challenge =
      SpendChallengeLocked(assertion.client_data_json, purpose);
  if (!challenge.ok())
    return Refuse(challenge.status(), caller,
                  absl::StrCat(what, ": challenge"));
  auto entry =
      std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
        return e.credential.credential_id == assertion.credential_id;
      });
  if (entry == entries_.end()) {
    return Refuse(
        absl::PermissionDeniedError("WebAuthn: this passkey is not registered"),
        caller, absl::StrCat(what, ": unknown passkey"));
  }
  absl::StatusOr<WebAuthnAssertion> verified = VerifyAssertion(
      policy_.rp, *challenge, entry->credential, assertion.client_data_json,
      assertion.authenticator_data, assertion.signature);
  if (!verified.ok()) {
    const std::string reason = WebAuthnRefusalReason(verified.status());
    return Refuse(
        verified.status(), caller,
        absl::StrCat(what, ": ", reason,
                     reason == "counter" ? ", possibly a cloned authenticator: "
                                           "passkey " +
                                               entry->info.id
                                         : ""));
  }
  std::vector<Entry> next = entries_;
  Entry& used = next[entry - entries_.begin()];
  used.credential.sign_count = verified->sign_count;
  used.info.sign_count = verified->sign_count;
  used.info.last_used = clock_();
  return SaveLocked(
      std::move(next), kUsed, caller,
      absl::StrCat(what, " with passkey ", JsonQuote(used.info.name)));
}

absl::Status Passkeys::CheckDecision(const SecretBytes& pin,
                                     const PasskeyAssertionInput* assertion,
                                     absl::string_view what,
                                     absl::string_view purpose,
                                     const Caller& caller) {
  if (assertion != nullptr) {
    absl::MutexLock lock(&mu_);
    return CheckAssertionLocked(*assertion, what, purpose, caller);
  }
  if (policy_.required) {
    return Refuse(absl::PermissionDeniedError(absl::StrCat(
                      what,
                      " needs a passkey on this broker (--require_passkey): "
                      "the PIN alone no "
                      "longer suffices. Approve with the passkey in the IDE")),
                  caller, absl::StrCat(what, ": no passkey assertion"));
  }
  return pin_->Check(pin, caller, what);
}

absl::StatusOr<std::vector<PasskeyInfo>> Passkeys::List() {
  absl::MutexLock lock(&mu_);
  if (tampered_) {
    return absl::DataLossError(
        "the passkey record was altered behind the broker's back: remove every "
        "passkey with "
        "`credctl passkey remove --all`");
  }
  std::vector<PasskeyInfo> out;
  for (const Entry& e : entries_) out.push_back(e.info);
  return out;
}

absl::Status Passkeys::Remove(absl::string_view id, const SecretBytes& pin,
                              const Caller& caller) {
  CB_RETURN_IF_ERROR(pin_->CheckTyped(pin, caller, "RemovePasskey"));
  absl::MutexLock lock(&mu_);
  if (id.empty()) {
    if (tampered_) {
      // The counter after a tampered record: above anything audited.
      CB_ASSIGN_OR_RETURN(const uint64_t next, record_.NextCounter(counter_));
      counter_ = next - 1;
    }
    return SaveLocked({}, kRemoved, caller, "every passkey removed");
  }
  CB_RETURN_IF_ERROR(TamperedLocked("RemovePasskey", caller));
  std::vector<Entry> next;
  std::string name;
  for (const Entry& e : entries_) {
    if (e.info.id == id) {
      name = e.info.name;
    } else {
      next.push_back(e);
    }
  }
  if (next.size() == entries_.size()) {
    return absl::NotFoundError(
        absl::StrCat("no passkey has the id ", JsonQuote(id)));
  }
  return SaveLocked(
      std::move(next), kRemoved, caller,
      absl::StrCat("passkey ", JsonQuote(name), " removed, id ", id));
}

}  // namespace credbroker
