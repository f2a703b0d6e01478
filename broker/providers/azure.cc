// Microsoft Azure: a service principal (app registration) and where to
// deploy.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/providers/checks.h"
#include "common/errors.h"
#include "common/json.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kAppSteps[] =
    "the Azure Portal: Azure Active Directory (Microsoft Entra ID) → App "
    "registrations → your app → Overview";

// Key spellings in the JSON files users have: `az ad sp create-for-rbac`
// prints {appId, password, tenant, displayName}; `--sdk-auth` and the Azure
// SDK auth file use {clientId, clientSecret, subscriptionId, tenantId, ...};
// environment-style files use AZURE_CLIENT_ID etc. Matched without regard to
// case. Source: Azure CLI reference, "az ad sp create-for-rbac"
// (https://learn.microsoft.com/cli/azure/ad/sp#az-ad-sp-create-for-rbac).
struct KeyAlias {
  absl::string_view field;
  std::vector<absl::string_view> keys;
};
const std::vector<KeyAlias>& Aliases() {
  static const auto* const kAliases = new std::vector<KeyAlias>{
      {"client_id", {"clientId", "client_id", "appId", "AZURE_CLIENT_ID"}},
      {"client_secret",
       {"clientSecret", "client_secret", "password", "AZURE_CLIENT_SECRET"}},
      {"tenant_id", {"tenantId", "tenant_id", "tenant", "AZURE_TENANT_ID"}},
      {"subscription_id",
       {"subscriptionId", "subscription_id", "AZURE_SUBSCRIPTION_ID"}},
      {"resource_group",
       {"resourceGroup", "resource_group", "resourceGroupName",
        "AZURE_RESOURCE_GROUP"}},
  };
  return *kAliases;
}

class AzureProvider : public BasicProvider {
 public:
  AzureProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "azure";
    s.display_name = "Microsoft Azure";
    s.description =
        "A service principal (app registration with a client secret) with "
        "the Contributor role, and the subscription and resource group to "
        "deploy into. Accepts a JSON file holding all five fields.";
    auto field = [](const char* name, const char* label, const char* hint,
                    std::string where) {
      FieldSpec f;
      f.name = name;
      f.label = label;
      f.format_hint = hint;
      f.where_to_find = std::move(where);
      return f;
    };
    FieldSpec secret =
        field("client_secret", "Client Secret",
              "The secret's Value (not its Secret ID)",
              "Certificates & secrets → New client secret → Value (shown only "
              "once, right after it is created)");
    secret.sensitive = true;
    s.fields = {
        field("client_id", "Client ID (Application ID)",
              "A GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
              absl::StrCat(kAppSteps, " → Application (client) ID")),
        secret,
        field("tenant_id", "Tenant ID",
              "A GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
              absl::StrCat(kAppSteps, " → Directory (tenant) ID")),
        field("subscription_id", "Subscription ID",
              "A GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
              "the Azure Portal: Subscriptions → Subscription ID"),
        field("resource_group", "Resource Group name",
              "1-90 letters, digits, '_', '-', '.', '(' and ')'",
              "the Azure Portal: Resource groups"),
        // Client secrets expire (the portal offers 3 to 24 months) and the
        // Expires column shows the date. Source: Microsoft identity platform
        // docs, "Add credentials" → "Add a client secret"
        // (https://learn.microsoft.com/entra/identity-platform/how-to-add-credentials).
        ExpiryField("Client secret expires",
                    "the Azure Portal: App registrations → your app → "
                    "Certificates & secrets → Client secrets → Expires"),
    };
    s.how_to_get = {
        "Log into the Azure Portal.",
        "Navigate to Azure Active Directory → App registrations.",
        "Click New registration.",
        "Name it (e.g. \"Monk Deployment\").",
        "Click Register.",
        "Copy the Application (client) ID and the Directory (tenant) ID.",
        "Go to Certificates & secrets → New client secret.",
        "Create and copy the secret value.",
        "Navigate to Subscriptions and copy your Subscription ID.",
        "Create or select a Resource Group for the deployment agent to use.",
        "Enter the fields individually, or provide a JSON file containing "
        "all of them.",
    };
    s.required_permissions = {
        "Contributor role on the subscription or resource group",
    };
    s.troubleshooting = {
        "Client secret expired: create a new one under Certificates & "
        "secrets and update the credential.",
        "Wrong tenant ID: copy the Directory (tenant) ID from the app "
        "registration's Overview.",
        "Missing Contributor role: assign it on the subscription or "
        "resource group (Access control (IAM) → Add role assignment).",
    };
    s.best_practices = {
        "Use a service principal (not a personal account).",
        "Enable MFA on your Azure AD account.",
        "Check the Azure Activity Log periodically for unexpected API calls "
        "or resource changes.",
    };
    return s;
  }

  absl::Status NormalizeMore(absl::string_view file_contents,
                             NormalizeResult& result) const override {
    absl::string_view file = TrimPasted(file_contents);
    if (file.empty()) return absl::OkStatus();
    constexpr char kExpected[] =
        "Provide a JSON object with clientId (or appId), clientSecret (or "
        "password), tenantId (or tenant), subscriptionId and resourceGroup, "
        "such as the output of `az ad sp create-for-rbac` with the "
        "subscription and resource group added.";
    absl::StatusOr<JsonValue> json = ParseJson(file);
    if (!json.ok()) {
      return InvalidArgumentWithViolations(
          "the Azure credentials file is not valid JSON",
          {{"from_file",
            absl::StrCat("The file is not valid JSON (",
                         json.status().message(), "). ", kExpected)}});
    }
    if (!json->is_object()) {
      return InvalidArgumentWithViolations(
          "the Azure credentials file cannot be read",
          {{"from_file",
            absl::StrCat("The file holds ", JsonTypeName(json->type()),
                         ", not a JSON object. ", kExpected)}});
    }
    std::vector<FieldViolation> violations;
    int found = TakeFileValues(*json, result, violations);
    if (!violations.empty()) {
      return InvalidArgumentWithViolations(
          "the Azure credentials file cannot be read", violations);
    }
    if (found == 0) {
      return InvalidArgumentWithViolations(
          "the Azure credentials file holds no Azure fields",
          {{"from_file",
            absl::StrCat("The file has none of the expected keys. ",
                         kExpected)}});
    }
    return absl::OkStatus();
  }

  // Takes the string values of the file's known keys into the fields the
  // user left empty (a warning for one that differs); a violation for a
  // known key that is not a string. Returns how many values it found.
  int TakeFileValues(const JsonValue& json, NormalizeResult& result,
                     std::vector<FieldViolation>& violations) const {
    int found = 0;
    for (const KeyAlias& alias : Aliases()) {
      for (const auto& [key, value] : json.object_members()) {
        bool match = false;
        for (absl::string_view k : alias.keys) {
          if (absl::EqualsIgnoreCase(key, k)) match = true;
        }
        if (!match) continue;
        if (!value.is_string()) {
          violations.push_back(
              {"from_file",
               absl::StrCat("\"", key, "\" holds ", JsonTypeName(value.type()),
                            "; it must be a string.")});
          continue;
        }
        absl::string_view v = TrimPasted(value.string_value());
        if (v.empty()) continue;
        ++found;
        std::string field(alias.field);
        auto it = result.values.find(field);
        if (it == result.values.end()) {
          result.values.emplace(field, SecretBytes(v));
        } else if (it->second.Reveal() != v) {
          result.findings.push_back(WarningFinding(
              field, "conflicting_values",
              absl::StrCat("The ", LabelOf(field),
                           " entered differs from the one in the file; the "
                           "entered value is used."),
              "Clear the field to use the file's value."));
        }
        break;
      }
    }
    return found;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    CheckGuid(values, "client_id", findings);
    CheckGuid(values, "subscription_id", findings);
    absl::string_view tenant = ValueOf(values, "tenant_id");
    if (!tenant.empty() && !IsGuid(tenant)) CheckTenant(values, findings);
    absl::string_view client = ValueOf(values, "client_id");
    if (IsGuid(client) && IsGuid(tenant) &&
        absl::EqualsIgnoreCase(client, tenant)) {
      findings.push_back(WarningFinding(
          "client_id", "same_ids",
          "The client ID and the tenant ID are the same; one of them was "
          "probably pasted twice.",
          absl::StrCat("Copy both again from ", kAppSteps, ".")));
    }
    absl::string_view subscription = ValueOf(values, "subscription_id");
    if (IsGuid(subscription) &&
        (absl::EqualsIgnoreCase(subscription, tenant) ||
         absl::EqualsIgnoreCase(subscription, client))) {
      findings.push_back(WarningFinding(
          "subscription_id", "same_ids",
          "The subscription ID equals the client or tenant ID; it was "
          "probably pasted into the wrong field.",
          "Copy the Subscription ID from the Azure Portal's Subscriptions "
          "page."));
    }

    absl::string_view secret = ValueOf(values, "client_secret");
    if (!secret.empty()) CheckClientSecret(secret, findings);

    absl::string_view group = ValueOf(values, "resource_group");
    if (!group.empty()) CheckResourceGroup(group, findings);
  }

  // A tenant given as a *.onmicrosoft.com domain, or not a GUID.
  void CheckTenant(const FieldValues& values,
                   std::vector<Finding>& findings) const {
    absl::string_view tenant = ValueOf(values, "tenant_id");
    if (absl::EndsWith(absl::AsciiStrToLower(tenant), ".onmicrosoft.com")) {
      findings.push_back(WarningFinding(
          "tenant_id", "tenant_domain",
          "The tenant is given as a domain name; sign-in accepts it, but "
          "the tenant ID (a GUID) does not change if the domain does.",
          absl::StrCat("Copy the Directory (tenant) ID from ", kAppSteps,
                       ".")));
    } else {
      CheckGuid(values, "tenant_id", findings);
    }
  }

  void CheckClientSecret(absl::string_view secret,
                         std::vector<Finding>& findings) const {
    std::string fix =
        "Create a new client secret under Certificates & secrets and copy "
        "its Value right away (it is shown only once).";
    if (CheckSingleToken("client_secret", "Client Secret", secret, fix,
                         findings) &&
        IsGuid(secret)) {
      // Portal shows "Value" and "Secret ID" side by side; the ID is a
      // GUID, the value is not. Source: Microsoft identity platform docs,
      // "Register an application" → "Add a client secret".
      findings.push_back(WarningFinding(
          "client_secret", "secret_id_not_value",
          "The client secret looks like a GUID: that is usually the "
          "secret's ID, not its value.",
          "In Certificates & secrets copy the Value column, not the Secret "
          "ID; if the value is no longer shown, create a new client "
          "secret."));
    }
  }

  void CheckGuid(const FieldValues& values, absl::string_view field,
                 std::vector<Finding>& findings) const {
    absl::string_view v = ValueOf(values, field);
    if (v.empty() || IsGuid(v)) return;
    findings.push_back(ErrorFinding(
        field, "bad_format",
        absl::StrCat("The ", LabelOf(field),
                     " is not a GUID (8-4-4-4-12 hexadecimal digits, e.g. "
                     "00000000-0000-0000-0000-000000000000)."),
        absl::StrCat("Copy it from ", WhereToFind(field), ".")));
  }

  // Resource group names: 1-90 characters; Unicode letters and digits,
  // '_', '-', '.', '(' and ')'; may not end with '.'. Source: Azure
  // Resource Manager docs, "Naming rules and restrictions for Azure
  // resources" → Microsoft.Resources/resourcegroups
  // (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
  void CheckResourceGroup(absl::string_view group,
                          std::vector<Finding>& findings) const {
    constexpr char kFix[] =
        "Use the name shown under Resource groups in the Azure Portal, or "
        "create a group with 1-90 letters, digits, '_', '-', '.', '(' and "
        "')'.";
    size_t chars = CharCount(group);
    if (chars > 90) {
      findings.push_back(
          ErrorFinding("resource_group", "wrong_length",
                       absl::StrCat("The resource group name has ", chars,
                                    " characters; at most 90 are allowed."),
                       kFix));
      return;
    }
    for (char c : group) {
      unsigned char u = static_cast<unsigned char>(c);
      // Bytes >= 0x80 belong to non-ASCII letters, which Azure allows.
      if (u >= 0x80 || absl::ascii_isalnum(c) || c == '_' || c == '-' ||
          c == '.' || c == '(' || c == ')') {
        continue;
      }
      findings.push_back(ErrorFinding(
          "resource_group", "bad_format",
          "The resource group name contains a character other than letters, "
          "digits, '_', '-', '.', '(' and ')'.",
          kFix));
      return;
    }
    if (group.back() == '.') {
      findings.push_back(ErrorFinding(
          "resource_group", "bad_format",
          "A resource group name may not end with a period.", kFix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewAzureProvider() {
  return std::make_unique<AzureProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
