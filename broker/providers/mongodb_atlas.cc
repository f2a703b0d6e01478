// MongoDB Atlas: an organization API key (or service account).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kKeySteps[] =
    "MongoDB Atlas: organization name (top left) → Organization Settings → "
    "Access Manager → API Keys → Create API Key";

// Programmatic API keys: the public key is 8 lowercase letters and digits,
// the private key a GUID. Source: Atlas docs, "Grant Programmatic Access to
// an Organization" (https://www.mongodb.com/docs/atlas/configure-api-access/).
// Service accounts: the client ID is "mdb_sa_id_" + 24 hex digits, the
// secret starts "mdb_sa_sk_". Source: Atlas docs, "Service Accounts
// Overview" (https://www.mongodb.com/docs/atlas/api/service-accounts-overview/)
// and AWS Secrets Manager's "MongoDB Atlas service account credentials".
enum class KeyKind { kNone, kApiKey, kServiceAccount };

bool IsPublicKey(absl::string_view s) {
  if (s.size() != 8) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c)) return false;
  }
  return true;
}

bool IsServiceAccountId(absl::string_view s) {
  return absl::ConsumePrefix(&s, "mdb_sa_id_") && s.size() == 24 &&
         IsLowerHexString(s);
}

bool IsServiceAccountSecret(absl::string_view s) {
  if (!absl::ConsumePrefix(&s, "mdb_sa_sk_") || s.size() < 16) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

class MongoDbAtlasProvider : public BasicProvider {
 public:
  MongoDbAtlasProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "mongodb-atlas";
    s.display_name = "MongoDB Atlas";
    s.description =
        "An organization-level API key, used to create projects, provision "
        "clusters and create database users. It cannot access existing "
        "projects or data.";
    FieldSpec org;
    org.name = "organization";
    org.label = "Organization Name";
    org.format_hint = "The organization's name or its 24-character ID";
    org.where_to_find =
        "MongoDB Atlas: organization name (top left) → Organization Settings";
    FieldSpec id;
    id.name = "client_id";
    id.label = "Service Account Client ID (Public Key)";
    id.format_hint = "8 lowercase letters/digits, or mdb_sa_id_…";
    id.where_to_find = absl::StrCat(kKeySteps, " → Public Key");
    FieldSpec secret;
    secret.name = "client_secret";
    secret.label = "Service Account Client Secret (Private Key)";
    secret.sensitive = true;
    secret.format_hint = "A GUID, or mdb_sa_sk_…";
    secret.where_to_find =
        absl::StrCat(kKeySteps, " → Private Key (shown only once)");
    s.fields = {org, id, secret};
    s.how_to_get = {
        "Log into MongoDB Atlas.",
        "Click the organization name (top left) → Organization Settings.",
        "Go to Access Manager → API Keys tab.",
        "Click Create API Key.",
        "Description: \"Monk Deployment\".",
        "Set Organization Permissions: Organization Project Creator, Project "
        "Cluster Manager, Project User Admin.",
        "Click Next.",
        "Copy the Public Key (Client ID) and Private Key (Client Secret).",
        "Save them securely - the private key is shown only once.",
        "Note your Organization Name or ID from Organization Settings.",
    };
    s.required_permissions = {
        "Organization Project Creator - create projects in your organization",
        "Project Cluster Manager - provision and manage clusters",
        "Project User Admin - create database users for your applications",
    };
    s.troubleshooting = {
        "API key disabled or deleted: create a new key under Access Manager "
        "→ API Keys.",
        "Wrong organization name/ID: copy it from Organization Settings.",
        "Insufficient permissions on API key: grant Organization Project "
        "Creator, Project Cluster Manager and Project User Admin.",
    };
    s.best_practices = {
        "Create an org-level API key (not a personal one).",
        "Enable MFA on your Atlas account.",
        "Check MongoDB Atlas Access Tracking periodically for unexpected "
        "API calls or resource changes.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view org = ValueOf(values, "organization");
    if (!org.empty()) CheckOrganization(org, findings);

    std::string fix = absl::StrCat(
        "Copy both keys of one API key from ", kKeySteps,
        "; the private key is shown only once, so create a new key if it is "
        "lost.");
    absl::string_view id = ValueOf(values, "client_id");
    KeyKind id_kind =
        id.empty() ? KeyKind::kNone : ClientIdKind(id, fix, findings);
    absl::string_view secret = ValueOf(values, "client_secret");
    KeyKind secret_kind = secret.empty()
                              ? KeyKind::kNone
                              : ClientSecretKind(secret, fix, findings);
    if (id_kind != KeyKind::kNone && secret_kind != KeyKind::kNone &&
        id_kind != secret_kind) {
      findings.push_back(ErrorFinding(
          "client_secret", "mismatched_pair",
          id_kind == KeyKind::kApiKey
              ? "The client ID is an API key's public key but the secret is "
                "a service account secret; they cannot work together."
              : "The client ID is a service account's but the secret is an "
                "API key's private key; they cannot work together.",
          "Enter the client ID and secret of the same API key or service "
          "account."));
    }
  }

  // An organization ID or name: one line of at most 255 characters.
  static void CheckOrganization(absl::string_view org,
                                std::vector<Finding>& findings) {
    bool control = false;
    for (char c : org) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7F) control = true;
    }
    if (control || CharCount(org) > 255) {
      findings.push_back(ErrorFinding(
          "organization", "bad_format",
          "The organization is neither a 24-character organization ID nor "
          "an organization name (one line, at most 255 characters).",
          "Copy the Organization Name or ID from Organization Settings."));
    }
  }

  // What kind of key the client ID is; kNone, with an error finding, when
  // it is none.
  static KeyKind ClientIdKind(absl::string_view id, const std::string& fix,
                              std::vector<Finding>& findings) {
    if (!CheckSingleToken("client_id", "Client ID (Public Key)", id, fix,
                          findings)) {
      return KeyKind::kNone;
    }
    if (IsPublicKey(id)) return KeyKind::kApiKey;
    if (IsServiceAccountId(id)) return KeyKind::kServiceAccount;
    if (IsGuid(id) || IsServiceAccountSecret(id)) {
      findings.push_back(ErrorFinding(
          "client_id", "swapped_fields",
          "The client ID field holds what looks like the private key "
          "(client secret).",
          "Put the Public Key in Client ID and the Private Key in Client "
          "Secret."));
    } else {
      findings.push_back(ErrorFinding(
          "client_id", "bad_format",
          "The client ID is neither an API public key (8 lowercase letters "
          "and digits) nor a service account client ID (mdb_sa_id_ and 24 "
          "hexadecimal digits).",
          fix));
    }
    return KeyKind::kNone;
  }

  // What kind of key the client secret is; kNone, with an error finding,
  // when it is none.
  static KeyKind ClientSecretKind(absl::string_view secret,
                                  const std::string& fix,
                                  std::vector<Finding>& findings) {
    if (!CheckSingleToken("client_secret", "Client Secret (Private Key)",
                          secret, fix, findings)) {
      return KeyKind::kNone;
    }
    if (IsGuid(secret)) return KeyKind::kApiKey;
    if (IsServiceAccountSecret(secret)) return KeyKind::kServiceAccount;
    if (IsPublicKey(secret) || IsServiceAccountId(secret)) {
      findings.push_back(ErrorFinding(
          "client_secret", "swapped_fields",
          "The client secret field holds what looks like the public key "
          "(client ID).",
          "Put the Private Key in Client Secret and the Public Key in "
          "Client ID."));
    } else {
      findings.push_back(ErrorFinding(
          "client_secret", "bad_format",
          "The client secret is neither an API private key (a GUID) nor a "
          "service account secret (mdb_sa_sk_…).",
          fix));
    }
    return KeyKind::kNone;
  }
};

}  // namespace

std::unique_ptr<Provider> NewMongoDbAtlasProvider() {
  return std::make_unique<MongoDbAtlasProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
