// Auth0: a Machine-to-Machine application authorized for the Management API.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kAppSteps[] =
    "the Auth0 Dashboard: Applications → Applications → your Machine to "
    "Machine application → Settings";

// Tenant domains are TENANT.auth0.com (the original US region) or
// TENANT.REGION.auth0.com. Source: Auth0 docs, "Locate Auth0 Domain" and
// "Custom Domains"
// (https://auth0.com/docs/get-started/tenant-settings/find-your-tenant-name-or-tenant-id).
constexpr absl::string_view kRegions[] = {"us", "eu", "au", "jp", "uk", "ca"};

constexpr char kDomainFix[] =
    "Enter the Domain from the application's Settings as "
    "your-tenant.auth0.com (no https://, no path).";

// Client IDs are 32 letters and digits. Source: Auth0 docs, "Application
// Settings" → Basic Information.
constexpr size_t kClientIdLength = 32;

bool IsHostLabel(absl::string_view l) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') {
    return false;
  }
  for (char c : l) {
    if (!absl::ascii_isalnum(c) && c != '-') return false;
  }
  return true;
}

bool IsClientSecretCharset(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return !s.empty();
}

class Auth0Provider : public BasicProvider {
 public:
  Auth0Provider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "auth0";
    s.display_name = "Auth0";
    s.description =
        "A Machine-to-Machine application authorized for the Auth0 "
        "Management API, used to set up authentication for your apps.";
    FieldSpec domain;
    domain.name = "domain";
    domain.label = "Domain (Management API URL)";
    domain.format_hint =
        "your-tenant.auth0.com (not https://your-tenant.auth0.com/)";
    domain.where_to_find = absl::StrCat(kAppSteps, " → Domain");
    FieldSpec id;
    id.name = "client_id";
    id.label = "Management Client ID";
    id.format_hint = "32 letters and digits";
    id.where_to_find = absl::StrCat(kAppSteps, " → Client ID");
    FieldSpec secret;
    secret.name = "client_secret";
    secret.label = "Management Client Secret";
    secret.sensitive = true;
    secret.format_hint = "From the application's Settings";
    secret.where_to_find = absl::StrCat(kAppSteps, " → Client Secret");
    s.fields = {domain, id, secret};
    s.how_to_get = {
        "Log into the Auth0 Dashboard.",
        "Go to Applications → Applications.",
        "Click Create Application.",
        "Name: \"Monk Management\".",
        "Type: Machine to Machine.",
        "Select the Auth0 Management API.",
        "Grant all permissions for Applications, Users, and Resource Servers.",
        "Click Authorize.",
        "Copy the Domain, Client ID, and Client Secret. Use the domain as "
        "your-tenant.auth0.com, not https://your-tenant.auth0.com/.",
    };
    s.required_permissions = {
        "Auth0 Management API: all permissions for Applications",
        "Auth0 Management API: all permissions for Users",
        "Auth0 Management API: all permissions for Resource Servers",
    };
    s.troubleshooting = {
        "Format the domain as your-tenant.auth0.com, not "
        "https://your-tenant.auth0.com/.",
        "Application not authorized: in the application's APIs tab, "
        "authorize the Auth0 Management API with the permissions above.",
    };
    return s;
  }

  absl::Status NormalizeMore(absl::string_view file_contents,
                             NormalizeResult& result) const override {
    absl::Status status = BasicProvider::NormalizeMore(file_contents, result);
    if (!status.ok()) return status;
    auto it = result.values.find("domain");
    if (it == result.values.end()) return absl::OkStatus();
    absl::string_view raw = it->second.Reveal();
    std::string host = absl::AsciiStrToLower(raw);
    absl::string_view v = host;
    bool scheme = absl::ConsumePrefix(&v, "https://") ||
                  absl::ConsumePrefix(&v, "http://");
    size_t slash = v.find('/');
    bool path = slash != absl::string_view::npos;
    if (path) v = v.substr(0, slash);
    // What the scheme or path hid may itself be pasted whitespace.
    v = TrimPasted(v);
    if (!scheme && !path && v == raw) return absl::OkStatus();
    if (v.empty()) return absl::OkStatus();  // Validate reports it.
    it->second = SecretBytes(v);
    result.findings.push_back(InfoFinding(
        "domain", "domain_normalized",
        "Reduced the domain to the bare host name (no https://, no path, "
        "lowercase), the form the Management API expects."));
    return absl::OkStatus();
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view domain = ValueOf(values, "domain");
    if (!domain.empty()) CheckDomain(domain, findings);

    absl::string_view id = ValueOf(values, "client_id");
    absl::string_view secret = ValueOf(values, "client_secret");
    std::string fix = absl::StrCat("Copy it from ", kAppSteps, ".");
    bool id_ok = !id.empty() &&
                 CheckSingleToken("client_id", "Client ID", id, fix, findings);
    bool secret_ok =
        !secret.empty() && CheckSingleToken("client_secret", "Client Secret",
                                            secret, fix, findings);
    bool id_looks_like_id = id.size() == kClientIdLength && IsAlnumString(id);
    bool secret_looks_like_id =
        secret.size() == kClientIdLength && IsAlnumString(secret);
    if (id_ok && secret_ok && !id_looks_like_id && secret_looks_like_id &&
        id.size() > kClientIdLength) {
      findings.push_back(ErrorFinding(
          "client_id", "swapped_fields",
          "The client ID and the client secret appear to be swapped: the "
          "secret field holds a 32-character ID and the ID field a longer "
          "value.",
          "Put the Client ID in the Client ID field and the Client Secret in "
          "the Client Secret field."));
      return;
    }
    if (id_ok && !id_looks_like_id) {
      findings.push_back(WarningFinding(
          "client_id", "unusual_client_id",
          "Auth0 client IDs are usually 32 letters and digits; this one is "
          "not.",
          fix));
    }
    if (secret_ok && !IsClientSecretCharset(secret)) {
      findings.push_back(WarningFinding(
          "client_secret", "unusual_client_secret",
          "Auth0 client secrets are letters, digits, '-' and '_'; this one "
          "has other characters.",
          fix));
    }
  }

  void CheckDomain(absl::string_view domain,
                   std::vector<Finding>& findings) const {
    if (!CheckBareHost(domain, findings)) return;
    std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
    std::string lower = absl::AsciiStrToLower(domain);
    size_t n = labels.size();
    bool auth0 = n >= 2 && absl::EndsWith(lower, "auth0.com") &&
                 absl::AsciiStrToLower(labels[n - 2]) == "auth0";
    if (!auth0) {
      findings.push_back(WarningFinding(
          "domain", "custom_domain",
          "The domain is not an auth0.com tenant domain; if it is your "
          "custom domain, note that the Management API is addressed at the "
          "tenant's canonical domain (your-tenant.auth0.com).",
          "Use the Domain shown in the application's Settings."));
      return;
    }
    if (n == 2 || lower == "manage.auth0.com" ||
        absl::EndsWith(lower, ".manage.auth0.com")) {
      findings.push_back(ErrorFinding(
          "domain", "dashboard_domain",
          "This is the Auth0 website or dashboard address, not your tenant's "
          "domain.",
          kDomainFix));
      return;
    }
    CheckRegion(labels, findings);
  }

  // A bad_format error unless `domain` is a bare host name (no scheme,
  // port or path). True when it is one.
  static bool CheckBareHost(absl::string_view domain,
                            std::vector<Finding>& findings) {
    if (absl::StrContains(domain, "://") || absl::StrContains(domain, "/") ||
        absl::StrContains(domain, ":") || absl::StrContains(domain, "@") ||
        absl::StrContains(domain, "?")) {
      findings.push_back(ErrorFinding(
          "domain", "bad_format",
          "The domain must be a bare host name, without scheme, port or "
          "path.",
          kDomainFix));
      return false;
    }
    std::vector<absl::string_view> labels = absl::StrSplit(domain, '.');
    bool host = domain.size() <= 253 && labels.size() >= 2;
    for (absl::string_view l : labels) host = host && IsHostLabel(l);
    if (!host) {
      findings.push_back(ErrorFinding(
          "domain", "bad_format",
          "The domain is not a valid host name (e.g. your-tenant.auth0.com).",
          kDomainFix));
      return false;
    }
    return true;
  }

  // The region part of a TENANT.REGION.auth0.com domain, split in labels.
  static void CheckRegion(const std::vector<absl::string_view>& labels,
                          std::vector<Finding>& findings) {
    size_t n = labels.size();
    if (n == 4) {
      std::string region = absl::AsciiStrToLower(labels[1]);
      bool known = false;
      for (absl::string_view r : kRegions) known = known || region == r;
      if (!known) {
        findings.push_back(WarningFinding(
            "domain", "unknown_region",
            "The domain has a region part the broker does not know (known: "
            "us, eu, au, jp, uk, ca).",
            kDomainFix));
      }
    } else if (n > 4) {
      findings.push_back(
          ErrorFinding("domain", "bad_format",
                       "Auth0 tenant domains are your-tenant.auth0.com or "
                       "your-tenant.REGION.auth0.com.",
                       kDomainFix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewAuth0Provider() {
  return std::make_unique<Auth0Provider>();
}

}  // namespace providers_internal
}  // namespace credbroker
