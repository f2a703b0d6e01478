// Every field of CredentialService's answers survives a round trip
// message -> plain type -> message, and the requests the client sends carry
// every field it set (and lose their values when wiped).

#include "client/internal/convert.h"
#include "gtest/gtest.h"
#include "tests/client/round_trip.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

TEST(ConvertCredentialTest, AnswersKeepEveryField) {
  ExpectRoundTrip<std::vector<ProviderInfo>, v1::ListProvidersResponse>();
  ExpectRoundTrip<CredentialPage, v1::ListCredentialsResponse>();
  ExpectRoundTrip<StoredCredential, v1::PutCredentialResponse>();
  ExpectRoundTrip<Diagnosis, v1::ValidateCredentialResponse>();
  ExpectRoundTrip<Requirement, v1::Requirement>();
  ExpectRoundTrip<std::vector<Requirement>, v1::ResolveRequirementsResponse>();
  ExpectRoundTrip<CredentialVersion, v1::CredentialVersion>();
  ExpectRoundTrip<CredentialHistory, v1::ListCredentialVersionsResponse>();
  ExpectRoundTrip<RolledBackCredential, v1::RollbackCredentialResponse>();
  ExpectRoundTrip<DefaultProfileChange, v1::SetDefaultProfileResponse>();
  ExpectRoundTrip<ResourceBinding, v1::ResourceBinding>();
  ExpectRoundTrip<std::vector<ResourceBinding>, v1::ListBindingsResponse>();
}

TEST(ConvertCredentialTest, ListOptionsBecomeTheRequest) {
  ListCredentialsOptions options;
  options.provider = "aws";
  options.page_size = 7;
  options.page_token = "next";
  v1::ListCredentialsRequest m;
  ToProto(options, &m);
  EXPECT_EQ(m.provider(), "aws");
  EXPECT_EQ(m.page_size(), 7);
  EXPECT_EQ(m.page_token(), "next");
}

TEST(ConvertCredentialTest, PutRequestCarriesEveryFieldUntilWiped) {
  CredentialInput input;
  input.provider = "gcp";
  input.profile = "prod";
  input.values.emplace("project_id", SecretBytes("demo-project"));
  input.keep_existing = true;
  input.from_file = SecretBytes("{\"type\": \"service_account\"}");
  input.generate = {"database_password"};
  input.rotation_period = absl::Hours(24 * 30);
  v1::PutCredentialRequest m;
  ToProto(input, &m);
  EXPECT_EQ(m.provider(), "gcp");
  EXPECT_EQ(m.profile(), "prod");
  ASSERT_EQ(m.values().count("project_id"), 1u);
  EXPECT_EQ(m.values().at("project_id"), "demo-project");
  EXPECT_TRUE(m.keep_existing());
  EXPECT_EQ(m.from_file(), "{\"type\": \"service_account\"}");
  ASSERT_EQ(m.generate_size(), 1);
  EXPECT_EQ(m.generate(0), "database_password");
  EXPECT_EQ(m.rotation_period().seconds(), 30 * 86400);

  WipeSecrets(m);
  EXPECT_TRUE(m.values().at("project_id").empty());
  EXPECT_TRUE(m.from_file().empty());
}

TEST(ConvertCredentialTest, UnsetRotationPeriodStaysUnset) {
  CredentialInput input;
  input.provider = "aws";
  v1::PutCredentialRequest m;
  ToProto(input, &m);
  EXPECT_FALSE(m.has_rotation_period());
  EXPECT_TRUE(m.from_file().empty());
}

TEST(ConvertCredentialTest, ValidateRequestCarriesEveryFieldUntilWiped) {
  CredentialCandidate candidate;
  candidate.provider = "aws";
  candidate.profile = "staging";
  candidate.values.emplace("secret_access_key", SecretBytes("wJalrEXAMPLE"));
  candidate.from_file = SecretBytes("key file");
  v1::ValidateCredentialRequest m;
  ToProto(candidate, &m);
  EXPECT_EQ(m.provider(), "aws");
  EXPECT_EQ(m.profile(), "staging");
  EXPECT_EQ(m.values().at("secret_access_key"), "wJalrEXAMPLE");
  EXPECT_EQ(m.from_file(), "key file");

  WipeSecrets(m);
  EXPECT_TRUE(m.values().at("secret_access_key").empty());
  EXPECT_TRUE(m.from_file().empty());
}

TEST(ConvertCredentialTest, BindingStatesKeepTheWireNumbers) {
  EXPECT_EQ(FromProto(v1::ResourceBinding::STATE_ROTATED),
            BindingState::kRotated);
  EXPECT_EQ(FromProto(static_cast<v1::ResourceBinding::State>(42)),
            BindingState::kUnspecified);
  EXPECT_EQ(ToProto(BindingState::kProfileDeleted),
            v1::ResourceBinding::STATE_PROFILE_DELETED);
  EXPECT_EQ(BindingStateName(BindingState::kCurrent), "STATE_CURRENT");
}

}  // namespace
}  // namespace internal
}  // namespace client
}  // namespace credbroker
