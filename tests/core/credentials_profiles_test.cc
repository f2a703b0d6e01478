// CredentialManager: history, rollback, default profiles, resource
// bindings, expiry and days until rotation.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "broker/core/credentials.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "gtest/gtest.h"
#include "tests/core/credentials_fixture.h"

namespace credbroker {
namespace testing {
namespace {

// --- History, rollback, default profiles, expiry, days until rotation. ---

TEST_F(CredentialManagerTest, HistoryListsVersionsWithoutValues) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  now_ += absl::Hours(1);
  ASSERT_TRUE(manager_->Put(AwsWith("", kKeyId2, kSecret2)).ok());
  absl::StatusOr<CredentialHistory> h = manager_->ListVersions("aws", "");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->profile, "default");
  ASSERT_EQ(h->versions.size(), 2u);
  EXPECT_EQ(h->versions[0].version, 1);
  EXPECT_FALSE(h->versions[0].current);
  EXPECT_TRUE(h->versions[1].current);
  EXPECT_EQ(h->versions[1].created_at - h->versions[0].created_at,
            absl::Hours(1));
  EXPECT_NE(h->versions[0].fingerprint, h->versions[1].fingerprint);
  EXPECT_FALSE(h->versions[0].fingerprint.empty());
  EXPECT_TRUE(absl::IsNotFound(manager_->ListVersions("aws", "nope").status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(manager_->ListVersions("nope", "").status()));
}

TEST_F(CredentialManagerTest, RollbackStoresANewVersionWithTheOldValues) {
  absl::StatusOr<PutCredentialResult> v1 = manager_->Put(Aws());
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(manager_->Put(AwsWith("", kKeyId2, kSecret2)).ok());
  absl::StatusOr<RollbackResult> r = manager_->Rollback("aws", "", 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_version, 1);
  EXPECT_EQ(r->credential.version, 3);
  EXPECT_EQ(r->credential.version_count, 3);
  EXPECT_EQ(r->credential.fingerprint, v1->credential.fingerprint);
  absl::StatusOr<CredentialManager::StoredValues> values =
      manager_->GetValues("aws", "", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(values->version, 3);
  EXPECT_EQ(values->values.at("access_key_id").Reveal(), kKeyId);
  EXPECT_EQ(values->values.at("secret_access_key").Reveal(), kSecret);
  // History stays append-only: versions 1 and 2 are still there.
  EXPECT_EQ(manager_->ListVersions("aws", "")->versions.size(), 3u);
  EXPECT_EQ(
      manager_->GetValues("aws", "", 2)->values.at("access_key_id").Reveal(),
      kKeyId2);

  EXPECT_TRUE(
      absl::IsFailedPrecondition(manager_->Rollback("aws", "", 3).status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->Rollback("aws", "", 9).status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->Rollback("aws", "other", 1).status()));
  absl::Status bad = manager_->Rollback("aws", "", 0).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  ASSERT_EQ(GetFieldViolations(bad).size(), 1u);
  EXPECT_EQ(GetFieldViolations(bad)[0].field, "version");
}

TEST_F(CredentialManagerTest, DefaultProfileIsUsedWhereTheProfileIsEmpty) {
  ASSERT_TRUE(manager_->Put(Aws("default")).ok());
  ASSERT_TRUE(manager_->Put(AwsWith("staging", kKeyId2, kSecret2)).ok());
  EXPECT_EQ(*manager_->DefaultProfile("aws"), "default");
  EXPECT_TRUE(manager_->Get("aws", "", 0)->is_default);

  absl::StatusOr<DefaultProfileChange> c =
      manager_->SetDefaultProfile("aws", "staging");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->previous_profile, "default");
  EXPECT_EQ(c->profile, "staging");
  EXPECT_TRUE(c->configured);
  EXPECT_EQ(*store_->GetMeta("default_profile/aws"), "staging");

  absl::StatusOr<CredentialSummary> got = manager_->Get("aws", "", 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->profile, "staging");
  EXPECT_TRUE(got->is_default);
  EXPECT_EQ(
      manager_->GetValues("aws", "", 0)->values.at("access_key_id").Reveal(),
      kKeyId2);
  EXPECT_EQ(manager_->Validate("aws", "", {}, SecretBytes())->profile,
            "staging");
  // Put with no profile writes the default profile.
  EXPECT_EQ(manager_->Put(Aws())->credential.profile, "staging");

  absl::StatusOr<ListCredentialsResult> list = manager_->List("aws", 0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->credentials.size(), 2u);
  EXPECT_FALSE(list->credentials[0].is_default);  // default
  EXPECT_TRUE(list->credentials[1].is_default);   // staging

  // Other providers keep "default"; an empty profile resets; bad names are
  // refused.
  EXPECT_EQ(*manager_->DefaultProfile("gcp"), "default");
  EXPECT_FALSE(manager_->SetDefaultProfile("gcp", "prod")->configured);
  EXPECT_EQ(manager_->SetDefaultProfile("aws", "")->profile, "default");
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager_->SetDefaultProfile("aws", "Bad Name").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager_->SetDefaultProfile("nope", "x").status()));
}

TEST_F(CredentialManagerTest, ResolveRequirementsUsesDefaultsAndBindings) {
  ASSERT_TRUE(manager_->Put(Aws("prod")).ok());
  ASSERT_TRUE(manager_->SetDefaultProfile("aws", "prod").ok());
  absl::StatusOr<std::vector<Requirement>> r =
      manager_->ResolveRequirements({"deploy to aws", "netlify"}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].profile, "prod");
  EXPECT_EQ((*r)[0].profile_source, "default");
  EXPECT_TRUE((*r)[0].configured);
  EXPECT_EQ((*r)[0].readiness, Readiness::kReady);
  EXPECT_EQ((*r)[1].provider, "netlify");
  EXPECT_EQ((*r)[1].profile, "default");
  EXPECT_FALSE((*r)[1].configured);
  EXPECT_FALSE((*r)[1].missing_fields.empty());

  // A binding wins over the default for its resource.
  ASSERT_TRUE(manager_->Put(Aws("old")).ok());
  FlowWrite w;
  BindingRecord b;
  b.provider = "aws";
  b.resource = "cluster-a";
  b.profile = "old";
  b.fingerprint = manager_->Get("aws", "old", 0)->fingerprint;
  b.credential_version = 1;
  b.created_at = b.updated_at = now_;
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  r = manager_->ResolveRequirements({"aws"}, "", "cluster-a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].profile, "old");
  EXPECT_EQ((*r)[0].profile_source, "binding");
  EXPECT_TRUE((*r)[0].binding_note.empty());
  r = manager_->ResolveRequirements({"aws"}, "prod", "cluster-a");
  EXPECT_EQ((*r)[0].profile, "prod");
  EXPECT_EQ((*r)[0].profile_source, "requested");
  EXPECT_TRUE(
      absl::StrContains((*r)[0].binding_note, "was created with aws/old"));
}

TEST_F(CredentialManagerTest, BindingStateFollowsRotationAndDeletion) {
  ASSERT_TRUE(manager_->Put(Aws("old")).ok());
  BindingRecord b;
  b.provider = "aws";
  b.resource = "cluster-a";
  b.profile = "old";
  b.fingerprint = manager_->Get("aws", "old", 0)->fingerprint;
  b.credential_version = 1;
  FlowWrite w;
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  EXPECT_EQ(manager_->ListBindings("")->at(0).state, BindingState::kCurrent);

  ASSERT_TRUE(manager_->Put(AwsWith("old", kKeyId2, kSecret2)).ok());
  std::vector<BindingView> v = *manager_->ListBindings("aws");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, BindingState::kRotated);
  EXPECT_TRUE(absl::StrContains(v[0].note, "different credential"));
  EXPECT_FALSE(absl::StrContains(v[0].note, kSecret2));

  ASSERT_TRUE(manager_->Delete("aws", "old").ok());
  v = *manager_->ListBindings("aws");
  EXPECT_EQ(v[0].state, BindingState::kProfileDeleted);
  EXPECT_TRUE(absl::StrContains(v[0].note, "deleted"));
  absl::StatusOr<ProfileChoice> choice =
      manager_->ChooseProfile("aws", "", "cluster-a");
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->profile, "old");
  EXPECT_TRUE(absl::StrContains(choice->note, "deleted"));
  EXPECT_TRUE(manager_->ListBindings("gcp")->empty());
}

TEST_F(CredentialManagerTest, DaysUntilRotationCountsDown) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, 90);
  now_ += absl::Hours(24 * 89 + 1);
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, 0);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24);
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, -1);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kRotationDue);
}

TEST_F(CredentialManagerTest, KnownExpiryDates) {
  // now_ is 2027-01-15. A date already past is refused when entered.
  PutCredentialInput past;
  past.provider = "github";
  past.values.emplace("token",
                      SecretBytes("github_pat_" + std::string(22, 'A') + "_" +
                                  std::string(59, 'b')));
  past.values.emplace("expires_at", SecretBytes("2027-01-01"));
  absl::Status refused = manager_->Put(std::move(past)).status();
  ASSERT_TRUE(absl::IsInvalidArgument(refused));
  EXPECT_EQ(GetFieldViolations(refused)[0].field, "values.expires_at");

  PutCredentialInput soon;
  soon.provider = "github";
  soon.values.emplace("token",
                      SecretBytes("github_pat_" + std::string(22, 'A') + "_" +
                                  std::string(59, 'b')));
  soon.values.emplace("expires_at", SecretBytes("2027-01-20"));
  absl::StatusOr<PutCredentialResult> put = manager_->Put(std::move(soon));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->credential.expires_at,
            absl::FromCivil(absl::CivilDay(2027, 1, 20), absl::UTCTimeZone()));
  bool warned = false;
  for (const Finding& f : put->findings) warned |= f.code == "expires_soon";
  EXPECT_TRUE(warned);
  EXPECT_EQ(put->credential.readiness, Readiness::kReady);

  // Read once before the date (the read is remembered), then once the date
  // passes the stored credential is EXPIRED, and doctor says so.
  EXPECT_EQ(manager_->Get("github", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24 * 10);
  EXPECT_EQ(manager_->Get("github", "", 0)->readiness, Readiness::kExpired);
  absl::StatusOr<ValidateResult> doctor =
      manager_->Validate("github", "", {}, SecretBytes());
  ASSERT_TRUE(doctor.ok());
  EXPECT_EQ(doctor->readiness, Readiness::kExpired);
  const Finding* expired = nullptr;
  for (const Finding& f : doctor->findings) {
    if (f.code == "expired") expired = &f;
  }
  ASSERT_NE(expired, nullptr);
  EXPECT_EQ(expired->field, "expires_at");
  EXPECT_TRUE(absl::StrContains(expired->message, "2027-01-20"));
  EXPECT_FALSE(expired->fix.empty());
  EXPECT_FALSE(doctor->required_permissions.empty());
  EXPECT_FALSE(doctor->manual_checks.empty());
}

TEST_F(CredentialManagerTest, DoctorGivesEveryFindingWithItsFix) {
  // An Azure credential whose secret is past its date (the guide's "Client
  // secret expired") and past its rotation period.
  PutCredentialInput in;
  in.provider = "azure";
  in.values.emplace("client_id",
                    SecretBytes("11111111-2222-3333-4444-555555555555"));
  in.values.emplace("client_secret",
                    SecretBytes("abc8Q~FAKEfakeFAKEfakeFAKEfakeFAKEfake.x"));
  in.values.emplace("tenant_id",
                    SecretBytes("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
  in.values.emplace("subscription_id",
                    SecretBytes("01234567-89ab-cdef-0123-456789abcdef"));
  in.values.emplace("resource_group", SecretBytes("monk-rg"));
  in.values.emplace("expires_at", SecretBytes("2027-06-30"));
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  now_ += absl::Hours(24 * 200);
  absl::StatusOr<ValidateResult> d =
      manager_->Validate("azure", "", {}, SecretBytes());
  ASSERT_TRUE(d.ok()) << d.status();
  std::set<std::string> codes;
  for (const Finding& f : d->findings) {
    codes.insert(f.code);
    EXPECT_FALSE(f.message.empty()) << f.code;
    EXPECT_FALSE(f.fix.empty()) << f.code;
  }
  EXPECT_TRUE(codes.count("expired"));
  EXPECT_TRUE(codes.count("rotation_due"));
  EXPECT_EQ(d->readiness, Readiness::kExpired);
  bool contributor = false;
  for (const auto& p : d->required_permissions) {
    contributor |= absl::StrContains(p, "Contributor");
  }
  EXPECT_TRUE(contributor);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
