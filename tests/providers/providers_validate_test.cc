// Offline validation of every provider (one case per mistake), and that no
// finding or status ever carries a secret value. All keys here are fake.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "common/errors.h"
#include "common/json.h"
#include "gtest/gtest.h"
#include "tests/providers/providers_fixture.h"

namespace credbroker {
namespace testing {
namespace {

// ---------------------------------------------------------------------------
// Validation: one row per valid example and per mistake.

struct Case {
  const char* name;
  const char* provider;
  Pairs values;
  std::string file;
  // Expected finding; empty code: no errors (and no warnings unless
  // `allow_warnings`).
  const char* field;
  const char* code;
  Severity severity;
  bool allow_warnings = false;
};

constexpr Severity kE = Severity::kError;
constexpr Severity kW = Severity::kWarning;
constexpr Severity kI = Severity::kInfo;

std::vector<Case> Cases() {
  const std::string az_file_cli =
      absl::StrCat("{\n  \"appId\": \"", kGuid1,
                   "\",\n  \"displayName\": \"monk\",\n"
                   "  \"password\": \"",
                   kAzureSecret, "\",\n  \"tenant\": \"", kGuid2, "\"\n}\n");
  const std::string az_file_sdk = absl::StrCat(
      "{\"clientId\": \"", kGuid1, "\", \"clientSecret\": \"", kAzureSecret,
      "\", \"subscriptionId\": \"", kGuid3, "\", \"tenantId\": \"", kGuid2,
      "\", \"resourceGroup\": \"monk-rg\", "
      "\"activeDirectoryEndpointUrl\": \"https://login.microsoftonline.com\"}");
  const Pairs az = {{"client_id", kGuid1},
                    {"client_secret", kAzureSecret},
                    {"tenant_id", kGuid2},
                    {"subscription_id", kGuid3},
                    {"resource_group", "monk-rg"}};
  auto az_with = [&](const std::string& k, const std::string& v) {
    Pairs p = az;
    for (auto& e : p) {
      if (e.first == k) e.second = v;
    }
    return p;
  };
  const std::string atlas_sa_id = "mdb_sa_id_" + std::string(24, 'c');
  const std::string atlas_sa_secret = "mdb_sa_sk_" + std::string(40, 'Z');
  const Pairs redis = {
      {"account_key", "A1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvWxYz0123456789abc"},
      {"user_key", "Z9y8X7w6V5u4T3s2R1q0PoNmLkJiHgFeDcBa9876543210zyx"},
      {"database_password", "Tr0ub4dor&3-horse"}};
  auto redis_pw = [&](const std::string& pw) {
    Pairs p = redis;
    p[2].second = pw;
    return p;
  };
  const std::string auth0_id = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";
  const std::string auth0_secret = std::string(64, 'S');

  // clang-format off
  return {
      // AWS.
      {"aws valid", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}}, "", "", "", kE},
      {"aws valid with region", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "eu-west-2"}}, "", "", "", kE},
      {"aws govcloud region", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "us-gov-west-1"}}, "", "", "", kE},
      {"aws temporary key", "aws", {{"access_key_id", kAwsTempId}, {"secret_access_key", kAwsSecret}, {"session_token", kAwsToken}}, "", "access_key_id", "temporary_key", kW, true},
      {"aws temporary key without token", "aws", {{"access_key_id", kAwsTempId}, {"secret_access_key", kAwsSecret}}, "", "session_token", "missing_field", kE},
      {"aws missing secret", "aws", {{"access_key_id", kAwsId}}, "", "secret_access_key", "missing_field", kE},
      {"aws missing id", "aws", {{"secret_access_key", kAwsSecret}}, "", "access_key_id", "missing_field", kE},
      {"aws blank id", "aws", {{"access_key_id", "  \n"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "missing_field", kE},
      {"aws transposed prefix", "aws", {{"access_key_id", "AKAIIOSFODNN7EXAMPLE"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "bad_prefix", kE},
      {"aws lowercase prefix", "aws", {{"access_key_id", "akiaiosfodnn7example"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "bad_prefix", kE},
      {"aws user id instead of key", "aws", {{"access_key_id", "AIDAIOSFODNN7EXAMPLE"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "bad_prefix", kE},
      {"aws other prefix", "aws", {{"access_key_id", "XXXXIOSFODNN7EXAMPLE"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "bad_prefix", kE},
      {"aws short id", "aws", {{"access_key_id", "AKIAIOSFODNN7EXAMPL"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "wrong_length", kE},
      {"aws id with symbols", "aws", {{"access_key_id", "AKIAIOSFODNN7EXAMP-E"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "bad_format", kE},
      {"aws id wrapped", "aws", {{"access_key_id", "AKIAIOSFOD\nNN7EXAMPLE"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "contains_whitespace", kE},
      {"aws secret in id field", "aws", {{"access_key_id", kAwsSecret}, {"secret_access_key", kAwsId}}, "", "access_key_id", "swapped_fields", kE},
      {"aws id in secret field", "aws", {{"access_key_id", kAwsSecret}, {"secret_access_key", kAwsId}}, "", "secret_access_key", "swapped_fields", kE},
      {"aws short secret", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE"}}, "", "secret_access_key", "wrong_length", kE},
      {"aws secret bad chars", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", "wJalrXUtnFEMI-K7MDENG_bPxRfiCYEXAMPLEKEY"}}, "", "secret_access_key", "bad_format", kE},
      {"aws region display name", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "US East (N. Virginia)"}}, "", "region", "bad_region", kE},
      {"aws availability zone", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "us-east-1a"}}, "", "region", "bad_region", kE},
      {"aws unknown region", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "xy-north-7"}}, "", "region", "unknown_region", kW},
      {"aws iso region", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"region", "us-isob-east-1"}}, "", "region", "unknown_region", kW},
      {"aws token with long-term key", "aws", {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret}, {"session_token", kAwsToken}}, "", "session_token", "unexpected_session_token", kW},
      {"aws token bad chars", "aws", {{"access_key_id", kAwsTempId}, {"secret_access_key", kAwsSecret}, {"session_token", "abc$def"}}, "", "session_token", "bad_format", kE, true},
      {"aws trimmed", "aws", {{"access_key_id", " AKIAIOSFODNN7EXAMPLE\n"}, {"secret_access_key", kAwsSecret}}, "", "access_key_id", "whitespace_trimmed", kI},

      // GCP.
      {"gcp key file", "gcp", {}, GcpKey(), "", "", kE},
      {"gcp pasted key", "gcp", {{"service_account_json", GcpKey()}, {"region", "europe-west4"}}, "", "", "", kE},
      {"gcp missing key", "gcp", {{"region", "us-central1"}}, "", "service_account_json", "missing_field", kE},
      {"gcp user credentials", "gcp", {}, "{\"type\": \"authorized_user\", \"client_id\": \"x.apps.googleusercontent.com\", \"client_secret\": \"d-FAKE\", \"refresh_token\": \"1//FAKE\"}", "service_account_json", "wrong_key_type", kE},
      {"gcp external account", "gcp", {}, "{\"type\": \"external_account\", \"audience\": \"//iam.googleapis.com/x\"}", "service_account_json", "wrong_key_type", kE},
      {"gcp missing private key", "gcp", {}, GcpKey({{"private_key", "<omit>"}}), "service_account_json", "missing_key_field", kE},
      {"gcp missing key id", "gcp", {}, GcpKey({{"private_key_id", "<omit>"}}), "service_account_json", "missing_key_field", kE},
      {"gcp missing type", "gcp", {}, GcpKey({{"type", "<omit>"}}), "service_account_json", "missing_key_field", kE},
      {"gcp not a pem", "gcp", {}, GcpKey({{"private_key", "MIIEvQIBADAN"}}), "service_account_json", "bad_private_key", kE},
      {"gcp double-escaped pem", "gcp", {}, GcpKey({{"private_key", "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"}}), "service_account_json", "bad_private_key", kE},
      {"gcp bad email", "gcp", {}, GcpKey({{"client_email", "someone@example.com"}}), "service_account_json", "bad_client_email", kE},
      {"gcp default compute account", "gcp", {}, GcpKey({{"client_email", "123456789-compute@developer.gserviceaccount.com"}}), "service_account_json", "default_service_account", kW},
      {"gcp project mismatch", "gcp", {{"project_id", "other-project-1"}}, GcpKey(), "project_id", "project_id_mismatch", kW},
      {"gcp bad project id", "gcp", {{"project_id", "My Project"}}, GcpKey(), "project_id", "bad_format", kE, true},
      {"gcp domain-scoped project", "gcp", {{"project_id", "example.com:my-project"}}, GcpKey(), "project_id", "project_id_mismatch", kW},
      {"gcp zone as region", "gcp", {{"region", "us-central1-a"}}, GcpKey(), "region", "bad_region", kE},
      {"gcp region display name", "gcp", {{"region", "Iowa"}}, GcpKey(), "region", "bad_region", kE},
      {"gcp unknown region", "gcp", {{"region", "mars-north9"}}, GcpKey(), "region", "unknown_region", kW},
      {"gcp file overrides pasted", "gcp", {{"service_account_json", GcpKey({{"project_id", "old-project-9"}})}}, GcpKey(), "service_account_json", "file_overrides_field", kW},
      {"gcp trimmed", "gcp", {{"service_account_json", "\n\n" + GcpKey() + "  \n"}}, "", "service_account_json", "whitespace_trimmed", kI},
      {"gcp ids padded in key", "gcp", {}, GcpKey({{"project_id", " my-project-123\n"}}), "", "", kE},

      // Azure.
      {"azure valid", "azure", az, "", "", "", kE},
      {"azure cli file plus fields", "azure", {{"subscription_id", kGuid3}, {"resource_group", "monk-rg"}}, az_file_cli, "", "", kE},
      {"azure sdk auth file", "azure", {}, az_file_sdk, "", "", kE},
      {"azure file conflicts with field", "azure", {{"client_id", kGuid3}}, az_file_sdk, "client_id", "conflicting_values", kW, true},
      {"azure cli file missing subscription", "azure", {}, az_file_cli, "subscription_id", "missing_field", kE},
      {"azure missing resource group", "azure", {{"client_id", kGuid1}, {"client_secret", kAzureSecret}, {"tenant_id", kGuid2}, {"subscription_id", kGuid3}}, "", "resource_group", "missing_field", kE},
      {"azure client id not guid", "azure", az_with("client_id", "monk-deployment"), "", "client_id", "bad_format", kE},
      {"azure subscription not guid", "azure", az_with("subscription_id", "Pay-As-You-Go"), "", "subscription_id", "bad_format", kE},
      {"azure tenant not guid", "azure", az_with("tenant_id", "contoso"), "", "tenant_id", "bad_format", kE},
      {"azure tenant domain", "azure", az_with("tenant_id", "contoso.onmicrosoft.com"), "", "tenant_id", "tenant_domain", kW},
      {"azure secret id instead of value", "azure", az_with("client_secret", kGuid3), "", "client_secret", "secret_id_not_value", kW, true},
      {"azure same client and tenant", "azure", az_with("tenant_id", kGuid1), "", "client_id", "same_ids", kW},
      {"azure resource group with space", "azure", az_with("resource_group", "my group"), "", "resource_group", "bad_format", kE},
      {"azure resource group ends with period", "azure", az_with("resource_group", "monk-rg."), "", "resource_group", "bad_format", kE},
      {"azure resource group too long", "azure", az_with("resource_group", std::string(91, 'r')), "", "resource_group", "wrong_length", kE},
      {"azure resource group all allowed chars", "azure", az_with("resource_group", "Monk_rg-(prod).1"), "", "", "", kE},
      {"azure resource group unicode", "azure", az_with("resource_group", "r\xC3\xA9sum\xC3\xA9"), "", "", "", kE},

      // DigitalOcean.
      {"do valid", "digitalocean", {{"token", kDoToken}, {"region", "ams3"}}, "", "", "", kE},
      {"do legacy token", "digitalocean", {{"token", kHex64}}, "", "token", "legacy_token", kW},
      {"do short token", "digitalocean", {{"token", kDoToken.substr(0, 70)}}, "", "token", "wrong_length", kE},
      {"do not hex", "digitalocean", {{"token", "dop_v1_" + std::string(64, 'z')}}, "", "token", "bad_format", kE},
      {"do refresh token", "digitalocean", {{"token", "dor_v1_" + kHex64}}, "", "token", "refresh_token", kE},
      {"do oauth token", "digitalocean", {{"token", "doo_v1_" + kHex64}}, "", "token", "oauth_token", kW},
      {"do random", "digitalocean", {{"token", "my-do-token"}}, "", "token", "bad_format", kE},
      {"do missing token", "digitalocean", {{"region", "nyc1"}}, "", "token", "missing_field", kE},
      {"do unknown region", "digitalocean", {{"token", kDoToken}, {"region", "nyc2"}}, "", "region", "unknown_region", kW},
      {"do region name", "digitalocean", {{"token", kDoToken}, {"region", "New York 1"}}, "", "region", "bad_region", kE},

      // MongoDB Atlas.
      {"atlas api key", "mongodb-atlas", {{"organization", "Acme Corp"}, {"client_id", "abcdwxyz"}, {"client_secret", kGuid1}}, "", "", "", kE},
      {"atlas service account", "mongodb-atlas", {{"organization", "5f1a2b3c4d5e6f7a8b9c0d1e"}, {"client_id", atlas_sa_id}, {"client_secret", atlas_sa_secret}}, "", "", "", kE},
      {"atlas swapped id", "mongodb-atlas", {{"organization", "Acme"}, {"client_id", kGuid1}, {"client_secret", "abcdwxyz"}}, "", "client_id", "swapped_fields", kE},
      {"atlas swapped secret", "mongodb-atlas", {{"organization", "Acme"}, {"client_id", kGuid1}, {"client_secret", "abcdwxyz"}}, "", "client_secret", "swapped_fields", kE},
      {"atlas bad public key", "mongodb-atlas", {{"organization", "Acme"}, {"client_id", "ABCDWXYZ1"}, {"client_secret", kGuid1}}, "", "client_id", "bad_format", kE},
      {"atlas bad private key", "mongodb-atlas", {{"organization", "Acme"}, {"client_id", "abcdwxyz"}, {"client_secret", "not-a-guid"}}, "", "client_secret", "bad_format", kE},
      {"atlas mixed kinds", "mongodb-atlas", {{"organization", "Acme"}, {"client_id", "abcdwxyz"}, {"client_secret", atlas_sa_secret}}, "", "client_secret", "mismatched_pair", kE},
      {"atlas missing organization", "mongodb-atlas", {{"client_id", "abcdwxyz"}, {"client_secret", kGuid1}}, "", "organization", "missing_field", kE},
      {"atlas multi-line organization", "mongodb-atlas", {{"organization", "Acme\nCorp"}, {"client_id", "abcdwxyz"}, {"client_secret", kGuid1}}, "", "organization", "bad_format", kE},

      // Redis Cloud.
      {"redis valid", "redis-cloud", redis, "", "", "", kE},
      {"redis short password", "redis-cloud", redis_pw("abc123"), "", "database_password", "weak_password", kE},
      {"redis weak password", "redis-cloud", redis_pw("password1"), "", "database_password", "weak_password", kW},
      {"redis one-class password", "redis-cloud", redis_pw("abcdefghijklmnop"), "", "database_password", "weak_password", kW},
      {"redis same keys", "redis-cloud", {{"account_key", "SAMEKEY123"}, {"user_key", "SAMEKEY123"}, {"database_password", "Tr0ub4dor&3-horse"}}, "", "user_key", "same_value", kE},
      {"redis key with space", "redis-cloud", {{"account_key", "ABC DEF"}, {"user_key", "XYZ"}, {"database_password", "Tr0ub4dor&3-horse"}}, "", "account_key", "contains_whitespace", kE},
      {"redis missing password", "redis-cloud", {{"account_key", "A"}, {"user_key", "B"}}, "", "database_password", "missing_field", kE},

      // Netlify.
      {"netlify valid", "netlify", {{"access_token", "nfp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"}}, "", "", "", kE},
      {"netlify short", "netlify", {{"access_token", "abc"}}, "", "access_token", "wrong_length", kE},
      {"netlify bad chars", "netlify", {{"access_token", "abc$defghijklmnopqrstuvwxyz"}}, "", "access_token", "bad_format", kE},
      {"netlify wrapped", "netlify", {{"access_token", "abcdefghij\nklmnopqrstuvwxyz"}}, "", "access_token", "contains_whitespace", kE},
      {"netlify missing", "netlify", {}, "", "access_token", "missing_field", kE},

      // Auth0.
      {"auth0 valid", "auth0", {{"domain", "acme.auth0.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "", "", kE},
      {"auth0 regional", "auth0", {{"domain", "acme.eu.auth0.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "", "", kE},
      {"auth0 url normalized", "auth0", {{"domain", "https://acme.auth0.com/"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "domain_normalized", kI},
      {"auth0 unknown region", "auth0", {{"domain", "acme.zz.auth0.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "unknown_region", kW},
      {"auth0 dashboard", "auth0", {{"domain", "https://manage.auth0.com/dashboard/us/acme/"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "dashboard_domain", kE},
      {"auth0 bare auth0.com", "auth0", {{"domain", "auth0.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "dashboard_domain", kE},
      {"auth0 custom domain", "auth0", {{"domain", "login.example.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "custom_domain", kW},
      {"auth0 not a host", "auth0", {{"domain", "acme"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "bad_format", kE},
      {"auth0 port", "auth0", {{"domain", "acme.auth0.com:443"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "bad_format", kE},
      {"auth0 underscore host", "auth0", {{"domain", "my_tenant.auth0.com"}, {"client_id", auth0_id}, {"client_secret", auth0_secret}}, "", "domain", "bad_format", kE},
      {"auth0 unusual client id", "auth0", {{"domain", "acme.auth0.com"}, {"client_id", "short-id"}, {"client_secret", auth0_secret}}, "", "client_id", "unusual_client_id", kW},
      {"auth0 swapped", "auth0", {{"domain", "acme.auth0.com"}, {"client_id", auth0_secret}, {"client_secret", auth0_id}}, "", "client_id", "swapped_fields", kE},
      {"auth0 missing secret", "auth0", {{"domain", "acme.auth0.com"}, {"client_id", auth0_id}}, "", "client_secret", "missing_field", kE},

      // Vercel.
      {"vercel valid", "vercel", {{"token", "AbCdEfGhIjKlMnOpQrStUvWx"}}, "", "", "", kE},
      {"vercel with team", "vercel", {{"token", "AbCdEfGhIjKlMnOpQrStUvWx"}, {"team_id", "team_a1B2c3D4e5F6g7H8i9J0k1L2"}}, "", "", "", kE},
      {"vercel team slug", "vercel", {{"token", "AbCdEfGhIjKlMnOpQrStUvWx"}, {"team_id", "my-team"}}, "", "team_id", "bad_prefix", kE},
      {"vercel team bad chars", "vercel", {{"token", "AbCdEfGhIjKlMnOpQrStUvWx"}, {"team_id", "team_ab-cd"}}, "", "team_id", "bad_format", kE},
      {"vercel token with space", "vercel", {{"token", "AbCd EfGh"}}, "", "token", "contains_whitespace", kE},
      {"vercel missing token", "vercel", {{"team_id", "team_abc"}}, "", "token", "missing_field", kE},

      // GitHub.
      {"github fine-grained", "github", {{"token", kGithubToken}}, "", "", "", kE},
      {"github classic", "github", {{"token", "ghp_" + std::string(36, 'a')}}, "", "token", "classic_token", kE},
      {"github old classic", "github", {{"token", std::string(40, 'a')}}, "", "token", "classic_token", kE},
      {"github oauth", "github", {{"token", "gho_" + std::string(36, 'a')}}, "", "token", "oauth_token", kE},
      {"github user-to-server", "github", {{"token", "ghu_" + std::string(36, 'a')}}, "", "token", "app_token", kE},
      {"github installation", "github", {{"token", "ghs_" + std::string(36, 'a')}}, "", "token", "app_token", kE},
      {"github refresh", "github", {{"token", "ghr_" + std::string(76, 'a')}}, "", "token", "refresh_token", kE},
      {"github unknown", "github", {{"token", "my-token"}}, "", "token", "bad_prefix", kE},
      {"github cut short", "github", {{"token", kGithubToken.substr(0, 60)}}, "", "token", "unusual_length", kW},
      {"github bad chars", "github", {{"token", "github_pat_abc-def"}}, "", "token", "bad_format", kE},

      // Slack.
      {"slack valid", "slack", {{"webhook_url", kSlackUrl}}, "", "", "", kE},
      {"slack http", "slack", {{"webhook_url", "http://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"}}, "", "webhook_url", "insecure_scheme", kE},
      {"slack other host", "slack", {{"webhook_url", "https://hooks.example.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"}}, "", "webhook_url", "wrong_host", kE},
      {"slack lookalike host", "slack", {{"webhook_url", "https://hooks.slack.com.example.net/services/T0/B0/X"}}, "", "webhook_url", "wrong_host", kE},
      {"slack userinfo host", "slack", {{"webhook_url", "https://hooks.slack.com@example.net/services/T0/B0/X"}}, "", "webhook_url", "wrong_host", kE},
      {"slack no scheme", "slack", {{"webhook_url", "hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"}}, "", "webhook_url", "bad_format", kE},
      {"slack workflow", "slack", {{"webhook_url", "https://hooks.slack.com/workflows/T00000000/A00000000/123456789/abcdef"}}, "", "webhook_url", "workflow_webhook", kI},
      {"slack truncated", "slack", {{"webhook_url", "https://hooks.slack.com/services/T00000000/B00000000"}}, "", "webhook_url", "bad_format", kE},
      {"slack query", "slack", {{"webhook_url", std::string(kSlackUrl) + "?x=1"}}, "", "webhook_url", "bad_format", kE},
      {"slack short secret", "slack", {{"webhook_url", "https://hooks.slack.com/services/T00000000/B00000000/XXXX"}}, "", "webhook_url", "unusual_length", kW},

      // Custom.
      {"custom valid", "custom", {{"STRIPE_API_KEY", "sk_test_FAKE"}, {"db.password", "x"}, {"_private-1", "y"}}, "", "", "", kE},
      {"custom empty", "custom", {}, "", "", "missing_field", kE},
  };
  // clang-format on
}

TEST(ValidateTest, TableOfExamplesAndMistakes) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    Checked got = Check(c.provider, c.values, c.file);
    ASSERT_TRUE(got.status.ok()) << got.status;
    if (std::string(c.code).empty()) {
      EXPECT_FALSE(HasErrors(got.findings)) << Describe(got.findings);
      if (!c.allow_warnings) {
        for (const Finding& f : got.findings) {
          EXPECT_EQ(f.severity, Severity::kInfo) << Describe(got.findings);
        }
      }
      continue;
    }
    const Finding* f = FindFinding(got.findings, c.field, c.code);
    ASSERT_NE(f, nullptr) << "want " << c.field << "/" << c.code << " in "
                          << Describe(got.findings);
    EXPECT_EQ(f->severity, c.severity) << Describe(got.findings);
    EXPECT_FALSE(f->message.empty());
    if (f->severity != Severity::kInfo) {
      EXPECT_FALSE(f->fix.empty());
    }
    if (c.severity != Severity::kError) {
      // The expected finding is the only problem, unless allowed.
      if (!c.allow_warnings) {
        EXPECT_FALSE(HasErrors(got.findings)) << Describe(got.findings);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// No secret value in any message, fix, violation or status.

void ExpectNoCanary(const Checked& got, absl::string_view canary,
                    absl::string_view what) {
  SCOPED_TRACE(what);
  for (const Finding& f : got.findings) {
    EXPECT_FALSE(absl::StrContains(f.message, canary))
        << f.field << "/" << f.code;
    EXPECT_FALSE(absl::StrContains(f.fix, canary)) << f.field << "/" << f.code;
    EXPECT_FALSE(absl::StrContains(f.field, canary));
  }
  EXPECT_FALSE(absl::StrContains(got.status.ToString(), canary));
  for (const FieldViolation& v : GetFieldViolations(got.status)) {
    EXPECT_FALSE(absl::StrContains(v.description, canary));
  }
}

TEST(NoLeakTest, FindingsNeverContainValues) {
  const std::string c = "Qx9LEAKCANARY";
  // Shapes that reach different checks: prefixes, lengths, URLs, JSON.
  const std::vector<std::string> shapes = {
      c,
      " " + c + "\n",
      c + " " + c,
      "AKIA" + c,
      "ASIA" + c,
      "akia" + c,
      "AKIA" + c + "AKIA",
      std::string(27, 'A') + c,
      "dop_v1_" + c,
      "doo_v1_" + c,
      "dor_v1_" + c,
      "github_pat_" + c,
      "ghp_" + c,
      "mdb_sa_id_" + c,
      "mdb_sa_sk_" + c,
      "team_" + c,
      "https://" + c + ".auth0.com/",
      "https://hooks.slack.com/services/T" + c + "/B0/X",
      "https://" + c + "/services/T0/B0/X",
      "http://hooks.slack.com/" + c,
      "{\"type\": \"" + c + "\"}",
      "{\"" + c + "\": 1",
      GcpKey({{"private_key", c}, {"client_email", c}, {"project_id", c}}),
      GcpKey({{"type", c}}),
      "AIza" + c,
      c + ".",
      "00000000-0000-0000-0000-" + c,
  };
  for (const auto& p : ProviderRegistry::Default().providers()) {
    const ProviderSpec& spec = p->spec();
    std::vector<std::string> fields;
    for (const FieldSpec& f : spec.fields) fields.push_back(f.name);
    if (spec.arbitrary_fields) fields.push_back("MY_SECRET");
    for (const std::string& field : fields) {
      for (const std::string& shape : shapes) {
        // The field alone, and alongside canaries in every other field.
        Pairs alone = {{field, shape}};
        ExpectNoCanary(Check(spec.id, alone), c,
                       absl::StrCat(spec.id, ".", field, " alone"));
        Pairs all;
        for (const std::string& other : fields) {
          all.emplace_back(other, other == field ? shape : c);
        }
        ExpectNoCanary(Check(spec.id, all), c,
                       absl::StrCat(spec.id, ".", field, " with others"));
      }
    }
    // Files.
    for (const std::string& shape : shapes) {
      ExpectNoCanary(Check(spec.id, {}, shape), c,
                     absl::StrCat(spec.id, " file"));
      ExpectNoCanary(
          Check(spec.id, {},
                "{\"clientId\": \"" + shape + "\", \"password\": \"" + c +
                    "\", \"tenant\": 1}"),
          c, absl::StrCat(spec.id, " azure-like file"));
    }
  }
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
