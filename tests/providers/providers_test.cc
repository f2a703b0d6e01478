// Tests of the provider catalog: specs against the guide, the registry,
// masking and the findings helpers. All keys here are fake examples.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
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

}  // namespace
}  // namespace testing
}  // namespace credbroker
