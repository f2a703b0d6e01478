// CredentialManager: put, masking, listing, rotation periods, validation,
// generated values, sealed records and requirements.
#include "broker/core/credentials.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "broker/crypto/crypto.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "gtest/gtest.h"
#include "tests/core/credentials_fixture.h"

namespace credbroker {
namespace testing {
namespace {

TEST_F(CredentialManagerTest, PutStoresVersionsAndMasksSecrets) {
  absl::StatusOr<PutCredentialResult> r = manager_->Put(Aws());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->credential.provider, "aws");
  EXPECT_EQ(r->credential.profile, "default");
  EXPECT_EQ(r->credential.version, 1);
  EXPECT_EQ(r->credential.readiness, Readiness::kReady);
  const MaskedField* secret = FindField(r->credential, "secret_access_key");
  ASSERT_NE(secret, nullptr);
  EXPECT_TRUE(secret->sensitive);
  EXPECT_TRUE(secret->set);
  EXPECT_FALSE(absl::StrContains(secret->display, "wJalrXUtnFEMI"));
  const MaskedField* id = FindField(r->credential, "access_key_id");
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->display, "AKIA…MPLE");

  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<CredentialSummary> got = manager_->Get("aws", "default", 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->version_count, 2);
  auto values = manager_->GetValues("aws", "", 1);
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(values->values.at("secret_access_key").Reveal() == kSecret);
}

TEST_F(CredentialManagerTest, TrimsStraySpacesAndSaysSo) {
  PutCredentialInput in = Aws();
  in.values["access_key_id"] = SecretBytes(std::string(" ") + kKeyId + "\n");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_TRUE(r.ok()) << r.status();
  bool reported = false;
  for (const auto& f : r->findings) {
    reported |= f.field == "access_key_id" && f.severity == Severity::kInfo;
  }
  EXPECT_TRUE(reported);
  auto values = manager_->GetValues("aws", "default", 0);
  EXPECT_TRUE(values->values.at("access_key_id").Reveal() == kKeyId);
}

TEST_F(CredentialManagerTest,
       InvalidValuesAreRefusedWithViolationsAndNothingStored) {
  PutCredentialInput in = Aws();
  in.values["access_key_id"] = SecretBytes("AKIA123");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FieldViolation> v = GetFieldViolations(r.status());
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].field, "values.access_key_id");
  EXPECT_EQ(manager_->Get("aws", "default", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CredentialManagerTest, UnknownProviderAndBadProfileAreInvalidArgument) {
  PutCredentialInput in = Aws();
  in.provider = "awz";
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "aws") ||
              !GetFieldViolations(r.status()).empty());
  r = manager_->Put(Aws("Bad Profile!"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_FALSE(GetFieldViolations(r.status()).empty());
  EXPECT_EQ(GetFieldViolations(r.status())[0].field, "profile");
}

TEST_F(CredentialManagerTest, KeepExistingKeepsUnsentSecrets) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  PutCredentialInput update;
  update.provider = "aws";
  update.keep_existing = true;
  update.values.emplace("region", SecretBytes("eu-west-1"));
  update.values.emplace("secret_access_key", SecretBytes(""));  // Left blank.
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(update));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->credential.version, 2);
  auto values = manager_->GetValues("aws", "default", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(values->values.at("secret_access_key").Reveal() == kSecret);
  EXPECT_TRUE(values->values.at("region").Reveal() == "eu-west-1");
}

TEST_F(CredentialManagerTest, ProfilesAreIndependent) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  ASSERT_TRUE(manager_->Put(Aws("staging")).ok());
  absl::StatusOr<ListCredentialsResult> list = manager_->List("", 0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->credentials.size(), 2u);
  EXPECT_EQ(list->credentials[0].profile, "default");
  EXPECT_EQ(list->credentials[1].profile, "staging");
  ASSERT_TRUE(manager_->Delete("aws", "staging").ok());
  EXPECT_EQ(manager_->Delete("aws", "staging").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager_->Get("aws", "default", 0).ok());
}

TEST_F(CredentialManagerTest, ListPagesThroughEverything) {
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(manager_->Put(Aws("p" + std::to_string(i))).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<ListCredentialsResult> page =
        manager_->List("aws", 3, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& c : page->credentials) seen.push_back(c.profile);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen.front(), "p0");
  EXPECT_EQ(seen.back(), "p6");
  EXPECT_EQ(manager_->List("", 0, "!!garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, RotationDueAfterThePeriod) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  now_ += absl::Hours(24 * 89);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24 * 2);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kRotationDue);
  // A per-profile period overrides the provider's.
  PutCredentialInput in = Aws("short");
  in.rotation_period = absl::Hours(24 * 7);
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  now_ += absl::Hours(24 * 8);
  EXPECT_EQ(manager_->Get("aws", "short", 0)->readiness,
            Readiness::kRotationDue);
}

TEST_F(CredentialManagerTest, RotationPeriodOutsideOneDayToTenYearsIsRefused) {
  for (absl::Duration bad : {absl::Seconds(1), absl::Hours(23),
                             -absl::Hours(48), absl::Hours(24 * 3651)}) {
    PutCredentialInput in = Aws("rot");
    in.rotation_period = bad;
    absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    ASSERT_FALSE(GetFieldViolations(r.status()).empty());
    EXPECT_EQ(GetFieldViolations(r.status())[0].field, "rotation_period");
  }
  PutCredentialInput ok = Aws("rot");
  ok.rotation_period = absl::Hours(24);
  EXPECT_TRUE(manager_->Put(std::move(ok)).ok());
}

TEST_F(CredentialManagerTest, ValidateCandidateStoresNothing) {
  FieldValues values;
  values.emplace("access_key_id", SecretBytes("akia-not-a-key"));
  absl::StatusOr<ValidateResult> r =
      manager_->Validate("aws", "", std::move(values), SecretBytes());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->valid);
  EXPECT_FALSE(r->findings.empty());
  EXPECT_FALSE(r->required_permissions.empty());
  EXPECT_EQ(manager_->Get("aws", "", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CredentialManagerTest, ValidateStored) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<ValidateResult> r =
      manager_->Validate("aws", "", {}, SecretBytes());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->valid);
  EXPECT_EQ(r->readiness, Readiness::kReady);
}

TEST_F(CredentialManagerTest, GeneratesRedisPasswordWhenAsked) {
  PutCredentialInput in;
  in.provider = "redis-cloud";
  in.values.emplace(
      "account_key",
      SecretBytes("A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z"));
  in.values.emplace(
      "user_key",
      SecretBytes("S1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z"));
  in.generate.push_back("database_password");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->generated.size(), 1u);
  auto values = manager_->GetValues("redis-cloud", "", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_GE(values->values.at("database_password").size(), 24u);

  PutCredentialInput bad = Aws();
  bad.generate.push_back("secret_access_key");
  EXPECT_EQ(manager_->Put(std::move(bad)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, RecordUnderAnotherKeyIsDataLossNotGarbage) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  Sealer other(NewDataKey());
  CredentialManager wrong(store_.get(), &other, &ProviderRegistry::Default(),
                          [this] { return now_; });
  absl::StatusOr<CredentialSummary> got = wrong.Get("aws", "", 0);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(got.status().message(), "aws/default"));
}

// The one cache of credential facts is the store's index of latest rows,
// and every answer's life (AnswerLife) ends with the store's next commit:
// each kind of write (a new version, a rollback, a new default profile, a
// delete) is seen by the next read, and ends the life of every answer read
// before it.

TEST_F(CredentialManagerTest, ResolveRequirementsNamesProvidersAndReadiness) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<std::vector<Requirement>> r = manager_->ResolveRequirements(
      {"deploy to AWS in us-east-1", "netlify"}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].provider, "aws");
  EXPECT_TRUE((*r)[0].configured);
  EXPECT_EQ((*r)[0].readiness, Readiness::kReady);
  EXPECT_EQ((*r)[1].provider, "netlify");
  EXPECT_FALSE((*r)[1].configured);
  EXPECT_FALSE((*r)[1].missing_fields.empty());
  EXPECT_EQ(manager_->ResolveRequirements({"kubernetes"}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, OversizedInputIsRefused) {
  PutCredentialInput in = Aws();
  in.values["secret_access_key"] =
      SecretBytes(std::string(kMaxValueBytes + 1, 'x'));
  EXPECT_EQ(manager_->Put(std::move(in)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
