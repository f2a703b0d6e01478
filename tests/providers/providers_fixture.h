// What the provider catalog's tests share: looking providers up, building
// field values, Normalize-then-Validate as the broker does it, printing
// findings without their values, and fake example keys.
#ifndef CREDBROKER_TESTS_PROVIDERS_PROVIDERS_FIXTURE_H_
#define CREDBROKER_TESTS_PROVIDERS_PROVIDERS_FIXTURE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "common/json.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace testing {

using Pairs = std::vector<std::pair<std::string, std::string>>;

inline FieldValues Values(const Pairs& pairs) {
  FieldValues values;
  for (const auto& [name, value] : pairs) values[name] = SecretBytes(value);
  return values;
}

inline const Provider& P(absl::string_view id) {
  const Provider* p = ProviderRegistry::Default().Find(id);
  EXPECT_NE(p, nullptr) << id;
  return *p;
}

inline std::string ValueOf(const FieldValues& values, const std::string& name) {
  auto it = values.find(name);
  return it == values.end() ? "" : std::string(it->second.Reveal());
}

inline absl::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "?";
}

// "field/code/severity" of each finding: safe to print, holds no values.
inline std::string Describe(const std::vector<Finding>& findings) {
  std::vector<std::string> parts;
  for (const Finding& f : findings) {
    parts.push_back(
        absl::StrCat(f.field, "/", f.code, "/", SeverityName(f.severity)));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

inline const Finding* FindFinding(const std::vector<Finding>& findings,
                                  absl::string_view field,
                                  absl::string_view code) {
  for (const Finding& f : findings) {
    if (f.field == field && f.code == code) return &f;
  }
  return nullptr;
}

// Normalize then Validate, as the broker does; findings of both.
struct Checked {
  absl::Status status;  // of Normalize
  FieldValues values;
  std::vector<Finding> findings;
};

inline Checked Check(absl::string_view provider, const Pairs& pairs,
                     absl::string_view file = "") {
  Checked out;
  absl::StatusOr<NormalizeResult> n =
      P(provider).Normalize(Values(pairs), file);
  out.status = n.status();
  if (!n.ok()) return out;
  out.values = n->values;
  out.findings = n->findings;
  std::vector<Finding> v = P(provider).Validate(n->values);
  out.findings.insert(out.findings.end(), v.begin(), v.end());
  return out;
}

// ---------------------------------------------------------------------------
// Example values.

inline constexpr char kAwsId[] = "AKIAIOSFODNN7EXAMPLE";
inline constexpr char kAwsSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
inline constexpr char kAwsTempId[] = "ASIAIOSFODNN7EXAMPLE";
inline constexpr char kAwsToken[] =
    "IQoJb3JpZ2luX2VjEXAMPLETOKENAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

inline constexpr char kGuid1[] = "11111111-2222-3333-4444-555555555555";
inline constexpr char kGuid2[] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
inline constexpr char kGuid3[] = "01234567-89ab-cdef-0123-456789abcdef";
inline constexpr char kAzureSecret[] =
    "abc8Q~FAKEfakeFAKEfakeFAKEfakeFAKEfake.x";

inline const std::string kHex64(64, 'a');
inline const std::string kDoToken =
    "dop_v1_" + std::string(32, '0') + std::string(32, 'f');

inline constexpr char kFakePem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFAKEFAKEFAKEFAKE\n"
    "FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFA==\n"
    "-----END PRIVATE KEY-----\n";

// A fake service account key file; `overrides` replace or (with value
// "<omit>") remove members.
inline std::string GcpKey(const Pairs& overrides = {}) {
  Pairs members = {
      {"type", "service_account"},
      {"project_id", "my-project-123"},
      {"private_key_id", "0123456789abcdef0123456789abcdef01234567"},
      {"private_key", kFakePem},
      {"client_email",
       "monk-deployment@my-project-123.iam.gserviceaccount.com"},
      {"client_id", "123456789012345678901"},
      {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
      {"token_uri", "https://oauth2.googleapis.com/token"},
  };
  for (const auto& [k, v] : overrides) {
    bool found = false;
    for (auto& m : members) {
      if (m.first == k) {
        m.second = v;
        found = true;
      }
    }
    if (!found) members.emplace_back(k, v);
  }
  std::vector<std::string> lines;
  for (const auto& [k, v] : members) {
    if (v == "<omit>") continue;
    lines.push_back(absl::StrCat("  ", JsonQuote(k), ": ", JsonQuote(v)));
  }
  return absl::StrCat("{\n", absl::StrJoin(lines, ",\n"), "\n}\n");
}

inline const std::string kGithubToken =
    "github_pat_" + std::string(22, 'A') + "_" + std::string(59, 'b');
inline constexpr char kSlackUrl[] =
    "https://hooks.slack.com/services/T00000000/B00000000/"
    "XXXXXXXXXXXXXXXXXXXXXXXX";

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_PROVIDERS_PROVIDERS_FIXTURE_H_
