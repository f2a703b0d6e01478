#include "broker/providers/provider.h"

#include "absl/strings/str_cat.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace {

constexpr char kEllipsis[] = "\xE2\x80\xA6";  // U+2026

// Byte offset where the first `n` characters of UTF-8 `s` end.
size_t PrefixBytes(absl::string_view s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == n) return i;
      ++chars;
    }
  }
  return s.size();
}

// The last `n` characters of UTF-8 `s`.
absl::string_view LastChars(absl::string_view s, size_t n) {
  size_t total = providers_internal::CharCount(s);
  return total <= n ? s : s.substr(PrefixBytes(s, total - n));
}

}  // namespace

const FieldSpec* ProviderSpec::FindField(absl::string_view name) const {
  for (const FieldSpec& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::vector<std::string> MissingFields(const ProviderSpec& spec,
                                       const FieldValues& values) {
  std::vector<std::string> missing;
  for (const FieldSpec& f : spec.fields) {
    if (f.optional || f.derived) continue;
    if (!providers_internal::Has(values, f.name)) missing.push_back(f.name);
  }
  return missing;
}

bool HasErrors(const std::vector<Finding>& findings) {
  for (const Finding& f : findings) {
    if (f.severity == Severity::kError) return true;
  }
  return false;
}

std::optional<absl::Time> ParseExpiry(absl::string_view value) {
  absl::Time t;
  std::string err;
  // RFC 3339 date-time, or a calendar date. absl::ParseTime with %Y-%m-%d
  // rejects trailing text, so "2026-13-01" and "next week" fail.
  if (absl::ParseTime(absl::RFC3339_full, value, &t, &err)) return t;
  if (value.size() == 10 &&
      absl::ParseTime("%Y-%m-%d", value, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return std::nullopt;
}

std::optional<absl::Time> ExpiryOf(const ProviderSpec& spec,
                                   const FieldValues& values) {
  for (const FieldSpec& f : spec.fields) {
    if (!f.expiry) continue;
    auto it = values.find(f.name);
    if (it == values.end() || it->second.empty()) continue;
    std::optional<absl::Time> t = ParseExpiry(it->second.Reveal());
    if (t.has_value()) return t;
  }
  return std::nullopt;
}

std::string MaskValue(const FieldSpec& spec, const SecretBytes& value) {
  absl::string_view v = value.Reveal();
  if (v.empty()) return "";
  size_t chars = providers_internal::CharCount(v);
  if (spec.sensitive) {
    if (chars < 16) return "set";
    return absl::StrCat(kEllipsis, LastChars(v, 4));
  }
  if (spec.partially_masked) {
    if (chars < 12) return "set";
    return absl::StrCat(v.substr(0, PrefixBytes(v, 4)), kEllipsis,
                        LastChars(v, 4));
  }
  return std::string(v);
}

}  // namespace credbroker
