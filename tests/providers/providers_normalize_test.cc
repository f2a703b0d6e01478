// Normalization, and each provider's own behaviours (GCP and Azure files,
// Auth0 domains, AWS lengths, GitHub tokens, custom field names).
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

}  // namespace
}  // namespace testing
}  // namespace credbroker
