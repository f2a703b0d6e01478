// Amazon Web Services: an IAM user's access key pair.
#include <algorithm>
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

constexpr char kGetKeySteps[] =
    "the AWS Console: IAM → Users → your user → Security credentials → "
    "Create access key (use case \"Third-party service\")";

// Commercial, GovCloud and China regions. Source: AWS General Reference,
// "AWS service endpoints" / "Regions and Zones"
// (https://docs.aws.amazon.com/general/latest/gr/rande.html).
constexpr absl::string_view kRegions[] = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",
    "af-south-1",     "ap-east-1",      "ap-east-2",      "ap-south-1",
    "ap-south-2",     "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ca-central-1",
    "ca-west-1",      "eu-central-1",   "eu-central-2",   "eu-west-1",
    "eu-west-2",      "eu-west-3",      "eu-south-1",     "eu-south-2",
    "eu-north-1",     "il-central-1",   "me-south-1",     "me-central-1",
    "mx-central-1",   "sa-east-1",      "us-gov-east-1",  "us-gov-west-1",
    "cn-north-1",     "cn-northwest-1",
};

// Prefixes of IAM unique IDs that are not access key IDs. Source: IAM User
// Guide, "IAM identifiers" → "Unique identifiers"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html).
struct IdPrefix {
  absl::string_view prefix;
  absl::string_view what;
};
constexpr IdPrefix kOtherIdPrefixes[] = {
    {"AIDA", "an IAM user ID"},
    {"AROA", "an IAM role ID"},
    {"AGPA", "an IAM group ID"},
    {"ANPA", "a managed policy ID"},
    {"ANVA", "a managed policy version ID"},
    {"AIPA", "an instance profile ID"},
    {"APKA", "a CloudFront key pair ID"},
    {"ASCA", "a certificate ID"},
    {"ABIA", "an STS bearer token ID"},
    {"ACCA", "a context-specific credential ID"},
};

// Access key IDs are 20 characters: a 4-letter prefix (AKIA for an IAM
// user's long-term key, ASIA for temporary STS credentials) and 16 uppercase
// letters and digits. Secret access keys are 40 base64 characters. Source:
// IAM User Guide, "Manage access keys for IAM users" and "IAM identifiers"
// (example keys AKIAIOSFODNN7EXAMPLE /
// wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY).
constexpr size_t kKeyIdLength = 20;
constexpr size_t kSecretLength = 40;

bool IsUpperAlnum(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isupper(c) && !absl::ascii_isdigit(c)) return false;
  }
  return !s.empty();
}

bool IsSecretCharset(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '/' && c != '+') return false;
  }
  return !s.empty();
}

bool LooksLikeSecret(absl::string_view s) {
  return s.size() == kSecretLength && IsSecretCharset(s);
}

bool LooksLikeKeyId(absl::string_view s) {
  return s.size() == kKeyIdLength &&
         (absl::StartsWith(s, "AKIA") || absl::StartsWith(s, "ASIA")) &&
         IsUpperAlnum(s);
}

// True when `p` (4 characters, any case) is AKIA or ASIA mistyped: one
// character changed, or two neighbours swapped.
bool IsPrefixTypo(absl::string_view p) {
  std::string up = absl::AsciiStrToUpper(p);
  for (absl::string_view want : {"AKIA", "ASIA"}) {
    int diff = 0;
    for (size_t i = 0; i < 4; ++i) diff += up[i] != want[i];
    if (diff == 1) return true;
    for (size_t i = 0; i + 1 < 4; ++i) {
      std::string swapped = up;
      std::swap(swapped[i], swapped[i + 1]);
      if (swapped == want) return true;
    }
  }
  return false;
}

// [a-z]+-\d: the tail of a region code, "east-1".
bool IsRegionTail(absl::string_view t) {
  size_t i = 0;
  while (i < t.size() && absl::ascii_islower(t[i])) ++i;
  return i > 0 && t.size() == i + 2 && t[i] == '-' &&
         absl::ascii_isdigit(t[i + 1]);
}

// ^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$
bool IsWellFormedRegion(absl::string_view r) {
  if (r.size() < 6 || !absl::ascii_islower(r[0]) ||
      !absl::ascii_islower(r[1]) || r[2] != '-') {
    return false;
  }
  absl::string_view rest = r.substr(3);
  if (IsRegionTail(rest)) return true;
  if (absl::ConsumePrefix(&rest, "gov-")) return IsRegionTail(rest);
  if (absl::ConsumePrefix(&rest, "iso")) {
    while (!rest.empty() && absl::ascii_islower(rest[0])) rest.remove_prefix(1);
    return absl::ConsumePrefix(&rest, "-") && IsRegionTail(rest);
  }
  return false;
}

// An availability zone is a region plus a zone letter: us-east-1a.
absl::string_view RegionOfZone(absl::string_view value) {
  if (value.size() < 2 || !absl::ascii_islower(value.back())) return "";
  return value.substr(0, value.size() - 1);
}

const RegionNaming kRegionNaming = {
    RegionOfZone,
    IsWellFormedRegion,
    kRegions,
    "The region is an availability zone (a region name followed by a zone "
    "letter), not a region.",
    "Drop the trailing zone letter, e.g. us-east-1 rather than us-east-1a.",
    "The region is not an AWS region code; codes look like us-east-1 or "
    "eu-west-2 (lowercase, "
    "no spaces).",
    "Use the code shown in the AWS Console's region selector, not the region's "
    "display name.",
    "The region is well formed but not one the broker knows; it may be new, or "
    "mistyped.",
    "Check the region code in the AWS Console's region selector.",
};

class AwsProvider : public BasicProvider {
 public:
  AwsProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "aws";
    s.display_name = "Amazon Web Services";
    s.description =
        "An access key of a dedicated IAM user, used to provision VMs, "
        "networking and storage on your AWS account.";
    s.default_region = "us-east-1";
    FieldSpec id;
    id.name = "access_key_id";
    id.label = "AWS Access Key ID";
    id.partially_masked = true;
    id.format_hint =
        "20 characters, starts with AKIA (or ASIA for a temporary key)";
    id.where_to_find = kGetKeySteps;
    FieldSpec secret;
    secret.name = "secret_access_key";
    secret.label = "AWS Secret Access Key";
    secret.sensitive = true;
    secret.format_hint = "40 characters: letters, digits, '/' and '+'";
    secret.where_to_find = absl::StrCat(
        kGetKeySteps, "; it is shown only once, when the key is created");
    FieldSpec token;
    token.name = "session_token";
    token.label = "AWS Session Token";
    token.sensitive = true;
    token.optional = true;
    token.format_hint = "Only for temporary keys (ASIA…), from AWS STS";
    token.where_to_find =
        "the output of `aws sts get-session-token` or `aws sts assume-role`, "
        "next to the temporary key";
    FieldSpec region;
    region.name = "region";
    region.label = "Default region";
    region.optional = true;
    region.default_value = "us-east-1";
    region.format_hint = "e.g. us-east-1";
    region.where_to_find =
        "the region selector at the top right of the AWS Console";
    // STS returns an Expiration with every temporary key. Source: AWS STS
    // API Reference, "Credentials" data type
    // (https://docs.aws.amazon.com/STS/latest/APIReference/API_Credentials.html).
    FieldSpec expires = ExpiryField(
        "Expiration (temporary keys)",
        "the Expiration printed by `aws sts get-session-token` or `aws sts "
        "assume-role`, next to the temporary key");
    expires.format_hint =
        "Only for temporary keys (ASIA…): the STS Expiration, e.g. "
        "2026-11-26T12:00:00Z";
    s.fields = {id, secret, token, region, expires};
    s.how_to_get = {
        "Log into the AWS Console.",
        "Navigate to IAM → Users.",
        "Click your username (or create a new user for the deployment agent).",
        "Go to the Security credentials tab.",
        "Click Create access key.",
        "Choose \"Third-party service\" as the use case.",
        "Copy the Access Key ID and the Secret Access Key.",
    };
    s.required_permissions = {
        "AmazonEC2FullAccess - for VM provisioning",
        "AmazonVPCFullAccess - for networking",
        "IAMReadOnlyAccess - for checking permissions",
        "Or a custom policy with EC2, VPC and S3 (for cluster management)",
    };
    s.troubleshooting = {
        "Access keys disabled in the IAM console: make the key Active again "
        "or create a new one.",
        "Missing required permissions: attach AmazonEC2FullAccess, "
        "AmazonVPCFullAccess and IAMReadOnlyAccess to the user.",
        "Region mismatch (if specifying a default region): use the region "
        "your resources are in.",
    };
    s.best_practices = {
        "Create a dedicated IAM user (not your personal account).",
        "Enable MFA on the IAM user (even for programmatic access).",
        "Check AWS CloudTrail periodically for unexpected API calls or "
        "resource changes.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view id = ValueOf(values, "access_key_id");
    absl::string_view secret = ValueOf(values, "secret_access_key");
    bool temporary = false;
    if (!id.empty()) temporary = CheckKeyId(id, findings);
    if (!secret.empty()) CheckSecret(secret, findings);

    absl::string_view token = ValueOf(values, "session_token");
    if (temporary && token.empty()) {
      findings.push_back(ErrorFinding(
          "session_token", "missing_field",
          "The access key ID starts with ASIA, so it is a temporary key; a "
          "temporary key works only together with its session token.",
          absl::StrCat("Paste the session token issued with the key, or "
                       "better, create a long-term key (AKIA…) in ",
                       kGetKeySteps, ".")));
    }
    if (temporary) {
      findings.push_back(WarningFinding(
          "access_key_id", "temporary_key",
          "Temporary keys (ASIA…) expire within hours; deployments will fail "
          "once this one does.",
          absl::StrCat("For a lasting credential, create an access key of a "
                       "dedicated IAM user in ",
                       kGetKeySteps, ".")));
    }
    if (!token.empty()) {
      if (CheckSingleToken("session_token", "AWS Session Token", token,
                           "Copy the session token again in one piece.",
                           findings)) {
        bool base64 = std::all_of(token.begin(), token.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '/' || c == '+' || c == '=';
        });
        if (!base64) {
          findings.push_back(ErrorFinding(
              "session_token", "bad_format",
              "The session token contains characters other than letters, "
              "digits, '/', '+' and '='.",
              "Copy the SessionToken value exactly as AWS STS returned it."));
        }
      }
      if (!id.empty() && absl::StartsWith(id, "AKIA")) {
        findings.push_back(WarningFinding(
            "session_token", "unexpected_session_token",
            "A session token belongs to a temporary key (ASIA…); with a "
            "long-term key (AKIA…) AWS rejects requests that carry one.",
            "Clear the session token field, or enter the temporary key it "
            "was issued with."));
      }
    }

    absl::string_view region = ValueOf(values, "region");
    if (!region.empty()) CheckRegion(region, kRegionNaming, findings);
  }

  // Returns true when the key ID is a well-formed temporary (ASIA) key.
  bool CheckKeyId(absl::string_view id, std::vector<Finding>& findings) const {
    constexpr char kField[] = "access_key_id";
    std::string fix =
        absl::StrCat("Copy the Access Key ID again from ", kGetKeySteps, ".");
    if (!CheckSingleToken(kField, "AWS Access Key ID", id, fix, findings)) {
      return false;
    }
    if (LooksLikeSecret(id)) {
      findings.push_back(ErrorFinding(
          kField, "swapped_fields",
          "The access key ID field holds a 40-character value: that looks "
          "like the secret access key.",
          "Put the 20-character key ID (AKIA…) in the Access Key ID field and "
          "the 40-character secret in the Secret Access Key field."));
      return false;
    }
    absl::string_view prefix = id.substr(0, 4);
    bool good_prefix = prefix == "AKIA" || prefix == "ASIA";
    if (!good_prefix) {
      ReportBadPrefix(id, prefix, fix, findings);
      return false;
    }
    if (id.size() != kKeyIdLength) {
      findings.push_back(
          ErrorFinding(kField, "wrong_length",
                       absl::StrCat("The access key ID has ", id.size(),
                                    " characters; AWS access key IDs have ",
                                    kKeyIdLength, "."),
                       fix));
      return false;
    }
    if (!IsUpperAlnum(id)) {
      findings.push_back(ErrorFinding(
          kField, "bad_format",
          "The access key ID contains characters other than uppercase "
          "letters and digits.",
          fix));
      return false;
    }
    return prefix == "ASIA";
  }

  // The bad_prefix error for a key ID that does not start with AKIA or ASIA:
  // one that names what the value is when its prefix says so.
  static void ReportBadPrefix(absl::string_view id, absl::string_view prefix,
                              const std::string& fix,
                              std::vector<Finding>& findings) {
    constexpr char kField[] = "access_key_id";
    std::string upper = absl::AsciiStrToUpper(prefix);
    if (upper == "AKIA" || upper == "ASIA") {
      findings.push_back(ErrorFinding(
          kField, "bad_prefix",
          "The access key ID is not in uppercase; AWS key IDs are "
          "uppercase letters and digits.",
          absl::StrCat("Copy the key ID again exactly as shown in ",
                       kGetKeySteps, ".")));
      return;
    }
    for (const IdPrefix& other : kOtherIdPrefixes) {
      if (prefix == other.prefix) {
        findings.push_back(ErrorFinding(
            kField, "bad_prefix",
            absl::StrCat("The value starts with ", other.prefix, ": it is ",
                         other.what, ", not an access key ID."),
            absl::StrCat("Create an access key in ", kGetKeySteps,
                         " and copy its Access Key ID (AKIA…).")));
        return;
      }
    }
    findings.push_back(ErrorFinding(
        kField, "bad_prefix",
        id.size() >= 4 && IsPrefixTypo(prefix)
            ? "The access key ID starts with a mistyped prefix; AWS key IDs "
              "start with AKIA (or ASIA for a temporary key)."
            : "The access key ID does not start with AKIA (or ASIA for a "
              "temporary key).",
        fix));
  }

  void CheckSecret(absl::string_view secret,
                   std::vector<Finding>& findings) const {
    constexpr char kField[] = "secret_access_key";
    std::string fix = absl::StrCat(
        "Copy the Secret Access Key again; it is shown only once, so if it "
        "is lost create a new key in ",
        kGetKeySteps, ".");
    if (!CheckSingleToken(kField, "AWS Secret Access Key", secret, fix,
                          findings)) {
      return;
    }
    if (LooksLikeKeyId(secret)) {
      findings.push_back(ErrorFinding(
          kField, "swapped_fields",
          "The secret access key field holds an access key ID (AKIA…/ASIA…).",
          "Put the 40-character secret in the Secret Access Key field and the "
          "20-character key ID in the Access Key ID field."));
      return;
    }
    if (secret.size() != kSecretLength) {
      findings.push_back(
          ErrorFinding(kField, "wrong_length",
                       absl::StrCat("The secret access key has ", secret.size(),
                                    " characters; AWS secret access keys have ",
                                    kSecretLength, "."),
                       fix));
      return;
    }
    if (!IsSecretCharset(secret)) {
      findings.push_back(ErrorFinding(
          kField, "bad_format",
          "The secret access key contains characters other than letters, "
          "digits, '/' and '+'.",
          fix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewAwsProvider() {
  return std::make_unique<AwsProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
