#include "broker/providers/checks.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/errors.h"

namespace credbroker {
namespace providers_internal {

BasicProvider::BasicProvider(ProviderSpec spec) : spec_(std::move(spec)) {
  // The guide's general items follow each provider's own.
  for (std::string& line : GeneralTroubleshooting()) {
    spec_.troubleshooting.push_back(std::move(line));
  }
  for (std::string& line : GeneralBestPractices()) {
    spec_.best_practices.push_back(std::move(line));
  }
}

bool BasicProvider::AcceptsFieldName(absl::string_view name) const {
  return spec_.FindField(name) != nullptr;
}

std::string BasicProvider::UnknownFieldDescription(
    absl::string_view name) const {
  std::vector<absl::string_view> known;
  for (const FieldSpec& f : spec_.fields) known.push_back(f.name);
  return absl::StrCat(spec_.display_name,
                      " credentials have no field with this name; the fields "
                      "are: ",
                      absl::StrJoin(known, ", "));
}

absl::StatusOr<NormalizeResult> BasicProvider::Normalize(
    FieldValues values, absl::string_view file_contents) const {
  std::vector<FieldViolation> violations;
  for (const auto& entry : values) {
    if (!AcceptsFieldName(entry.first)) {
      violations.push_back({absl::StrCat("values.", entry.first),
                            UnknownFieldDescription(entry.first)});
    }
  }
  if (!violations.empty()) {
    return InvalidArgumentWithViolations(
        absl::StrCat("unknown field names for ", spec_.display_name),
        violations);
  }

  NormalizeResult result;
  for (auto& [name, value] : values) {
    absl::string_view raw = value.Reveal();
    absl::string_view trimmed = TrimPasted(raw);
    if (trimmed.size() != raw.size()) {
      result.findings.push_back(
          InfoFinding(name, "whitespace_trimmed",
                      absl::StrCat("Removed spaces or line breaks around the ",
                                   LabelOf(name), ".")));
      if (trimmed.empty()) continue;  // Blank: the field was not given.
      result.values.emplace(name, SecretBytes(trimmed));
    } else if (!raw.empty()) {
      result.values.emplace(name, std::move(value));
    }
  }
  values.clear();
  absl::Status status = NormalizeMore(file_contents, result);
  if (!status.ok()) return status;
  return result;
}

absl::Status BasicProvider::NormalizeMore(absl::string_view file_contents,
                                          NormalizeResult& result) const {
  if (TrimPasted(file_contents).empty()) return absl::OkStatus();
  return InvalidArgumentWithViolations(
      absl::StrCat(spec_.display_name, " credentials are not read from a file"),
      {{"from_file",
        absl::StrCat(spec_.display_name,
                     " takes its values in the form's fields, not from a "
                     "file; enter each value in its own field")}});
}

std::vector<Finding> BasicProvider::Validate(const FieldValues& values) const {
  std::vector<Finding> findings;
  for (const FieldSpec& f : spec_.fields) {
    if (f.optional || f.derived || Has(values, f.name)) continue;
    findings.push_back(ErrorFinding(
        f.name, "missing_field", absl::StrCat("The ", f.label, " is required."),
        absl::StrCat("Find it in ", WhereToFind(f.name), ".")));
  }
  for (const FieldSpec& f : spec_.fields) {
    absl::string_view v = ValueOf(values, f.name);
    if (!f.expiry || v.empty() || ParseExpiry(v).has_value()) continue;
    findings.push_back(ErrorFinding(
        f.name, "bad_format",
        absl::StrCat("The ", f.label,
                     " is not a date: give it as YYYY-MM-DD (e.g. "
                     "2026-12-31) or as an RFC 3339 time."),
        absl::StrCat("Copy the expiry date shown in ", WhereToFind(f.name),
                     ", or leave the field empty if the credential does not "
                     "expire.")));
  }
  CheckFields(values, findings);
  return findings;
}

FieldSpec ExpiryField(std::string label, std::string where_to_find) {
  FieldSpec f;
  f.name = "expires_at";
  f.label = std::move(label);
  f.optional = true;
  f.expiry = true;
  f.format_hint = "YYYY-MM-DD, if the credential has an expiry date";
  f.where_to_find = std::move(where_to_find);
  return f;
}

std::string BasicProvider::LabelOf(absl::string_view name) const {
  const FieldSpec* f = spec_.FindField(name);
  return f != nullptr ? f->label : std::string(name);
}

std::string BasicProvider::WhereToFind(absl::string_view name) const {
  const FieldSpec* f = spec_.FindField(name);
  if (f != nullptr && !f->where_to_find.empty()) return f->where_to_find;
  if (!spec_.how_to_get.empty()) {
    return absl::StrCat("the ", spec_.display_name,
                        " console (see the how-to-get steps)");
  }
  return "your records";
}

std::vector<std::string> GeneralTroubleshooting() {
  return {
      "Verify the credentials in the provider's console.",
      "Ensure the permissions/roles listed above are granted correctly.",
      "Look for typos or extra spaces.",
      "For API keys: check they haven't expired.",
      "For service accounts: verify they're enabled.",
  };
}

std::vector<std::string> GeneralBestPractices() {
  return {
      "Grant only what is needed: no admin/root credentials; follow the "
      "principle of least privilege.",
      "Rotate every 90 days for production credentials, immediately if "
      "potentially exposed, and when team members leave.",
      "Don't share personal credentials; use service accounts for shared "
      "infrastructure.",
  };
}

void CheckRegion(absl::string_view region, const RegionNaming& naming,
                 std::vector<Finding>& findings) {
  if (naming.region_of_zone != nullptr) {
    absl::string_view of = naming.region_of_zone(region);
    if (!of.empty() && naming.well_formed(of)) {
      findings.push_back(ErrorFinding("region", "bad_region",
                                      std::string(naming.zone_message),
                                      std::string(naming.zone_fix)));
      return;
    }
  }
  if (!naming.well_formed(region)) {
    findings.push_back(ErrorFinding("region", "bad_region",
                                    std::string(naming.malformed_message),
                                    std::string(naming.malformed_fix)));
    return;
  }
  if (std::find(naming.known.begin(), naming.known.end(), region) ==
      naming.known.end()) {
    findings.push_back(WarningFinding("region", "unknown_region",
                                      std::string(naming.unknown_message),
                                      std::string(naming.unknown_fix)));
  }
}

Finding ErrorFinding(absl::string_view field, absl::string_view code,
                     std::string message, std::string fix) {
  return Finding{std::string(field), Severity::kError, std::string(code),
                 std::move(message), std::move(fix)};
}

Finding WarningFinding(absl::string_view field, absl::string_view code,
                       std::string message, std::string fix) {
  return Finding{std::string(field), Severity::kWarning, std::string(code),
                 std::move(message), std::move(fix)};
}

Finding InfoFinding(absl::string_view field, absl::string_view code,
                    std::string message, std::string fix) {
  return Finding{std::string(field), Severity::kInfo, std::string(code),
                 std::move(message), std::move(fix)};
}

bool IsHexString(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

bool IsLowerHexString(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool IsAlnumString(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c)) return false;
  }
  return true;
}

bool IsGuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !absl::ascii_isxdigit(s[i])) return false;
  }
  return true;
}

bool HasWhitespaceOrControl(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return true;
  }
  return false;
}

size_t CharCount(absl::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

absl::string_view TrimPasted(absl::string_view s) {
  static constexpr absl::string_view kWide[] = {
      "\xC2\xA0",      // U+00A0 no-break space
      "\xE2\x80\x8B",  // U+200B zero-width space
      "\xEF\xBB\xBF",  // U+FEFF byte-order mark
  };
  bool changed = true;
  while (changed && !s.empty()) {
    changed = false;
    if (absl::ascii_isspace(s.front())) {
      s.remove_prefix(1);
      changed = true;
      continue;
    }
    if (absl::ascii_isspace(s.back())) {
      s.remove_suffix(1);
      changed = true;
      continue;
    }
    for (absl::string_view w : kWide) {
      if (absl::ConsumePrefix(&s, w) || absl::ConsumeSuffix(&s, w)) {
        changed = true;
      }
    }
  }
  return s;
}

absl::string_view ValueOf(const FieldValues& values, absl::string_view name) {
  auto it = values.find(std::string(name));
  return it == values.end() ? absl::string_view() : it->second.Reveal();
}

bool Has(const FieldValues& values, absl::string_view name) {
  return !ValueOf(values, name).empty();
}

bool CheckSingleToken(absl::string_view field, absl::string_view label,
                      absl::string_view value, absl::string_view fix,
                      std::vector<Finding>& findings) {
  if (!HasWhitespaceOrControl(value)) return true;
  findings.push_back(ErrorFinding(
      field, "contains_whitespace",
      absl::StrCat("The ", label,
                   " contains a space, tab or line break; it is a single "
                   "token without any."),
      std::string(fix)));
  return false;
}

}  // namespace providers_internal
}  // namespace credbroker
