// CredentialManager's writes and diagnoses (credentials.h): Put, which
// checks and stores a new version (PrepareVersion checks and seals one for
// an approval to write), and Validate, which diagnoses candidate
// values or the stored credential (ValidateStored and its shared answers).
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/credentials_internal.h"
#include "broker/core/record_codec.h"
#include "common/errors.h"

namespace credbroker {

using credentials_internal::CheckExpiryAt;
using credentials_internal::ReadinessOf;

namespace {

constexpr size_t kGeneratedPasswordLength = 32;

void CheckExpiry(const ProviderSpec& spec, const FieldValues& values,
                 absl::Time now, bool stored, std::vector<Finding>& findings) {
  CheckExpiryAt(spec, ExpiryOf(spec, values), now, stored, findings);
}

// Field violations for every error finding, naming the request field.
std::vector<FieldViolation> ViolationsOf(const std::vector<Finding>& findings) {
  std::vector<FieldViolation> out;
  for (const Finding& f : findings) {
    if (f.severity != Severity::kError) continue;
    std::string desc = f.message;
    if (!f.fix.empty()) absl::StrAppend(&desc, " ", f.fix);
    out.push_back({f.field.empty() ? std::string("values")
                                   : absl::StrCat("values.", f.field),
                   std::move(desc)});
  }
  return out;
}

absl::Status CheckInputBounds(const FieldValues& values,
                              const SecretBytes& file) {
  std::vector<FieldViolation> violations;
  if (values.size() > kMaxFields) {
    violations.push_back(
        {"values", absl::StrCat("at most ", kMaxFields,
                                " fields may be given; got ", values.size())});
  }
  for (const auto& [name, value] : values) {
    if (name.empty() || name.size() > 64) {
      violations.push_back(
          {"values", "field names must be 1 to 64 characters long"});
    } else if (value.size() > kMaxValueBytes) {
      violations.push_back(
          {absl::StrCat("values.", name),
           absl::StrCat("the value is ", value.size(), " bytes; at most ",
                        kMaxValueBytes, " are accepted")});
    }
  }
  if (file.size() > kMaxFileBytes) {
    violations.push_back(
        {"from_file",
         absl::StrCat("the file is ", file.size(), " bytes; at most ",
                      kMaxFileBytes, " are accepted")});
  }
  if (violations.empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations("the request is too large", violations);
}

// Empty values count as not given.
void DropEmpty(FieldValues& values) {
  for (auto it = values.begin(); it != values.end();) {
    if (it->second.empty()) {
      it = values.erase(it);
    } else {
      ++it;
    }
  }
}

// INVALID_ARGUMENT for a rotation period override outside 1 day to 10
// years (zero: none).
absl::Status CheckRotationPeriod(absl::Duration rotation_period) {
  if (rotation_period != absl::ZeroDuration() &&
      (rotation_period < absl::Hours(24) ||
       rotation_period > absl::Hours(24 * 3650))) {
    return InvalidArgumentWithViolations(
        "invalid rotation period",
        {{"rotation_period",
          "give a period between 1 day and 10 years, or "
          "leave it unset for the provider's default"}});
  }
  return absl::OkStatus();
}

// Adds the `stored` values of the fields not given in `values` (Put with
// keep_existing).
void KeepStored(const ProviderSpec& spec, FieldValues stored,
                FieldValues& values) {
  for (auto& [name, value] : stored) {
    const FieldSpec* f = spec.FindField(name);
    // Derived fields are derived again from what is now given.
    if (f != nullptr && f->derived) continue;
    values.emplace(name, std::move(value));
  }
}

// Generates a value for each field named in `names` and lists it in
// `generated`; INVALID_ARGUMENT when any of them is not generatable.
absl::Status GenerateFields(const ProviderSpec& spec,
                            const std::vector<std::string>& names,
                            FieldValues& values,
                            std::vector<std::string>& generated) {
  std::vector<FieldViolation> gen_violations;
  for (const std::string& name : names) {
    const FieldSpec* f = spec.FindField(name);
    if (f == nullptr || !f->generatable) {
      gen_violations.push_back(
          {absl::StrCat("generate.", name),
           absl::StrCat("the broker can generate only fields marked "
                        "generatable in ",
                        spec.display_name, "'s form")});
      continue;
    }
    values[name] = GeneratePassword(kGeneratedPasswordLength);
    generated.push_back(name);
  }
  if (!gen_violations.empty()) {
    return InvalidArgumentWithViolations("cannot generate these fields",
                                         gen_violations);
  }
  return absl::OkStatus();
}

// Every finding about normalized values about to be stored: the
// normalizer's, the provider's rules and the expiry at `now`.
std::vector<Finding> FindingsToStore(const Provider& provider,
                                     const NormalizeResult& normalized,
                                     absl::Time now) {
  std::vector<Finding> findings = provider.Validate(normalized.values);
  std::vector<Finding> all = normalized.findings;
  all.insert(all.end(), findings.begin(), findings.end());
  CheckExpiry(provider.spec(), normalized.values, now, /*stored=*/false, all);
  return all;
}

// INVALID_ARGUMENT with a field violation for each error finding, when
// there is one: nothing is stored then.
absl::Status RefuseErrors(const ProviderSpec& spec,
                          const std::vector<Finding>& all) {
  if (!HasErrors(all)) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      absl::StrCat(spec.display_name,
                   " credential was not stored: fix the fields below"),
      ViolationsOf(all));
}

// The findings that are not errors, for Put's answer.
std::vector<Finding> WithoutErrors(std::vector<Finding> all) {
  std::vector<Finding> out;
  for (Finding& f : all) {
    if (f.severity != Severity::kError) out.push_back(std::move(f));
  }
  return out;
}

// Validate's answer about a stored credential, from its summary `s` at
// `now` (SharedValidation).
ValidateResult ValidationOf(const ProviderSpec& spec,
                            const std::string& profile,
                            const CredentialSummary& s, absl::Time now) {
  ValidateResult result;
  result.profile = profile;
  result.required_permissions = spec.required_permissions;
  result.manual_checks = spec.troubleshooting;
  result.readiness = s.readiness;
  result.findings = s.findings;
  result.missing_fields = s.missing_fields;
  result.fields = s.fields;
  // Reported even when another state (EXPIRED) takes precedence. Whether
  // the due time has passed is the same for every moment the summary holds
  // for (its span ends at the due time).
  if (now >= s.rotation_due_at) {
    result.findings.push_back(
        {"", Severity::kWarning, "rotation_due",
         absl::StrCat("this credential is older than its rotation period (",
                      absl::FormatDuration(s.rotation_due_at - s.updated_at),
                      ")"),
         absl::StrCat("create a new key in the provider's console, store it "
                      "with `credctl set ",
                      spec.id, "`, then disable the old key")});
  }
  result.valid = !HasErrors(result.findings) && result.missing_fields.empty();
  return result;
}

}  // namespace

absl::StatusOr<CredentialManager::CheckedValues> CredentialManager::CheckValues(
    PutCredentialInput input, bool read_latest) {
  CheckedValues out;
  CB_ASSIGN_OR_RETURN(out.provider, registry_->Get(input.provider));
  const ProviderSpec& spec = out.provider->spec();
  CB_ASSIGN_OR_RETURN(out.profile, ResolveProfile(spec.id, input.profile));
  CB_RETURN_IF_ERROR(CheckInputBounds(input.values, input.file_contents));
  CB_RETURN_IF_ERROR(CheckRotationPeriod(input.rotation_period));
  DropEmpty(input.values);

  out.rotation_period = input.rotation_period;
  if (input.keep_existing || read_latest) {
    absl::StatusOr<CredentialRecord> current =
        store_->GetCredential(spec.id, out.profile, 0);
    if (current.ok()) {
      if (input.keep_existing) {
        CB_ASSIGN_OR_RETURN(FieldValues stored, Open(*current));
        KeepStored(spec, std::move(stored), input.values);
        if (out.rotation_period == absl::ZeroDuration()) {
          out.rotation_period = current->rotation_period;
        }
      }
      out.latest = *std::move(current);
    } else if (!absl::IsNotFound(current.status())) {
      return current.status();
    }
  }

  for (auto& [name, value] : input.fill_in) {
    if (!value.empty()) input.values.emplace(name, std::move(value));
  }
  CB_RETURN_IF_ERROR(
      GenerateFields(spec, input.generate, input.values, out.generated));
  CB_ASSIGN_OR_RETURN(NormalizeResult normalized,
                      out.provider->Normalize(std::move(input.values),
                                              input.file_contents.Reveal()));
  std::vector<Finding> all =
      FindingsToStore(*out.provider, normalized, clock_());
  CB_RETURN_IF_ERROR(RefuseErrors(spec, all));
  out.values = std::move(normalized.values);
  out.findings = WithoutErrors(std::move(all));
  return out;
}

absl::StatusOr<PutCredentialResult> CredentialManager::Put(
    PutCredentialInput input, const Caller& caller) {
  const std::string provider = input.provider;
  const std::string profile = input.profile;
  absl::StatusOr<PutCredentialResult> result =
      PutChecked(std::move(input), caller);
  if (!result.ok()) {
    AuditRefused("credential.put", caller, provider, profile, result.status());
  }
  return result;
}

absl::StatusOr<PutCredentialResult> CredentialManager::PutChecked(
    PutCredentialInput input, const Caller& caller) {
  CB_ASSIGN_OR_RETURN(CheckedValues checked,
                      CheckValues(std::move(input), /*read_latest=*/false));
  const ProviderSpec& spec = checked.provider->spec();
  const std::string& profile = checked.profile;
  SecretBytes plaintext = EncodeFieldValues(checked.values);
  std::string fingerprint = sealer_->Fingerprint(plaintext);
  Store::AuditOfFn audit_of;
  if (audit_ != nullptr) {
    // Stored with the version, in its transaction.
    audit_of = [this, caller](const CredentialRecord& r) {
      return *ChangeEvent(
          "credential.put", caller, r.provider, r.profile, absl::OkStatus(),
          absl::StrCat("version ", r.version, ", fingerprint ", r.fingerprint));
    };
  }
  CB_ASSIGN_OR_RETURN(
      CredentialRecord record,
      store_->PutCredential(
          spec.id, profile, checked.rotation_period,
          [&](int64_t version)
              -> absl::StatusOr<std::pair<std::string, std::string>> {
            return std::make_pair(
                sealer_->Seal(plaintext,
                              RecordAssociatedData(spec.id, profile, version)),
                fingerprint);
          },
          audit_of, audit_ != nullptr ? audit_->HashFn() : nullptr));
  if (record.version_count == 0) record.version_count = record.version;
  PutCredentialResult result;
  result.credential = SummaryOf(checked.provider->spec(), record,
                                FactsOf(*checked.provider, checked.values));
  CB_RETURN_IF_ERROR(MarkDefault(result.credential));
  result.findings = std::move(checked.findings);
  result.generated = std::move(checked.generated);
  return result;
}

absl::StatusOr<CredentialManager::PreparedVersion>
CredentialManager::PrepareVersion(PutCredentialInput input) {
  CB_ASSIGN_OR_RETURN(CheckedValues checked,
                      CheckValues(std::move(input), /*read_latest=*/true));
  PreparedVersion out;
  CredentialRecord& r = out.record;
  r.provider = checked.provider->spec().id;
  r.profile = checked.profile;
  r.version = checked.latest.has_value() ? checked.latest->version + 1 : 1;
  r.rotation_period = checked.rotation_period;
  SecretBytes plaintext = EncodeFieldValues(checked.values);
  r.fingerprint = sealer_->Fingerprint(plaintext);
  r.sealed = sealer_->Seal(
      plaintext, RecordAssociatedData(r.provider, r.profile, r.version));
  out.values = std::move(checked.values);
  return out;
}

absl::StatusOr<ValidateResult> CredentialManager::Validate(
    absl::string_view provider_id, absl::string_view profile_in,
    FieldValues values, const SecretBytes& file_contents) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  CB_RETURN_IF_ERROR(CheckInputBounds(values, file_contents));
  const ProviderSpec& spec = provider->spec();
  DropEmpty(values);
  if (values.empty() && file_contents.empty()) {
    CB_ASSIGN_OR_RETURN(CredentialSummary stored,
                        Summarize(*provider, profile, 0, nullptr));
    return ValidationOf(spec, profile, stored, clock_());
  }
  ValidateResult result;
  result.profile = profile;
  result.required_permissions = spec.required_permissions;
  result.manual_checks = spec.troubleshooting;
  absl::StatusOr<NormalizeResult> normalized =
      provider->Normalize(std::move(values), file_contents.Reveal());
  if (!normalized.ok()) {
    // A file that cannot be read at all is a finding, not a failed call.
    if (!absl::IsInvalidArgument(normalized.status()))
      return normalized.status();
    for (const FieldViolation& v : GetFieldViolations(normalized.status())) {
      std::string field = v.field;
      if (absl::StartsWith(field, "values.")) field = field.substr(7);
      result.findings.push_back(
          {field, Severity::kError, "unreadable", v.description, ""});
    }
    if (result.findings.empty()) {
      result.findings.push_back({"", Severity::kError, "unreadable",
                                 std::string(normalized.status().message()),
                                 ""});
    }
    result.readiness = Readiness::kInvalid;
    return result;
  }
  result.findings = normalized->findings;
  std::vector<Finding> checks = provider->Validate(normalized->values);
  result.findings.insert(result.findings.end(), checks.begin(), checks.end());
  CheckExpiry(spec, normalized->values, clock_(), /*stored=*/false,
              result.findings);
  result.missing_fields = MissingFields(spec, normalized->values);
  result.fields = MaskFields(spec, normalized->values);
  result.readiness = ReadinessOf(result.missing_fields, result.findings, false);
  result.valid = !HasErrors(result.findings) && result.missing_fields.empty();
  return result;
}

absl::StatusOr<ValidateResult> CredentialManager::ValidateStored(
    absl::string_view provider_id, absl::string_view profile_in,
    AnswerLife* life) {
  CB_ASSIGN_OR_RETURN(const Provider* provider, registry_->Get(provider_id));
  CB_ASSIGN_OR_RETURN(std::string profile,
                      ResolveProfile(provider->spec().id, profile_in));
  AnswerLife read;
  CB_ASSIGN_OR_RETURN(CredentialSummary stored,
                      Summarize(*provider, profile, 0, &read));
  // Made at the time the summary was, so that it holds for as long.
  ValidateResult result =
      ValidationOf(provider->spec(), profile, stored, read.from);
  if (life != nullptr) *life = read;
  return result;
}

}  // namespace credbroker
