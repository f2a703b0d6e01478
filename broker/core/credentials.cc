// CredentialManager's shared plumbing (credentials.h): names, masking,
// the audit events of changes, opening sealed versions, what a version's
// values say (its facts) and the summary built from them, with how long it
// holds. The other methods are in credentials_put.cc (Put, Validate),
// credentials_read.cc (Get, GetValues, List, ResolveRequirements),
// credentials_history.cc (Delete, ListVersions, Rollback) and
// credentials_profiles.cc (default profiles, resource bindings, ChooseProfile).
#include "broker/core/credentials.h"

#include <iostream>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/core/audit.h"
#include "broker/core/credentials_internal.h"
#include "broker/core/record_codec.h"
#include "common/errors.h"

namespace credbroker {

using credentials_internal::CheckExpiryAt;
using credentials_internal::kDefaultProfile;
using credentials_internal::ReadinessOf;

namespace {

// A known expiry closer than this is worth a warning.
constexpr absl::Duration kExpirySoon = absl::Hours(24 * 14);

std::string FormatDay(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

// Whole days from `now` until `t`, rounded down (negative once past).
int64_t DaysUntil(absl::Time now, absl::Time t) {
  absl::Duration rem;
  int64_t days = absl::IDivDuration(t - now, absl::Hours(24), &rem);
  if (rem < absl::ZeroDuration()) --days;
  return days;
}

std::string RecordName(absl::string_view provider, absl::string_view profile,
                       int64_t version) {
  return absl::StrCat(provider, "/", profile, " version ", version);
}

}  // namespace

namespace credentials_internal {

void CheckExpiryAt(const ProviderSpec& spec, std::optional<absl::Time> expiry,
                   absl::Time now, bool stored,
                   std::vector<Finding>& findings) {
  if (!expiry.has_value()) return;
  std::string field;
  for (const FieldSpec& f : spec.fields) {
    if (f.expiry) field = f.name;
  }
  if (*expiry <= now) {
    // The guide: "For API keys - check they haven't expired"; Azure:
    // "Client secret expired".
    findings.push_back(
        {field, stored ? Severity::kWarning : Severity::kError, "expired",
         absl::StrCat("This ", spec.display_name, " credential expired on ",
                      FormatDay(*expiry), "."),
         absl::StrCat("Create a new one (see the how-to-get steps), store it "
                      "with its new expiry date, then delete the old one in ",
                      spec.display_name, "'s console.")});
  } else if (*expiry - now <= kExpirySoon) {
    findings.push_back(
        {field, Severity::kWarning, "expires_soon",
         absl::StrCat("This ", spec.display_name, " credential expires on ",
                      FormatDay(*expiry), ", in ", DaysUntil(now, *expiry),
                      " days."),
         "Create its replacement now and store it before the old one "
         "expires."});
  }
}

Readiness ReadinessOf(const std::vector<std::string>& missing,
                      const std::vector<Finding>& findings, bool rotation_due) {
  if (!missing.empty()) return Readiness::kIncomplete;
  bool expired = false;
  for (const Finding& f : findings) {
    if (f.code == "expired") {
      expired = true;
    } else if (f.severity == Severity::kError) {
      return Readiness::kInvalid;
    }
  }
  if (expired) return Readiness::kExpired;
  if (rotation_due) return Readiness::kRotationDue;
  return Readiness::kReady;
}

}  // namespace credentials_internal

absl::string_view ReadinessName(Readiness r) {
  switch (r) {
    case Readiness::kReady:
      return "READY";
    case Readiness::kIncomplete:
      return "INCOMPLETE";
    case Readiness::kInvalid:
      return "INVALID";
    case Readiness::kRotationDue:
      return "ROTATION_DUE";
    case Readiness::kExpired:
      return "EXPIRED";
    case Readiness::kVerifyFailed:
      return "VERIFY_FAILED";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::string> CheckProfileName(absl::string_view profile) {
  if (profile.empty()) return std::string(kDefaultProfile);
  bool ok = profile.size() <= 64 && absl::ascii_isalnum(profile[0]);
  for (char c : profile) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' ||
          c == '-' || c == '.')) {
      ok = false;
    }
  }
  if (!ok) {
    return InvalidArgumentWithViolations(
        "invalid profile name",
        {{"profile",
          "a profile name is 1 to 64 characters of lowercase letters, digits, "
          "'_', '-' and '.', starting with a letter or digit (e.g. "
          "\"default\", \"staging\")"}});
  }
  return std::string(profile);
}

std::vector<MaskedField> MaskFields(const ProviderSpec& spec,
                                    const FieldValues& values) {
  std::vector<MaskedField> out;
  std::set<std::string> seen;
  for (const FieldSpec& f : spec.fields) {
    MaskedField m;
    m.name = f.name;
    m.sensitive = f.sensitive;
    auto it = values.find(f.name);
    if (it != values.end() && !it->second.empty()) {
      m.set = true;
      m.display = MaskValue(f, it->second);
    }
    out.push_back(std::move(m));
    seen.insert(f.name);
  }
  // Fields outside the spec ("custom" secrets) are always sensitive.
  for (const auto& [name, value] : values) {
    if (seen.count(name)) continue;
    FieldSpec f;
    f.name = name;
    f.sensitive = true;
    MaskedField m;
    m.name = name;
    m.sensitive = true;
    m.set = !value.empty();
    m.display = m.set ? MaskValue(f, value) : "";
    out.push_back(std::move(m));
  }
  return out;
}

CredentialManager::CredentialManager(Store* store, const Sealer* sealer,
                                     const ProviderRegistry* registry,
                                     Clock clock, AuditLog* audit)
    : store_(store),
      sealer_(sealer),
      registry_(registry),
      clock_(std::move(clock)),
      audit_(audit) {}

std::optional<AuditRecord> CredentialManager::ChangeEvent(
    absl::string_view kind, const Caller& caller, absl::string_view provider,
    absl::string_view profile, const absl::Status& outcome,
    std::string detail) const {
  if (audit_ == nullptr) return std::nullopt;
  AuditRecord e =
      EventBy(kind, caller,
              outcome.ok() ? "ok" : absl::StatusCodeToString(outcome.code()),
              std::move(detail));
  e.provider = std::string(provider);
  e.profile = std::string(profile);
  return audit_->Stamped(std::move(e));
}

void CredentialManager::AuditRefused(absl::string_view kind,
                                     const Caller& caller,
                                     absl::string_view provider,
                                     absl::string_view profile,
                                     const absl::Status& refusal,
                                     std::string detail) {
  std::optional<AuditRecord> event =
      ChangeEvent(kind, caller, provider, profile, refusal, std::move(detail));
  if (!event.has_value()) return;
  absl::Status s = audit_->Record(*std::move(event));
  if (!s.ok()) {
    std::cerr << "credbrokerd: could not write an audit event: " << s.message()
              << "\n";
  }
}

absl::StatusOr<FieldValues> CredentialManager::Open(
    const CredentialRecord& record) const {
  CB_ASSIGN_OR_RETURN(
      SecretBytes plaintext,
      sealer_->Open(
          record.sealed,
          RecordAssociatedData(record.provider, record.profile, record.version),
          RecordName(record.provider, record.profile, record.version)));
  absl::StatusOr<FieldValues> values = DecodeFieldValues(plaintext);
  if (!values.ok()) {
    return absl::DataLossError(absl::StrCat(
        "stored credential ",
        RecordName(record.provider, record.profile, record.version),
        " is damaged: ", values.status().message()));
  }
  return values;
}

CredentialManager::ValueFacts CredentialManager::FactsOf(
    const Provider& provider, const FieldValues& values) const {
  const ProviderSpec& spec = provider.spec();
  ValueFacts f;
  f.fields = MaskFields(spec, values);
  f.findings = provider.Validate(values);
  f.missing_fields = MissingFields(spec, values);
  f.expiry = ExpiryOf(spec, values);
  return f;
}

CredentialSummary CredentialManager::SummaryOf(const ProviderSpec& spec,
                                               const CredentialRecord& record,
                                               const ValueFacts& facts) const {
  return SummaryOf(spec, record, facts, clock_(), nullptr);
}

CredentialSummary CredentialManager::SummaryOf(const ProviderSpec& spec,
                                               const CredentialRecord& record,
                                               const ValueFacts& facts,
                                               const absl::Time now,
                                               absl::Time* changes_at) const {
  CredentialSummary s;
  s.provider = record.provider;
  s.profile = record.profile;
  s.version = record.version;
  s.version_count = record.version_count;
  s.fields = facts.fields;
  s.findings = facts.findings;
  s.missing_fields = facts.missing_fields;
  s.created_at = record.first_created_at == absl::Time()
                     ? record.created_at
                     : record.first_created_at;
  s.updated_at = record.created_at;
  absl::Duration period = record.rotation_period > absl::ZeroDuration()
                              ? record.rotation_period
                              : spec.rotation_period;
  s.rotation_due_at = record.created_at + period;
  s.days_until_rotation = DaysUntil(now, s.rotation_due_at);
  if (facts.expiry.has_value()) s.expires_at = *facts.expiry;
  CheckExpiryAt(spec, facts.expiry, now, /*stored=*/true, s.findings);
  s.readiness =
      ReadinessOf(s.missing_fields, s.findings, now >= s.rotation_due_at);
  s.fingerprint = record.fingerprint;
  if (changes_at != nullptr) {
    absl::Time next = absl::InfiniteFuture();
    auto consider = [&](absl::Time t) {
      if (t > now && t < next) next = t;
    };
    // DaysUntil(now, t) is k while t - now >= k days: it changes at the
    // first instant after t - k days (absl::Time's resolution is a quarter
    // of a nanosecond).
    auto day_step = [&](absl::Time t) {
      consider(t - DaysUntil(now, t) * absl::Hours(24) +
               absl::Nanoseconds(1) / 4);
    };
    day_step(s.rotation_due_at);
    consider(s.rotation_due_at);  // the readiness: rotation due
    if (facts.expiry.has_value()) {
      day_step(*facts.expiry);                // "expires ... in N days"
      consider(*facts.expiry);                // expired
      consider(*facts.expiry - kExpirySoon);  // expires soon
    }
    *changes_at = next;
  }
  return s;
}

absl::StatusOr<CredentialManager::ValueFacts> CredentialManager::StoredFacts(
    const Provider& provider, const CredentialRecord& record) const {
  CB_ASSIGN_OR_RETURN(FieldValues values, Open(record));
  return FactsOf(provider, values);
}

bool CredentialManager::StillHolds(const AnswerLife& life) {
  if (!life.mark.has_value() || store_->CurrentChangeMark() != life.mark)
    return false;
  const absl::Time now = clock_();
  return life.from <= now && now < life.until;
}

absl::Status CredentialManager::MarkDefault(CredentialSummary& s) {
  CB_ASSIGN_OR_RETURN(std::string def, DefaultProfile(s.provider));
  s.is_default = s.profile == def;
  return absl::OkStatus();
}

}  // namespace credbroker
