// Google Cloud: a service account's JSON key file.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "broker/providers/checks.h"
#include "common/errors.h"
#include "common/json.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kKeySteps[] =
    "the GCP Console: IAM & Admin → Service Accounts → your service account "
    "→ Keys → Add Key → Create new key → JSON";

// Source: Google Cloud documentation, "Regions and zones"
// (https://cloud.google.com/compute/docs/regions-zones).
// clang-format off
constexpr absl::string_view kRegions[] = {
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1",
    "asia-northeast2", "asia-northeast3", "asia-south1", "asia-south2",
    "asia-southeast1", "asia-southeast2", "australia-southeast1",
    "australia-southeast2", "europe-central2", "europe-north1", "europe-north2",
    "europe-southwest1", "europe-west1", "europe-west2", "europe-west3",
    "europe-west4", "europe-west6", "europe-west8", "europe-west9",
    "europe-west10", "europe-west12", "me-central1", "me-central2", "me-west1",
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
    "southamerica-east1", "southamerica-west1", "us-central1", "us-east1",
    "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3",
    "us-west4",
};
// clang-format on

// ^[a-z]+-[a-z]+[0-9]+$, e.g. us-central1, northamerica-northeast2.
bool IsWellFormedRegion(absl::string_view r) {
  size_t i = 0;
  while (i < r.size() && absl::ascii_islower(r[i])) ++i;
  if (i == 0 || i >= r.size() || r[i] != '-') return false;
  size_t j = ++i;
  while (i < r.size() && absl::ascii_islower(r[i])) ++i;
  if (i == j || i >= r.size()) return false;
  j = i;
  while (i < r.size() && absl::ascii_isdigit(r[i])) ++i;
  return i > j && i == r.size();
}

// A zone is a region plus "-a".."-z": us-central1-a.
absl::string_view RegionOfZone(absl::string_view value) {
  if (value.size() < 3 || value[value.size() - 2] != '-' ||
      !absl::ascii_islower(value.back())) {
    return "";
  }
  return value.substr(0, value.size() - 2);
}

const RegionNaming kRegionNaming = {
    RegionOfZone,
    IsWellFormedRegion,
    kRegions,
    "The region is a zone (a region name followed by -a, -b, ...), not a "
    "region.",
    "Drop the zone suffix, e.g. us-central1 rather than us-central1-a.",
    "The region is not a GCP region name; names look like us-central1 or "
    "europe-west4 "
    "(lowercase, no spaces).",
    "Use a region name from the Compute Engine regions list.",
    "The region is well formed but not one the broker knows; it may be new, or "
    "mistyped.",
    "Check the name in the Compute Engine regions list.",
};

// Project IDs: 6 to 30 lowercase letters, digits and hyphens, starting with
// a letter, not ending with a hyphen; legacy domain-scoped projects are
// "example.com:my-project". Source: Resource Manager docs, "Creating and
// managing projects"
// (https://cloud.google.com/resource-manager/docs/creating-managing-projects).
bool IsProjectId(absl::string_view p) {
  size_t colon = p.rfind(':');
  if (colon != absl::string_view::npos) {
    if (colon == 0) return false;
    p = p.substr(colon + 1);
  }
  if (p.size() < 6 || p.size() > 30) return false;
  if (!absl::ascii_islower(p.front()) || p.back() == '-') return false;
  for (char c : p) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return false;
    }
  }
  return true;
}

// The field that holds the key file.
constexpr char kKeyField[] = "service_account_json";

constexpr char kPemBegin[] = "-----BEGIN PRIVATE KEY-----";
constexpr char kPemEnd[] = "-----END PRIVATE KEY-----";

// What is wrong with the body of a PEM "PRIVATE KEY" block, or "" when it
// starts as a PKCS#8 PrivateKeyInfo of an RSA key:
//   SEQUENCE { INTEGER 0, SEQUENCE { OID rsaEncryption, NULL }, OCTET STRING }
// Service account keys are 2048-bit RSA keys in PKCS#8 PEM form. Sources:
// IAM docs, "Create and delete service account keys"
// (https://cloud.google.com/iam/docs/keys-create-delete); RFC 5208 §5
// (PrivateKeyInfo); RFC 8017 A.1 (rsaEncryption, 1.2.840.113549.1.1.1);
// RFC 5480 §2.1.1 (id-ecPublicKey, 1.2.840.10045.2.1). Only the header is
// decoded; the key material itself is never inspected or echoed.
std::string PemKeyProblem(absl::string_view pem) {
  absl::string_view body = TrimPasted(pem);
  absl::ConsumePrefix(&body, kPemBegin);
  absl::ConsumeSuffix(&body, kPemEnd);
  std::string b64;
  for (char c : body) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (!absl::ascii_isalnum(c) && c != '+' && c != '/' && c != '=') {
      return "The private key's body is not base64 text: it was damaged when "
             "the file was copied or edited.";
    }
    b64.push_back(c);
  }
  // 32 base64 characters: the 24-byte header of an RSA PrivateKeyInfo.
  if (b64.size() < 32) {
    return "The private key is too short to be a key: the file is truncated.";
  }
  std::string der;
  if (!absl::Base64Unescape(absl::string_view(b64).substr(0, 32), &der) ||
      der.size() != 24) {
    return "The private key's body is not base64 text: it was damaged when "
           "the file was copied or edited.";
  }
  auto byte = [&der](size_t i) { return static_cast<unsigned char>(der[i]); };
  size_t pos = 0;
  // Outer SEQUENCE with a definite length (short or long form).
  if (byte(pos++) != 0x30) return "The private key is not a PKCS#8 key.";
  unsigned char len = byte(pos++);
  if (len & 0x80) {
    size_t n = len & 0x7f;
    if (n == 0 || n > 3) return "The private key is not a PKCS#8 key.";
    pos += n;
  }
  // version INTEGER 0, then the AlgorithmIdentifier SEQUENCE and its OID.
  if (byte(pos) != 0x02 || byte(pos + 1) != 0x01 || byte(pos + 2) != 0x00 ||
      byte(pos + 3) != 0x30 || byte(pos + 5) != 0x06) {
    return "The private key is not a PKCS#8 key.";
  }
  pos += 7;  // Now at the OID's first byte; pos - 1 holds its length.
  constexpr unsigned char kRsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                    0x0d, 0x01, 0x01, 0x01};
  constexpr unsigned char kEc[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
  auto oid_is = [&](const unsigned char* oid, size_t n) {
    if (byte(pos - 1) != n || pos + n > der.size()) return false;
    for (size_t i = 0; i < n; ++i) {
      if (byte(pos + i) != oid[i]) return false;
    }
    return true;
  };
  if (oid_is(kRsa, sizeof(kRsa))) return "";
  if (oid_is(kEc, sizeof(kEc))) {
    return "The private key is an elliptic-curve key; service account keys "
           "are RSA keys.";
  }
  return "The private key is not an RSA key.";
}

// The violation/finding message for a JSON parse error: "line L, column C:
// what", which never contains the key's text.
std::string ParseErrorText(const absl::Status& status) {
  return absl::StrCat("The service account key is not valid JSON (",
                      status.message(), ").");
}

// Why a non-JSON paste is not a key file, or "" if nothing specific.
std::string ExplainNotJson(absl::string_view v) {
  // API keys: "AIza" and 35 more characters. Source: Google Cloud docs,
  // "Manage API keys" (https://cloud.google.com/docs/authentication/api-keys).
  if (absl::StartsWith(v, "AIza")) {
    return "This is an API key, not a service account key: API keys only "
           "identify a project and cannot provision resources.";
  }
  if (absl::StartsWith(v, "-----BEGIN")) {
    return "This is only a PEM private key; the broker needs the whole JSON "
           "key file (it names the service account and project too).";
  }
  if (absl::StartsWith(v, "ya29.")) {
    return "This is a short-lived OAuth access token, not a service account "
           "key.";
  }
  return "";
}

class GcpProvider : public BasicProvider {
 public:
  GcpProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "gcp";
    s.display_name = "Google Cloud Platform";
    s.description =
        "A service account JSON key, used to provision VMs and networking in "
        "your GCP project. The project ID is read from the key.";
    s.default_region = "us-central1";
    FieldSpec key;
    key.name = "service_account_json";
    key.label = "Service Account JSON key file";
    key.sensitive = true;
    key.multiline = true;
    key.format_hint =
        "The downloaded JSON file, {\"type\": \"service_account\", ...}";
    key.where_to_find = kKeySteps;
    FieldSpec project;
    project.name = "project_id";
    project.label = "Project ID";
    project.optional = true;
    project.derived = true;
    project.format_hint = "Auto-extracted from the key, e.g. my-project-123";
    project.where_to_find =
        "the project selector at the top of the GCP Console";
    FieldSpec email;
    email.name = "client_email";
    email.label = "Service account email";
    email.optional = true;
    email.derived = true;
    email.format_hint = "Auto-extracted: NAME@PROJECT.iam.gserviceaccount.com";
    email.where_to_find = "IAM & Admin → Service Accounts";
    FieldSpec region;
    region.name = "region";
    region.label = "Default region";
    region.optional = true;
    region.default_value = "us-central1";
    region.format_hint = "e.g. us-central1";
    region.where_to_find = "Compute Engine → Zones, or the regions list";
    s.fields = {key, project, email, region};
    s.how_to_get = {
        "Log into the GCP Console.",
        "Navigate to IAM & Admin → Service Accounts.",
        "Click Create Service Account.",
        "Name it (e.g. \"monk-deployment\").",
        "Grant roles: Compute Admin (for VM management) and Service Account "
        "User (for service operations).",
        "Click Done.",
        "Click the service account name.",
        "Go to the Keys tab → Add Key → Create new key.",
        "Choose JSON format.",
        "Download the JSON file and select it in the form; the project ID "
        "and other details are extracted automatically.",
    };
    s.required_permissions = {
        "Compute Admin - for VM management",
        "Service Account User - for service operations",
    };
    s.troubleshooting = {
        "Service account disabled: enable it in IAM & Admin → Service "
        "Accounts.",
        "JSON key file malformed: download a new key (Keys → Add Key → Create "
        "new key → JSON) and select the file unchanged.",
        "Missing required roles: grant Compute Admin and Service Account "
        "User.",
    };
    s.best_practices = {
        "Use a service account (not user credentials).",
        "Enable MFA on the account that manages service accounts.",
        "Check GCP Audit Logs periodically for unexpected API calls or "
        "resource changes.",
    };
    return s;
  }

  absl::Status NormalizeMore(absl::string_view file_contents,
                             NormalizeResult& result) const override {
    constexpr char kField[] = "service_account_json";
    absl::string_view file = TrimPasted(file_contents);
    bool from_file = !file.empty();
    if (from_file) {
      auto it = result.values.find(kField);
      if (it != result.values.end() && it->second.Reveal() != file) {
        result.findings.push_back(WarningFinding(
            kField, "file_overrides_field",
            "Both a key file and a pasted key were given; the file is used.",
            "Give the key once, as a file or pasted, not both."));
      }
      result.values[kField] = SecretBytes(file);
    }
    auto it = result.values.find(kField);
    if (it == result.values.end()) return absl::OkStatus();
    std::string violation_field =
        from_file ? "from_file" : absl::StrCat("values.", kField);
    absl::string_view text = it->second.Reveal();

    if (text.front() != '{') {
      std::string why = ExplainNotJson(text);
      if (why.empty()) {
        why =
            "This is not a JSON key file; a service account key file is a "
            "JSON object starting with '{'.";
      }
      return InvalidArgumentWithViolations(
          "the GCP service account key cannot be read",
          {{violation_field,
            absl::StrCat(why, " Create a JSON key in ", kKeySteps,
                         ", then select the downloaded file.")}});
    }
    absl::StatusOr<JsonValue> json = ParseJson(text);
    if (!json.ok()) {
      return InvalidArgumentWithViolations(
          "the GCP service account key is not valid JSON",
          {{violation_field,
            absl::StrCat(ParseErrorText(json.status()),
                         " Select the downloaded key file unchanged, or "
                         "download a new key in ",
                         kKeySteps, ".")}});
    }
    if (!json->is_object()) {
      return InvalidArgumentWithViolations(
          "the GCP service account key cannot be read",
          {{violation_field,
            absl::StrCat("The key file holds ", JsonTypeName(json->type()),
                         ", not a JSON object. Download a new key in ",
                         kKeySteps, ".")}});
    }
    Derive(*json, "project_id", result);
    Derive(*json, "client_email", result);
    return absl::OkStatus();
  }

  // Fills derived field `name` from the key, trimmed like a typed value; a
  // different value the user gave is kept, with a warning.
  static void Derive(const JsonValue& key, absl::string_view name,
                     NormalizeResult& result) {
    std::optional<absl::string_view> from_key = key.FindString(name);
    if (!from_key.has_value()) return;
    from_key = TrimPasted(*from_key);
    if (from_key->empty()) return;
    auto it = result.values.find(std::string(name));
    if (it == result.values.end()) {
      result.values.emplace(std::string(name), SecretBytes(*from_key));
      return;
    }
    if (it->second.Reveal() != *from_key) {
      result.findings.push_back(WarningFinding(
          name, absl::StrCat(name, "_mismatch"),
          absl::StrCat("The ", name,
                       " entered differs from the one in the key file; the "
                       "entered value is used."),
          absl::StrCat("Clear the ", name,
                       " field to use the key's own, or check that the "
                       "service account has roles in the other project.")));
    }
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view text = ValueOf(values, "service_account_json");
    if (!text.empty()) CheckKey(text, values, findings);

    absl::string_view project = ValueOf(values, "project_id");
    if (!project.empty() && !IsProjectId(project)) {
      findings.push_back(ErrorFinding(
          "project_id", "bad_format",
          "The project ID is not a GCP project ID: 6 to 30 lowercase letters, "
          "digits and hyphens, starting with a letter.",
          "Use the project ID (not the project name or number) shown in the "
          "GCP Console's project selector, or leave it empty to use the key's "
          "project."));
    }
    absl::string_view region = ValueOf(values, "region");
    if (!region.empty()) CheckRegion(region, kRegionNaming, findings);
  }

  void CheckKey(absl::string_view text, const FieldValues& values,
                std::vector<Finding>& findings) const {
    std::string fix = absl::StrCat("Create a new JSON key in ", kKeySteps,
                                   " and select the downloaded file.");
    std::optional<JsonValue> json = ParseKeyObject(text, fix, findings);
    if (!json.has_value()) return;
    if (!CheckKeyType(*json, fix, findings)) return;
    for (absl::string_view required :
         {"project_id", "private_key_id", "private_key", "client_email"}) {
      std::optional<absl::string_view> v = json->FindString(required);
      if (!v.has_value() || v->empty()) {
        findings.push_back(
            ErrorFinding(kKeyField, "missing_key_field",
                         absl::StrCat("The key file has no \"", required,
                                      "\"; it is incomplete or was edited."),
                         fix));
      }
    }
    std::optional<absl::string_view> pem = json->FindString("private_key");
    if (pem.has_value() && !pem->empty()) CheckPrivateKey(*pem, fix, findings);
    std::optional<absl::string_view> email = json->FindString("client_email");
    if (email.has_value() && !email->empty()) {
      CheckClientEmail(*email, values, fix, findings);
    }
  }

  // The key file as a JSON object; nullopt, with an error finding, when it
  // is not one.
  static std::optional<JsonValue> ParseKeyObject(
      absl::string_view text, const std::string& fix,
      std::vector<Finding>& findings) {
    if (text.front() != '{') {
      std::string why = ExplainNotJson(text);
      findings.push_back(ErrorFinding(
          kKeyField, "not_a_key_file",
          why.empty() ? "This is not a JSON service account key file." : why,
          fix));
      return std::nullopt;
    }
    absl::StatusOr<JsonValue> json = ParseJson(text);
    if (!json.ok()) {
      findings.push_back(ErrorFinding(kKeyField, "malformed_json",
                                      ParseErrorText(json.status()), fix));
      return std::nullopt;
    }
    if (!json->is_object()) {
      findings.push_back(ErrorFinding(
          kKeyField, "not_a_key_file",
          absl::StrCat("The key file holds ", JsonTypeName(json->type()),
                       ", not a JSON object."),
          fix));
      return std::nullopt;
    }
    return *std::move(json);
  }

  // True when the key file's "type" is "service_account"; otherwise an
  // error finding that says what kind of file it is.
  static bool CheckKeyType(const JsonValue& json, const std::string& fix,
                           std::vector<Finding>& findings) {
    std::optional<absl::string_view> type = json.FindString("type");
    if (!type.has_value()) {
      findings.push_back(ErrorFinding(
          kKeyField, "missing_key_field",
          "The key file has no \"type\"; a service account key file has "
          "\"type\": \"service_account\".",
          fix));
      return false;
    }
    if (*type == "service_account") return true;
    std::string why;
    if (*type == "authorized_user") {
      why =
          "This file holds user credentials (\"type\": "
          "\"authorized_user\", as written by `gcloud auth "
          "application-default login`), not a service account key. The "
          "guide asks for a service account so that access can be "
          "limited and rotated without touching your personal account.";
    } else if (*type == "external_account" ||
               *type == "external_account_authorized_user") {
      why =
          "This file is a workload identity federation configuration "
          "(\"type\": \"external_account\"); it holds no key and works "
          "only inside its external environment.";
    } else if (*type == "impersonated_service_account") {
      why =
          "This file impersonates a service account with someone's user "
          "credentials; the broker needs the service account's own key.";
    } else {
      why = "The key file's \"type\" is not \"service_account\".";
    }
    findings.push_back(ErrorFinding(kKeyField, "wrong_key_type", why, fix));
    return false;
  }

  // The key file's "private_key": a PEM PKCS#8 key with real line breaks.
  static void CheckPrivateKey(absl::string_view pem, const std::string& fix,
                              std::vector<Finding>& findings) {
    if (absl::StrContains(pem, "\\n")) {
      findings.push_back(ErrorFinding(
          kKeyField, "bad_private_key",
          "The private key holds literal \\n sequences instead of line "
          "breaks: the key file was escaped twice when it was copied.",
          fix));
    } else if (!absl::StartsWith(TrimPasted(pem), kPemBegin) ||
               !absl::EndsWith(TrimPasted(pem), kPemEnd)) {
      findings.push_back(ErrorFinding(
          kKeyField, "bad_private_key",
          "The \"private_key\" is not a PEM private key (-----BEGIN "
          "PRIVATE KEY----- … -----END PRIVATE KEY-----).",
          fix));
    } else if (std::string why = PemKeyProblem(pem); !why.empty()) {
      findings.push_back(ErrorFinding(kKeyField, "bad_private_key", why, fix));
    }
  }

  // The key file's "client_email": a dedicated service account's address,
  // and the same as the email field when that is given.
  static void CheckClientEmail(absl::string_view email,
                               const FieldValues& values,
                               const std::string& fix,
                               std::vector<Finding>& findings) {
    // Service account addresses. Source: IAM docs, "Service accounts
    // overview" (https://cloud.google.com/iam/docs/service-account-overview).
    if (absl::EndsWith(email, "@developer.gserviceaccount.com") ||
        absl::EndsWith(email, "@appspot.gserviceaccount.com")) {
      findings.push_back(WarningFinding(
          kKeyField, "default_service_account",
          "This is a key of a default service account (Compute Engine or "
          "App Engine), which usually has broad project-wide access.",
          "Create a dedicated service account with only Compute Admin and "
          "Service Account User, as in the how-to-get steps."));
    } else if (!absl::EndsWith(email, ".iam.gserviceaccount.com") ||
               !absl::StrContains(email, "@")) {
      findings.push_back(ErrorFinding(
          kKeyField, "bad_client_email",
          "The key's \"client_email\" is not a service account address "
          "(NAME@PROJECT.iam.gserviceaccount.com).",
          fix));
    }
    absl::string_view given = ValueOf(values, "client_email");
    if (!given.empty() && given != TrimPasted(email)) {
      findings.push_back(
          WarningFinding("client_email", "client_email_mismatch",
                         "The service account email differs from the key's "
                         "\"client_email\".",
                         "Clear the field; it is read from the key file."));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewGcpProvider() {
  return std::make_unique<GcpProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
