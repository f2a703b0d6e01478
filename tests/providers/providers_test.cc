// Tests of the provider catalog: specs against the guide, normalization,
// offline validation (one case per mistake), masking, and that no finding or
// status ever carries a secret value. All keys here are fake examples.
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "common/errors.h"
#include "common/json.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

FieldValues Values(const Pairs& pairs) {
  FieldValues values;
  for (const auto& [name, value] : pairs) values[name] = SecretBytes(value);
  return values;
}

const Provider& P(absl::string_view id) {
  const Provider* p = ProviderRegistry::Default().Find(id);
  EXPECT_NE(p, nullptr) << id;
  return *p;
}

std::string ValueOf(const FieldValues& values, const std::string& name) {
  auto it = values.find(name);
  return it == values.end() ? "" : std::string(it->second.Reveal());
}

absl::string_view SeverityName(Severity s) {
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
std::string Describe(const std::vector<Finding>& findings) {
  std::vector<std::string> parts;
  for (const Finding& f : findings) {
    parts.push_back(
        absl::StrCat(f.field, "/", f.code, "/", SeverityName(f.severity)));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

const Finding* FindFinding(const std::vector<Finding>& findings,
                           absl::string_view field, absl::string_view code) {
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

Checked Check(absl::string_view provider, const Pairs& pairs,
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

constexpr char kAwsId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kAwsSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kAwsTempId[] = "ASIAIOSFODNN7EXAMPLE";
constexpr char kAwsToken[] =
    "IQoJb3JpZ2luX2VjEXAMPLETOKENAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

constexpr char kGuid1[] = "11111111-2222-3333-4444-555555555555";
constexpr char kGuid2[] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
constexpr char kGuid3[] = "01234567-89ab-cdef-0123-456789abcdef";
constexpr char kAzureSecret[] = "abc8Q~FAKEfakeFAKEfakeFAKEfakeFAKEfake.x";

const std::string kHex64(64, 'a');
const std::string kDoToken =
    "dop_v1_" + std::string(32, '0') + std::string(32, 'f');

constexpr char kFakePem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFAKEFAKEFAKEFAKE\n"
    "FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFA==\n"
    "-----END PRIVATE KEY-----\n";

// A fake service account key file; `overrides` replace or (with value
// "<omit>") remove members.
std::string GcpKey(const Pairs& overrides = {}) {
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

const std::string kGithubToken =
    "github_pat_" + std::string(22, 'A') + "_" + std::string(59, 'b');
constexpr char kSlackUrl[] =
    "https://hooks.slack.com/services/T00000000/B00000000/"
    "XXXXXXXXXXXXXXXXXXXXXXXX";

// ---------------------------------------------------------------------------
// Registry and specs.

TEST(RegistryTest, DefaultCatalogInOrder) {
  std::vector<std::string> ids;
  for (const auto& p : ProviderRegistry::Default().providers()) {
    ids.push_back(p->spec().id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{
                     "aws", "gcp", "azure", "digitalocean", "mongodb-atlas",
                     "redis-cloud", "netlify", "auth0", "vercel", "github",
                     "slack", "custom"}));
}

TEST(RegistryTest, FindAndGet) {
  const ProviderRegistry& r = ProviderRegistry::Default();
  EXPECT_EQ(r.Find("nope"), nullptr);
  EXPECT_EQ(r.Find("AWS"), nullptr);
  ASSERT_NE(r.Find("aws"), nullptr);
  absl::StatusOr<const Provider*> got = r.Get("github");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->spec().id, "github");

  absl::StatusOr<const Provider*> bad = r.Get("heroku-LEAKCANARY");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "aws, gcp, azure"));
  EXPECT_FALSE(absl::StrContains(bad.status().message(), "LEAKCANARY"));
  std::vector<FieldViolation> v = GetFieldViolations(bad.status());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "provider");
  EXPECT_TRUE(absl::StrContains(v[0].description, "mongodb-atlas"));
  EXPECT_TRUE(absl::StrContains(v[0].description, "custom"));
}

TEST(SpecTest, EverySpecIsComplete) {
  for (const auto& p : ProviderRegistry::Default().providers()) {
    const ProviderSpec& s = p->spec();
    SCOPED_TRACE(s.id);
    EXPECT_FALSE(s.display_name.empty());
    EXPECT_FALSE(s.description.empty());
    EXPECT_FALSE(s.how_to_get.empty());
    EXPECT_FALSE(s.troubleshooting.empty());
    EXPECT_FALSE(s.best_practices.empty());
    EXPECT_EQ(s.rotation_period, absl::Hours(24 * 90));
    EXPECT_EQ(s.arbitrary_fields, s.id == "custom");
    EXPECT_EQ(s.oauth, s.id == "netlify");
    EXPECT_EQ(s.fields.empty(), s.id == "custom");
    std::set<std::string> names;
    for (const FieldSpec& f : s.fields) {
      SCOPED_TRACE(f.name);
      EXPECT_TRUE(names.insert(f.name).second) << "duplicate field";
      EXPECT_FALSE(f.label.empty());
      EXPECT_FALSE(f.format_hint.empty());
      EXPECT_FALSE(f.where_to_find.empty());
      for (char c : f.name) {
        EXPECT_TRUE(absl::ascii_islower(c) || c == '_') << "not lower_snake";
      }
      EXPECT_EQ(s.FindField(f.name), &f);
      if (!f.default_value.empty()) {
        EXPECT_TRUE(f.optional);
      }
    }
    EXPECT_EQ(s.FindField("no_such_field"), nullptr);
  }
}

struct FieldExpect {
  const char* provider;
  const char* field;
  bool sensitive;
  bool optional;
  bool derived;
  const char* default_value;
};

TEST(SpecTest, FieldsMatchTheGuide) {
  const FieldExpect expected[] = {
      {"aws", "access_key_id", false, false, false, ""},
      {"aws", "secret_access_key", true, false, false, ""},
      {"aws", "session_token", true, true, false, ""},
      {"aws", "region", false, true, false, "us-east-1"},
      {"aws", "expires_at", false, true, false, ""},
      {"gcp", "service_account_json", true, false, false, ""},
      {"gcp", "project_id", false, true, true, ""},
      {"gcp", "client_email", false, true, true, ""},
      {"gcp", "region", false, true, false, "us-central1"},
      {"azure", "client_id", false, false, false, ""},
      {"azure", "client_secret", true, false, false, ""},
      {"azure", "tenant_id", false, false, false, ""},
      {"azure", "subscription_id", false, false, false, ""},
      {"azure", "resource_group", false, false, false, ""},
      {"azure", "expires_at", false, true, false, ""},
      {"digitalocean", "token", true, false, false, ""},
      {"digitalocean", "region", false, true, false, "nyc1"},
      {"mongodb-atlas", "organization", false, false, false, ""},
      {"mongodb-atlas", "client_id", false, false, false, ""},
      {"mongodb-atlas", "client_secret", true, false, false, ""},
      {"redis-cloud", "account_key", true, false, false, ""},
      {"redis-cloud", "user_key", true, false, false, ""},
      {"redis-cloud", "database_password", true, false, false, ""},
      {"netlify", "access_token", true, false, false, ""},
      {"auth0", "domain", false, false, false, ""},
      {"auth0", "client_id", false, false, false, ""},
      {"auth0", "client_secret", true, false, false, ""},
      {"vercel", "token", true, false, false, ""},
      {"vercel", "team_id", false, true, false, ""},
      {"vercel", "expires_at", false, true, false, ""},
      {"github", "token", true, false, false, ""},
      {"github", "expires_at", false, true, false, ""},
      {"slack", "webhook_url", true, false, false, ""},
  };
  std::map<std::string, size_t> counts;
  for (const FieldExpect& e : expected) {
    SCOPED_TRACE(absl::StrCat(e.provider, ".", e.field));
    const FieldSpec* f = P(e.provider).spec().FindField(e.field);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->sensitive, e.sensitive);
    EXPECT_EQ(f->optional, e.optional);
    EXPECT_EQ(f->derived, e.derived);
    EXPECT_EQ(f->default_value, e.default_value);
    ++counts[e.provider];
  }
  for (const auto& [id, n] : counts) {
    EXPECT_EQ(P(id).spec().fields.size(), n) << id;
  }
  EXPECT_TRUE(P("aws").spec().FindField("access_key_id")->partially_masked);
  EXPECT_TRUE(P("gcp").spec().FindField("service_account_json")->multiline);
  EXPECT_TRUE(
      P("redis-cloud").spec().FindField("database_password")->generatable);
  EXPECT_EQ(P("aws").spec().default_region, "us-east-1");
  EXPECT_EQ(P("gcp").spec().default_region, "us-central1");
  EXPECT_EQ(P("digitalocean").spec().default_region, "nyc1");
}

bool ContainsLine(const std::vector<std::string>& lines,
                  absl::string_view text) {
  for (const std::string& l : lines) {
    if (absl::StrContains(l, text)) return true;
  }
  return false;
}

TEST(SpecTest, PermissionsStepsAndTroubleshootingMatchTheGuide) {
  struct Case {
    const char* provider;
    size_t min_steps;  // The guide's numbered steps.
    std::vector<const char*> permissions;
    std::vector<const char*> troubleshooting;
  } cases[] = {
      {"aws",
       7,
       {"AmazonEC2FullAccess", "AmazonVPCFullAccess", "IAMReadOnlyAccess"},
       {"Access keys disabled", "Missing required permissions",
        "Region mismatch"}},
      {"gcp",
       10,
       {"Compute Admin", "Service Account User"},
       {"Service account disabled", "JSON key file malformed",
        "Missing required roles"}},
      {"azure",
       10,
       {"Contributor"},
       {"Client secret expired", "Wrong tenant ID",
        "Missing Contributor role"}},
      {"digitalocean",
       8,
       {"Read", "Write"},
       {"Token revoked", "Insufficient scopes"}},
      {"mongodb-atlas",
       10,
       {"Organization Project Creator", "Project Cluster Manager",
        "Project User Admin"},
       {"API key disabled or deleted", "Wrong organization name/ID",
        "Insufficient permissions on API key"}},
      {"redis-cloud", 5, {}, {"typos or extra spaces"}},
      {"netlify", 6, {}, {"Connect Netlify"}},
      {"auth0",
       9,
       {"Applications", "Users", "Resource Servers"},
       {"your-tenant.auth0.com"}},
      {"vercel", 8, {"Full Account"}, {"Token expired"}},
      {"github",
       9,
       {"Actions: Read and write", "Secrets: Read and write",
        "Environments: Read and write", "Contents: Read", "Metadata: Read"},
       {"Token expired"}},
      {"slack", 7, {}, {"Incoming Webhooks"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.provider);
    const ProviderSpec& s = P(c.provider).spec();
    EXPECT_GE(s.how_to_get.size(), c.min_steps);
    for (const char* perm : c.permissions) {
      EXPECT_TRUE(ContainsLine(s.required_permissions, perm)) << perm;
    }
    for (const char* t : c.troubleshooting) {
      EXPECT_TRUE(ContainsLine(s.troubleshooting, t)) << t;
    }
    // The guide's general checks apply to every provider.
    EXPECT_TRUE(ContainsLine(s.troubleshooting, "extra spaces"));
    EXPECT_TRUE(ContainsLine(s.troubleshooting, "haven't expired"));
    EXPECT_TRUE(ContainsLine(s.best_practices, "90 days"));
  }
  EXPECT_EQ(P("github").spec().required_permissions.size(), 5u);
  EXPECT_EQ(P("mongodb-atlas").spec().required_permissions.size(), 3u);
  EXPECT_TRUE(ContainsLine(P("aws").spec().how_to_get, "Third-party service"));
  EXPECT_TRUE(ContainsLine(P("gcp").spec().how_to_get, "JSON"));
  EXPECT_TRUE(ContainsLine(P("aws").spec().best_practices, "MFA"));
  EXPECT_TRUE(ContainsLine(P("aws").spec().best_practices, "CloudTrail"));
  EXPECT_TRUE(ContainsLine(P("gcp").spec().best_practices, "Audit Logs"));
  EXPECT_TRUE(ContainsLine(P("azure").spec().best_practices, "Activity Log"));
  EXPECT_TRUE(ContainsLine(P("mongodb-atlas").spec().best_practices,
                           "Access Tracking"));
}

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
// Specific behaviours.

TEST(NormalizeTest, TrimsAndReportsWithoutValues) {
  absl::StatusOr<NormalizeResult> r = P("aws").Normalize(
      Values({{"access_key_id", "\t AKIAIOSFODNN7EXAMPLE \r\n"},
              {"secret_access_key",
               "\xC2\xA0wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\xE2\x80\x8B"},
              {"region", "us-east-1"}}),
      "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ValueOf(r->values, "access_key_id"), kAwsId);
  EXPECT_TRUE(ValueOf(r->values, "secret_access_key") == kAwsSecret);
  EXPECT_EQ(ValueOf(r->values, "region"), "us-east-1");
  ASSERT_EQ(r->findings.size(), 2u) << Describe(r->findings);
  for (const Finding& f : r->findings) {
    EXPECT_EQ(f.code, "whitespace_trimmed");
    EXPECT_EQ(f.severity, Severity::kInfo);
  }
  EXPECT_FALSE(HasErrors(P("aws").Validate(r->values)));
}

TEST(NormalizeTest, DropsBlankValues) {
  absl::StatusOr<NormalizeResult> r =
      P("aws").Normalize(Values({{"access_key_id", kAwsId},
                                 {"secret_access_key", kAwsSecret},
                                 {"region", "   "},
                                 {"session_token", ""}}),
                         "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->values.count("region"), 0u);
  EXPECT_EQ(r->values.count("session_token"), 0u);
}

TEST(NormalizeTest, UnknownFieldNamesTheKnownOnes) {
  absl::StatusOr<NormalizeResult> r = P("aws").Normalize(
      Values({{"access_key_id", kAwsId}, {"secret_key", kAwsSecret}}), "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FieldViolation> v = GetFieldViolations(r.status());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "values.secret_key");
  EXPECT_TRUE(absl::StrContains(v[0].description,
                                "access_key_id, secret_access_key, "
                                "session_token, region"))
      << v[0].description;
}

TEST(NormalizeTest, ProvidersWithoutFilesRefuseOne) {
  for (const char* id : {"aws", "digitalocean", "github", "custom", "auth0"}) {
    SCOPED_TRACE(id);
    absl::StatusOr<NormalizeResult> r = P(id).Normalize({}, "{\"a\": 1}");
    ASSERT_FALSE(r.ok());
    std::vector<FieldViolation> v = GetFieldViolations(r.status());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "from_file");
  }
  // Whitespace alone is no file.
  EXPECT_TRUE(P("aws").Normalize({}, " \n").ok());
}

TEST(GcpTest, ExtractsProjectAndEmailFromKey) {
  Checked got = Check("gcp", {}, GcpKey());
  ASSERT_TRUE(got.status.ok());
  EXPECT_EQ(ValueOf(got.values, "project_id"), "my-project-123");
  EXPECT_EQ(ValueOf(got.values, "client_email"),
            "monk-deployment@my-project-123.iam.gserviceaccount.com");
  std::string key = GcpKey();
  key.pop_back();  // The trailing newline is trimmed.
  EXPECT_TRUE(ValueOf(got.values, "service_account_json") == key);
  EXPECT_TRUE(MissingFields(P("gcp").spec(), got.values).empty());
}

TEST(GcpTest, KeepsTheProjectTheUserGave) {
  Checked got = Check("gcp", {{"project_id", "other-project-1"}}, GcpKey());
  ASSERT_TRUE(got.status.ok());
  EXPECT_EQ(ValueOf(got.values, "project_id"), "other-project-1");
}

TEST(GcpTest, MalformedFileReportsLineAndColumnWithoutKeyText) {
  // Line 3 lacks its trailing comma: the error is at the start of line 4.
  std::string key =
      GcpKey({{"private_key",
               "-----BEGIN PRIVATE KEY-----\nLEAKCANARY\n-----END PRIVATE "
               "KEY-----\n"}});
  size_t line3_end = key.find('\n', key.find('\n', key.find('\n') + 1) + 1);
  ASSERT_EQ(key[line3_end - 1], ',');
  key.erase(line3_end - 1, 1);
  absl::StatusOr<NormalizeResult> r = P("gcp").Normalize({}, key);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FieldViolation> v = GetFieldViolations(r.status());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "from_file");
  EXPECT_TRUE(absl::StrContains(v[0].description, "line 4, column 3"))
      << v[0].description;
  EXPECT_FALSE(absl::StrContains(v[0].description, "LEAKCANARY"));
  EXPECT_FALSE(absl::StrContains(r.status().ToString(), "LEAKCANARY"));

  // Pasted in the field instead: the violation names the field.
  r = P("gcp").Normalize(Values({{"service_account_json", key}}), "");
  ASSERT_FALSE(r.ok());
  v = GetFieldViolations(r.status());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].field, "values.service_account_json");

  // Validate alone (a stored value) reports it as a finding.
  std::vector<Finding> f =
      P("gcp").Validate(Values({{"service_account_json", key}}));
  const Finding* m = FindFinding(f, "service_account_json", "malformed_json");
  ASSERT_NE(m, nullptr) << Describe(f);
  EXPECT_TRUE(absl::StrContains(m->message, "line 4, column 3"));
}

TEST(GcpTest, RejectsWhatIsNotAKeyFileWithAnExplanation) {
  struct NotKey {
    const char* value;
    const char* explanation;
  } cases[] = {
      {"AIzaSyDFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", "API key"},
      {"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
       "whole JSON key file"},
      {"ya29.a0FAKEFAKE", "access token"},
      {"just some text", "not a JSON key file"},
      {"[1, 2]", "not a JSON key file"},
  };
  for (const NotKey& c : cases) {
    SCOPED_TRACE(c.explanation);
    absl::StatusOr<NormalizeResult> r =
        P("gcp").Normalize(Values({{"service_account_json", c.value}}), "");
    ASSERT_FALSE(r.ok());
    std::vector<FieldViolation> v = GetFieldViolations(r.status());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "values.service_account_json");
    EXPECT_TRUE(absl::StrContains(v[0].description, c.explanation))
        << v[0].description;
    EXPECT_TRUE(absl::StrContains(v[0].description, "Create new key"));
  }
  absl::StatusOr<NormalizeResult> r = P("gcp").Normalize({}, "[1]");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(GetFieldViolations(r.status())[0].description,
                                "not a JSON key file"));
}

TEST(GcpTest, UserCredentialFileExplainsWhy) {
  Checked got = Check("gcp", {},
                      "{\"type\": \"authorized_user\", \"client_id\": \"x\", "
                      "\"client_secret\": \"y\", \"refresh_token\": \"z\"}");
  const Finding* f =
      FindFinding(got.findings, "service_account_json", "wrong_key_type");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(absl::StrContains(f->message, "authorized_user"));
  EXPECT_TRUE(absl::StrContains(f->message, "service account"));
}

TEST(AzureTest, ReadsTheFileSpellings) {
  struct Spelling {
    const char* id;
    const char* secret;
    const char* tenant;
    const char* sub;
    const char* group;
  } spellings[] = {
      {"clientId", "clientSecret", "tenantId", "subscriptionId",
       "resourceGroup"},
      {"client_id", "client_secret", "tenant_id", "subscription_id",
       "resource_group"},
      {"appId", "password", "tenant", "SUBSCRIPTIONID", "resourceGroupName"},
      {"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
       "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"},
  };
  for (const Spelling& s : spellings) {
    SCOPED_TRACE(s.id);
    std::string file = absl::StrCat(
        "{", JsonQuote(s.id), ": ", JsonQuote(kGuid1), ", ",
        JsonQuote(s.secret), ": ", JsonQuote(kAzureSecret), ", ",
        JsonQuote(s.tenant), ": ", JsonQuote(kGuid2), ", ", JsonQuote(s.sub),
        ": ", JsonQuote(kGuid3), ", ", JsonQuote(s.group),
        ": \"monk-rg\", \"displayName\": \"ignored\"}");
    Checked got = Check("azure", {}, file);
    ASSERT_TRUE(got.status.ok()) << got.status;
    EXPECT_FALSE(HasErrors(got.findings)) << Describe(got.findings);
    EXPECT_EQ(ValueOf(got.values, "client_id"), kGuid1);
    EXPECT_TRUE(ValueOf(got.values, "client_secret") == kAzureSecret);
    EXPECT_EQ(ValueOf(got.values, "tenant_id"), kGuid2);
    EXPECT_EQ(ValueOf(got.values, "subscription_id"), kGuid3);
    EXPECT_EQ(ValueOf(got.values, "resource_group"), "monk-rg");
    EXPECT_EQ(got.values.size(), 5u);
  }
}

TEST(AzureTest, UnreadableFiles) {
  struct Bad {
    std::string file;
    const char* what;
  } cases[] = {
      {"{\n  \"clientId\": \"LEAKCANARY\"\n  \"tenantId\": \"x\"\n}",
       "line 3, column 3"},
      {"[]", "an array"},
      {"{\"displayName\": \"monk\"}", "none of the expected keys"},
      {"{\"clientId\": 42}", "\"clientId\" holds a number"},
      {"clientId=LEAKCANARY", "line 1, column 1"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<NormalizeResult> r = P("azure").Normalize({}, c.file);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    std::vector<FieldViolation> v = GetFieldViolations(r.status());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "from_file");
    EXPECT_TRUE(absl::StrContains(v[0].description, c.what))
        << v[0].description;
    EXPECT_FALSE(absl::StrContains(v[0].description, "LEAKCANARY"));
    EXPECT_FALSE(absl::StrContains(r.status().ToString(), "LEAKCANARY"));
  }
}

TEST(Auth0Test, NormalizesDomains) {
  struct Domain {
    const char* in;
    const char* out;
    bool reported;
  } cases[] = {
      {"https://acme.auth0.com/", "acme.auth0.com", true},
      {"https://Acme.EU.Auth0.com/api/v2/", "acme.eu.auth0.com", true},
      {"HTTP://acme.auth0.com", "acme.auth0.com", true},
      {"acme.auth0.com/", "acme.auth0.com", true},
      {"acme.auth0.com", "acme.auth0.com", false},
  };
  for (const Domain& d : cases) {
    SCOPED_TRACE(d.in);
    absl::StatusOr<NormalizeResult> r =
        P("auth0").Normalize(Values({{"domain", d.in}}), "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(ValueOf(r->values, "domain"), d.out);
    EXPECT_EQ(
        FindFinding(r->findings, "domain", "domain_normalized") != nullptr,
        d.reported);
  }
  // Validate alone refuses an unnormalized domain.
  std::vector<Finding> f =
      P("auth0").Validate(Values({{"domain", "https://acme.auth0.com/"}}));
  EXPECT_NE(FindFinding(f, "domain", "bad_format"), nullptr) << Describe(f);
}

TEST(AwsTest, WrongLengthSaysActualAndExpected) {
  Checked got =
      Check("aws", {{"access_key_id", "AKIAIOSFODNN7EXAMPL"},
                    {"secret_access_key", kAwsSecret + std::string("A")}});
  const Finding* id =
      FindFinding(got.findings, "access_key_id", "wrong_length");
  ASSERT_NE(id, nullptr);
  EXPECT_TRUE(absl::StrContains(id->message, "19"));
  EXPECT_TRUE(absl::StrContains(id->message, "20"));
  const Finding* s =
      FindFinding(got.findings, "secret_access_key", "wrong_length");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(absl::StrContains(s->message, "41"));
  EXPECT_TRUE(absl::StrContains(s->message, "40"));
}

TEST(GithubTest, ClassicTokenRefusalGivesTheReason) {
  Checked got = Check("github", {{"token", "ghp_" + std::string(36, 'a')}});
  const Finding* f = FindFinding(got.findings, "token", "classic_token");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(absl::StrContains(f->message, "fine-grained"));
  EXPECT_TRUE(absl::StrContains(f->message, "repositories"));
  EXPECT_TRUE(absl::StrContains(f->fix, "Fine-grained tokens"));
}

TEST(CustomTest, FieldNames) {
  const char* good[] = {"A",           "_",   "STRIPE_API_KEY",
                        "db.password", "a-b", "x123"};
  for (const char* name : good) {
    EXPECT_TRUE(P("custom").Normalize(Values({{name, "v"}}), "").ok()) << name;
  }
  const std::string too_long(65, 'a');
  const std::string longest(64, 'a');
  EXPECT_TRUE(P("custom").Normalize(Values({{longest, "v"}}), "").ok());
  const std::string bad[] = {"1abc", "-x",  ".x",     "has space",
                             "a/b",  "a=b", too_long, "caf\xC3\xA9"};
  for (const std::string& name : bad) {
    absl::StatusOr<NormalizeResult> r =
        P("custom").Normalize(Values({{name, "v"}}), "");
    ASSERT_FALSE(r.ok()) << name;
    std::vector<FieldViolation> v = GetFieldViolations(r.status());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "values." + name);
  }
}

// ---------------------------------------------------------------------------
// Masking and helpers.

TEST(MaskValueTest, Rules) {
  FieldSpec sensitive;
  sensitive.sensitive = true;
  FieldSpec partial;
  partial.partially_masked = true;
  FieldSpec plain;
  EXPECT_EQ(MaskValue(sensitive, SecretBytes(kAwsSecret)),
            "\xE2\x80\xA6"
            "EKEY");
  EXPECT_EQ(MaskValue(sensitive, SecretBytes("0123456789abcdef")),
            "\xE2\x80\xA6"
            "cdef");                                                       // 16
  EXPECT_EQ(MaskValue(sensitive, SecretBytes("0123456789abcde")), "set");  // 15
  EXPECT_EQ(MaskValue(sensitive, SecretBytes("")), "");
  EXPECT_EQ(MaskValue(partial, SecretBytes(kAwsId)),
            "AKIA\xE2\x80\xA6"
            "MPLE");
  EXPECT_EQ(MaskValue(partial, SecretBytes("0123456789ab")),
            "0123\xE2\x80\xA6"
            "89ab");                                                 // 12
  EXPECT_EQ(MaskValue(partial, SecretBytes("0123456789a")), "set");  // 11
  EXPECT_EQ(MaskValue(plain, SecretBytes("us-east-1")), "us-east-1");
  // Characters, not bytes: a multi-byte character is never cut in half.
  EXPECT_EQ(MaskValue(sensitive, SecretBytes("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                                             "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                                             "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                                             "abc\xC3\xA9")),
            "\xE2\x80\xA6"
            "abc\xC3\xA9");
  // Sensitive wins over partially masked.
  FieldSpec both = partial;
  both.sensitive = true;
  EXPECT_EQ(MaskValue(both, SecretBytes(kAwsId)),
            "\xE2\x80\xA6"
            "MPLE");
}

TEST(MissingFieldsTest, RequiredOnly) {
  EXPECT_EQ(MissingFields(P("aws").spec(), {}),
            (std::vector<std::string>{"access_key_id", "secret_access_key"}));
  EXPECT_EQ(MissingFields(P("aws").spec(), Values({{"access_key_id", kAwsId}})),
            (std::vector<std::string>{"secret_access_key"}));
  EXPECT_EQ(MissingFields(P("aws").spec(), Values({{"access_key_id", kAwsId},
                                                   {"secret_access_key", ""}})),
            (std::vector<std::string>{"secret_access_key"}));
  EXPECT_EQ(MissingFields(P("gcp").spec(), {}),
            (std::vector<std::string>{"service_account_json"}));
  EXPECT_EQ(MissingFields(P("azure").spec(), {}).size(), 5u);
  EXPECT_TRUE(MissingFields(P("custom").spec(), {}).empty());
  EXPECT_EQ(MissingFields(P("vercel").spec(), {}),
            (std::vector<std::string>{"token"}));
}

TEST(HasErrorsTest, OnlyErrorsCount) {
  EXPECT_FALSE(HasErrors({}));
  EXPECT_FALSE(HasErrors({{"a", Severity::kInfo, "c", "m", ""},
                          {"b", Severity::kWarning, "c", "m", ""}}));
  EXPECT_TRUE(HasErrors({{"a", Severity::kInfo, "c", "m", ""},
                         {"b", Severity::kError, "c", "m", ""}}));
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
}  // namespace credbroker
