// A gtest fixture running one real credbrokerd on a fresh temporary data
// directory, and helpers to build credential values the providers accept.
#ifndef CREDBROKER_TESTS_INTEGRATION_BROKER_FIXTURE_H_
#define CREDBROKER_TESTS_INTEGRATION_BROKER_FIXTURE_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "credbroker/v1/credential_service.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_process.h"

namespace credbroker {
namespace testing {

// The example key pair from AWS's documentation.
inline constexpr char kAwsExampleKeyId[] = "AKIAIOSFODNN7EXAMPLE";
inline constexpr char kAwsExampleSecret[] =
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// A fresh AWS-shaped key pair; the secret is unique to this call so a test
// can look for it in files and output.
inline std::string NewAwsKeyId() {
  return absl::StrCat("AKIA",
                      RandomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
}
inline std::string NewAwsSecret() { return RandomString(40); }

// A GCP service-account key file as the console downloads it. The private
// key's body contains `marker`.
inline std::string GcpServiceAccountJson(const std::string& project_id,
                                         const std::string& client_email,
                                         const std::string& marker) {
  std::string body = absl::StrCat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", marker,
                                  RandomString(64));
  return absl::StrCat(
      "{\n"
      "  \"type\": \"service_account\",\n"
      "  \"project_id\": \"",
      project_id,
      "\",\n"
      "  \"private_key_id\": \"",
      RandomString(40, "0123456789abcdef"),
      "\",\n"
      "  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n",
      body,
      "\\n-----END PRIVATE KEY-----\\n\",\n"
      "  \"client_email\": \"",
      client_email,
      "\",\n"
      "  \"client_id\": \"1",
      RandomString(20, "0123456789"),
      "\",\n"
      "  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n"
      "  \"token_uri\": \"https://oauth2.googleapis.com/token\",\n"
      "  \"auth_provider_x509_cert_url\": "
      "\"https://www.googleapis.com/oauth2/v1/certs\",\n"
      "  \"client_x509_cert_url\": "
      "\"https://www.googleapis.com/robot/v1/metadata/x509/",
      client_email,
      "\",\n"
      "  \"universe_domain\": \"googleapis.com\"\n"
      "}\n");
}

// Whether `status` carries a field violation whose field name contains
// `field` (e.g. "access_key_id" matches "values.access_key_id").
inline bool HasViolation(const absl::Status& status, absl::string_view field) {
  for (const FieldViolation& v : GetFieldViolations(status)) {
    if (absl::StrContains(v.field, field) && !v.description.empty())
      return true;
  }
  return false;
}

inline std::string ViolationFields(const absl::Status& status) {
  std::string out;
  for (const FieldViolation& v : GetFieldViolations(status)) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", v.field);
  }
  return out;
}

inline const client::MaskedField* FindField(const client::CredentialSummary& c,
                                            absl::string_view name) {
  for (const client::MaskedField& f : c.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Runs credbrokerd on <tmp>/data for each test; logs go to <tmp>.
class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok()) << "mkdtemp failed";
    broker_ =
        std::make_unique<BrokerProcess>(tmp_.path() + "/data", tmp_.path());
    if (start_in_setup_) {
      absl::Status started = broker_->Start();
      ASSERT_TRUE(started.ok()) << started;
      client_ = broker_->Client();
      ASSERT_NE(client_, nullptr);
    }
  }

  void TearDown() override {
    client_.reset();
    if (broker_ != nullptr && broker_->running()) {
      absl::StatusOr<int> code = broker_->Stop();
      EXPECT_TRUE(code.ok()) << code.status();
      if (code.ok()) {
        EXPECT_EQ(*code, 0) << broker_->stderr_text();
        EXPECT_FALSE(FileExists(broker_->socket_path()))
            << "socket left behind";
      }
    }
    broker_.reset();
  }

  // Stops the daemon (expecting exit 0 and the socket removed) and starts it
  // again on the same data directory.
  void Restart() {
    client_.reset();
    absl::StatusOr<int> code = broker_->Stop();
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << broker_->stderr_text();
    ASSERT_FALSE(FileExists(broker_->socket_path()));
    absl::Status started = broker_->Start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
  }

  absl::StatusOr<client::StoredCredential> Put(
      const std::string& provider, const std::string& profile,
      const std::map<std::string, std::string>& values,
      bool keep_existing = false) {
    client::CredentialInput req;
    req.provider = provider;
    req.profile = profile;
    req.keep_existing = keep_existing;
    for (const auto& [k, v] : values) req.values.emplace(k, SecretBytes(v));
    return client_->PutCredential(req);
  }

  absl::StatusOr<client::CredentialSummary> Get(const std::string& provider,
                                                const std::string& profile,
                                                int64_t version = 0) {
    return client_->GetCredential(provider, profile, version);
  }

  // The provider's catalog entry (fails the test when absent).
  client::ProviderInfo ProviderInfo(const std::string& id) {
    absl::StatusOr<std::vector<client::ProviderInfo>> r =
        client_->ListProviders();
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      for (const client::ProviderInfo& p : *r) {
        if (p.id == id) return p;
      }
    }
    ADD_FAILURE() << "provider " << id << " not in the catalog";
    return client::ProviderInfo();
  }

  // Values for every required field of Auth0's form, with `domain` in the
  // domain field. Returns the name of the domain field in `domain_field`.
  std::map<std::string, std::string> Auth0Values(const std::string& domain,
                                                 std::string* domain_field) {
    std::map<std::string, std::string> values;
    const client::ProviderInfo auth0 = ProviderInfo("auth0");
    for (const client::FieldSpec& f : auth0.fields) {
      if (f.derived) continue;
      if (absl::StrContains(f.name, "domain")) {
        values[f.name] = domain;
        *domain_field = f.name;
      } else if (absl::StrContains(f.name, "secret")) {
        values[f.name] = RandomString(64);
      } else if (!f.optional) {
        values[f.name] = RandomString(32);
      }
    }
    return values;
  }

  bool start_in_setup_ = true;
  TempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<client::CredentialClient> client_;
};

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_BROKER_FIXTURE_H_
