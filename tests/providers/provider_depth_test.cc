// Table-driven tests of the provider rules added for issue 4: expiry dates
// (AWS STS Expiration, Azure client secret, GitHub and Vercel tokens) and the
// GCP private key's PKCS#8 RSA header. Each case asserts the exact finding.
// All keys here are fake examples; no output prints a value.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "common/json.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

const Provider& P(absl::string_view id) {
  const Provider* p = ProviderRegistry::Default().Find(id);
  EXPECT_NE(p, nullptr) << id;
  return *p;
}

// "field/code" of each finding: safe to print, holds no values.
std::string Describe(const std::vector<Finding>& findings) {
  std::vector<std::string> parts;
  for (const Finding& f : findings) {
    parts.push_back(absl::StrCat(f.field, "/", f.code));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

std::vector<Finding> Check(absl::string_view provider, const Pairs& pairs) {
  FieldValues values;
  for (const auto& [k, v] : pairs) values[k] = SecretBytes(v);
  absl::StatusOr<NormalizeResult> n =
      P(provider).Normalize(std::move(values), "");
  EXPECT_TRUE(n.ok()) << n.status();
  if (!n.ok()) return {};
  std::vector<Finding> out = n->findings;
  std::vector<Finding> v = P(provider).Validate(n->values);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

// AWS's documented example keys.
constexpr char kAwsId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kAwsTempId[] = "ASIAIOSFODNN7EXAMPLE";
constexpr char kAwsSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kAwsToken[] =
    "IQoJb3JpZ2luX2VjEXAMPLETOKENAAAAAAAAAAAAAAAAAAAA==";
constexpr char kGuidA[] = "11111111-2222-3333-4444-555555555555";
constexpr char kGuidB[] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
constexpr char kGuidC[] = "01234567-89ab-cdef-0123-456789abcdef";
constexpr char kAzureSecret[] = "abc8Q~FAKEfakeFAKEfakeFAKEfakeFAKEfake.x";
const std::string kGithubToken =
    "github_pat_" + std::string(22, 'A') + "_" + std::string(59, 'b');

// PKCS#8 headers: an RSA key (rsaEncryption) as GCP issues, and a P-256 EC
// key (id-ecPublicKey). Bodies after the header are filler.
constexpr char kRsaBody[] =
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFAKEFAKEFAKEFAKE\n"
    "FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFA==\n";
constexpr char kEcBody[] =
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFAKEFAKEFAKEFAKEFAKE\n"
    "FAKEFAKEFAKEFAKEFAKEFAKEoUQDQgAEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE\n";
// A PKCS#1 (RSAPrivateKey, no algorithm identifier) body put in a PKCS#8
// block: not what GCP issues.
constexpr char kPkcs1Body[] =
    "MIIEpAIBAAKCAQEAFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE\n";

std::string Pem(absl::string_view body) {
  return absl::StrCat("-----BEGIN PRIVATE KEY-----\n", body,
                      "-----END PRIVATE KEY-----\n");
}

std::string GcpKey(const std::string& pem) {
  return absl::StrCat(
      "{\"type\": \"service_account\", \"project_id\": \"my-project-123\", "
      "\"private_key_id\": \"0123456789abcdef0123456789abcdef01234567\", "
      "\"private_key\": ",
      JsonQuote(pem),
      ", \"client_email\": "
      "\"monk-deployment@my-project-123.iam.gserviceaccount.com\"}");
}

struct Case {
  const char* name;
  const char* provider;
  Pairs values;
  const char* field;  // Expected finding; "" for none at warning or above.
  const char* code;
  Severity severity;
};

std::vector<Case> Cases() {
  constexpr Severity kE = Severity::kError;
  // clang-format off
  return {
      // Expiry dates: a date or an RFC 3339 time is accepted...
      {"aws temp key with STS expiration", "aws",
       {{"access_key_id", kAwsTempId}, {"secret_access_key", kAwsSecret},
        {"session_token", kAwsToken}, {"expires_at", "2030-01-01T12:00:00Z"}},
       "access_key_id", "temporary_key", Severity::kWarning},
      {"azure secret expiry date", "azure",
       {{"client_id", kGuidA}, {"client_secret", kAzureSecret},
        {"tenant_id", kGuidB}, {"subscription_id", kGuidC},
        {"resource_group", "monk-rg"}, {"expires_at", "2030-06-30"}},
       "", "", kE},
      {"github token expiry", "github",
       {{"token", kGithubToken}, {"expires_at", "2030-12-31"}}, "", "", kE},
      {"vercel token expiry", "vercel",
       {{"token", std::string(24, 'a')}, {"expires_at", "2030-12-31"}},
       "", "", kE},
      // ... anything else is refused with the format to use.
      {"github expiry in words", "github",
       {{"token", kGithubToken}, {"expires_at", "next month"}},
       "expires_at", "bad_format", kE},
      {"azure expiry month 13", "azure",
       {{"client_id", kGuidA}, {"client_secret", kAzureSecret},
        {"tenant_id", kGuidB}, {"subscription_id", kGuidC},
        {"resource_group", "monk-rg"}, {"expires_at", "2030-13-01"}},
       "expires_at", "bad_format", kE},
      {"vercel expiry US order", "vercel",
       {{"token", std::string(24, 'a')}, {"expires_at", "12/31/2030"}},
       "expires_at", "bad_format", kE},
      {"aws expiration without zone", "aws",
       {{"access_key_id", kAwsId}, {"secret_access_key", kAwsSecret},
        {"expires_at", "2030-01-01 12:00"}},
       "expires_at", "bad_format", kE},
      // GCP private key: a PKCS#8 RSA key passes; others say what they are.
      {"gcp rsa pkcs8", "gcp",
       {{"service_account_json", GcpKey(Pem(kRsaBody))}}, "", "", kE},
      {"gcp ec key", "gcp",
       {{"service_account_json", GcpKey(Pem(kEcBody))}},
       "service_account_json", "bad_private_key", kE},
      {"gcp pkcs1 body", "gcp",
       {{"service_account_json", GcpKey(Pem(kPkcs1Body))}},
       "service_account_json", "bad_private_key", kE},
      {"gcp non-base64 body", "gcp",
       {{"service_account_json", GcpKey(Pem("MIIEvQIBADANBgkqhkiG9w0B*AQEFAASC\n"))}},
       "service_account_json", "bad_private_key", kE},
      {"gcp truncated body", "gcp",
       {{"service_account_json", GcpKey(Pem("MIIEvQIBADAN\n"))}},
       "service_account_json", "bad_private_key", kE},
  };
  // clang-format on
}

TEST(ProviderDepthTest, TableOfRules) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::vector<Finding> got = Check(c.provider, c.values);
    if (std::string(c.code).empty()) {
      EXPECT_FALSE(HasErrors(got)) << Describe(got);
      continue;
    }
    const Finding* found = nullptr;
    for (const Finding& f : got) {
      if (f.field == c.field && f.code == c.code) found = &f;
    }
    ASSERT_NE(found, nullptr)
        << "want " << c.field << "/" << c.code << " in " << Describe(got);
    EXPECT_EQ(found->severity, c.severity);
    EXPECT_FALSE(found->message.empty());
    EXPECT_FALSE(found->fix.empty());
  }
}

TEST(ProviderDepthTest, GcpKeyFindingsNameTheKeyKind) {
  std::vector<Finding> ec =
      Check("gcp", {{"service_account_json", GcpKey(Pem(kEcBody))}});
  bool said = false;
  for (const Finding& f : ec) {
    if (f.code == "bad_private_key") {
      said = absl::StrContains(f.message, "elliptic-curve");
      // Never any of the key text.
      EXPECT_FALSE(absl::StrContains(f.message, "FAKE"));
      EXPECT_FALSE(absl::StrContains(f.fix, "FAKE"));
    }
  }
  EXPECT_TRUE(said) << Describe(ec);
}

TEST(ProviderDepthTest, ParseExpiry) {
  EXPECT_EQ(ParseExpiry("2030-01-02"),
            absl::FromCivil(absl::CivilDay(2030, 1, 2), absl::UTCTimeZone()));
  EXPECT_EQ(ParseExpiry("2030-01-02T03:04:05Z"),
            absl::FromCivil(absl::CivilSecond(2030, 1, 2, 3, 4, 5),
                            absl::UTCTimeZone()));
  EXPECT_EQ(ParseExpiry("2030-01-02T03:04:05+02:00"),
            absl::FromCivil(absl::CivilSecond(2030, 1, 2, 1, 4, 5),
                            absl::UTCTimeZone()));
  for (const char* bad : {"", "2030-1-2", "2030-02-30", "tomorrow",
                          "2030-01-02x", "1735689600"}) {
    EXPECT_FALSE(ParseExpiry(bad).has_value()) << bad;
  }
}

TEST(ProviderDepthTest, ExpiryFieldsWhereTheConsoleShowsADate) {
  for (const char* id : {"aws", "azure", "github", "vercel"}) {
    const FieldSpec* f = P(id).spec().FindField("expires_at");
    ASSERT_NE(f, nullptr) << id;
    EXPECT_TRUE(f->expiry);
    EXPECT_TRUE(f->optional);
    EXPECT_FALSE(f->sensitive);
  }
  for (const char* id : {"gcp", "digitalocean", "mongodb-atlas", "redis-cloud",
                         "auth0", "slack", "netlify"}) {
    for (const FieldSpec& f : P(id).spec().fields) EXPECT_FALSE(f.expiry) << id;
  }
  FieldValues values;
  values["expires_at"] = SecretBytes("2030-01-02");
  EXPECT_EQ(ExpiryOf(P("github").spec(), values),
            absl::FromCivil(absl::CivilDay(2030, 1, 2), absl::UTCTimeZone()));
  EXPECT_FALSE(ExpiryOf(P("github").spec(), FieldValues()).has_value());
}

}  // namespace
}  // namespace credbroker
