#include "broker/crypto/webauthn.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/soft_authenticator.h"

namespace credbroker {
namespace {

using ::testing::HasSubstr;

constexpr char kRpId[] = "localhost";
constexpr char kOrigin[] = "http://localhost:8080";

RelyingParty Rp() {
  RelyingParty rp;
  rp.id = kRpId;
  rp.origins = {kOrigin};
  return rp;
}

// A registered authenticator of one algorithm, and its stored credential.
class WebAuthnTest : public ::testing::TestWithParam<int64_t> {
 protected:
  WebAuthnTest() : authenticator_(GetParam()) {
    const SoftRegistration reg =
        authenticator_.Register(kRpId, kOrigin, "register-challenge");
    auto credential =
        VerifyRegistration(Rp(), "register-challenge", reg.client_data_json,
                           reg.attestation_object);
    EXPECT_TRUE(credential.ok()) << credential.status();
    if (credential.ok()) credential_ = *credential;
  }

  absl::StatusOr<WebAuthnAssertion> Verify(
      const SoftAssertion& a, const RelyingParty& rp = Rp(),
      absl::string_view challenge = "get-challenge") {
    return VerifyAssertion(rp, challenge, credential_, a.client_data_json,
                           a.authenticator_data, a.signature);
  }

  SoftAuthenticator authenticator_;
  WebAuthnCredential credential_;
};

void ExpectRefused(const absl::StatusOr<WebAuthnAssertion>& result,
                   absl::string_view reason) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied)
      << result.status();
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), reason) << result.status();
}

TEST_P(WebAuthnTest, RegistrationYieldsTheAuthenticatorsKey) {
  EXPECT_EQ(credential_.algorithm, GetParam());
  EXPECT_EQ(credential_.credential_id, authenticator_.credential_id());
  EXPECT_EQ(credential_.public_key.size(),
            GetParam() == kCoseEs256 ? 65u : 32u);
}

TEST_P(WebAuthnTest, PackedSelfAttestationIsCheckedAndAccepted) {
  SoftAuthenticator other(GetParam());
  const SoftRegistration reg = other.Register(kRpId, kOrigin, "c", "packed");
  auto credential = VerifyRegistration(Rp(), "c", reg.client_data_json,
                                       reg.attestation_object);
  ASSERT_TRUE(credential.ok()) << credential.status();
  EXPECT_EQ(credential->credential_id, other.credential_id());
}

TEST_P(WebAuthnTest, AnAssertionOfTheRegisteredKeyVerifies) {
  auto result = Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->sign_count, 1u);
  EXPECT_TRUE(result->user_verified);
}

TEST_P(WebAuthnTest, AnotherChallengeIsRefused) {
  ExpectRefused(Verify(authenticator_.Assert(kRpId, kOrigin, "old-challenge")),
                "challenge");
}

TEST_P(WebAuthnTest, AnOriginNotAllowedIsRefused) {
  auto result = Verify(authenticator_.Assert(
      kRpId, "http://evil.localhost:8080", "get-challenge"));
  ExpectRefused(result, "origin");
  EXPECT_THAT(result.status().message(), HasSubstr("evil.localhost"));
}

TEST_P(WebAuthnTest, AnotherRpIdIsRefused) {
  ExpectRefused(
      Verify(authenticator_.Assert("example.com", kOrigin, "get-challenge")),
      "rp_id");
}

TEST_P(WebAuthnTest, ARegistrationAnsweredAsAnAssertionIsRefused) {
  authenticator_.client_data_type = "webauthn.create";
  ExpectRefused(Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge")),
                "type");
}

TEST_P(WebAuthnTest, AReplayedCounterIsRefusedAsAPossibleClone) {
  credential_.sign_count = 5;
  authenticator_.sign_count = 4;  // The next assertion says 5.
  auto result = Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge"));
  ExpectRefused(result, "counter");
  EXPECT_THAT(result.status().message(), HasSubstr("cloned"));
  authenticator_.sign_count = 1;  // Says 2: went back.
  ExpectRefused(Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge")),
                "counter");
}

TEST_P(WebAuthnTest, AnAuthenticatorWithoutACounterMayStayAtZero) {
  authenticator_.count_signatures = false;
  ASSERT_EQ(credential_.sign_count, 0u);
  EXPECT_TRUE(
      Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge")).ok());
}

TEST_P(WebAuthnTest, AFlippedSignatureBitIsRefused) {
  SoftAssertion a = authenticator_.Assert(kRpId, kOrigin, "get-challenge");
  a.signature[a.signature.size() / 2] ^= 0x01;
  ExpectRefused(Verify(a), "signature");
}

TEST_P(WebAuthnTest, EditedAuthenticatorDataIsRefused) {
  SoftAssertion a = authenticator_.Assert(kRpId, kOrigin, "get-challenge");
  a.authenticator_data[36] ^= 0x40;  // A larger counter than was signed.
  ExpectRefused(Verify(a), "signature");
}

TEST_P(WebAuthnTest, WithoutUserPresenceIsRefused) {
  authenticator_.flags = SoftAuthenticator::kUserVerified;
  ExpectRefused(Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge")),
                "user_presence");
}

TEST_P(WebAuthnTest, WithoutUserVerificationIsRefusedOnlyWhenRequired) {
  authenticator_.flags = SoftAuthenticator::kUserPresent;
  RelyingParty rp = Rp();
  rp.require_user_verification = true;
  ExpectRefused(
      Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge"), rp),
      "user_verification");
  auto result = Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->user_verified);
}

TEST_P(WebAuthnTest, ASignatureByAnotherKeyIsRefused) {
  SoftAuthenticator other(GetParam());
  ExpectRefused(Verify(other.Assert(kRpId, kOrigin, "get-challenge")),
                "signature");
}

TEST_P(WebAuthnTest, RegistrationChecksChallengeOriginRpIdAndPresence) {
  SoftAuthenticator other(GetParam());
  auto reg = other.Register(kRpId, kOrigin, "issued");
  auto result = VerifyRegistration(Rp(), "other", reg.client_data_json,
                                   reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "challenge");
  reg = other.Register(kRpId, "https://localhost", "issued");
  result = VerifyRegistration(Rp(), "issued", reg.client_data_json,
                              reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "origin");
  reg = other.Register("example.com", kOrigin, "issued");
  result = VerifyRegistration(Rp(), "issued", reg.client_data_json,
                              reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "rp_id");
  other.flags = 0;
  reg = other.Register(kRpId, kOrigin, "issued");
  result = VerifyRegistration(Rp(), "issued", reg.client_data_json,
                              reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "user_presence");
  other.flags = SoftAuthenticator::kUserPresent;
  other.client_data_type = "webauthn.get";
  reg = other.Register(kRpId, kOrigin, "issued");
  result = VerifyRegistration(Rp(), "issued", reg.client_data_json,
                              reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "type");
}

TEST_P(WebAuthnTest, AnAlgorithmWeDoNotTakeIsRefusedAtRegistration) {
  SoftAuthenticator other(GetParam());
  other.cose_algorithm = -257;  // RS256
  const SoftRegistration reg = other.Register(kRpId, kOrigin, "c");
  auto result = VerifyRegistration(Rp(), "c", reg.client_data_json,
                                   reg.attestation_object);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "algorithm");
  EXPECT_THAT(result.status().message(), HasSubstr("-257"));
}

TEST_P(WebAuthnTest, AStoredCredentialOfAnotherAlgorithmDoesNotVerify) {
  credential_.algorithm = GetParam() == kCoseEs256 ? kCoseEdDsa : kCoseEs256;
  EXPECT_FALSE(
      Verify(authenticator_.Assert(kRpId, kOrigin, "get-challenge")).ok());
}

TEST_P(WebAuthnTest, PackedSelfAttestationWithABadSignatureIsRefused) {
  SoftAuthenticator other(GetParam());
  SoftRegistration reg = other.Register(kRpId, kOrigin, "c", "packed");
  // The signature's last byte sits at the end of attStmt, before authData:
  // flip a byte of the client data instead, which the signature covers.
  reg.client_data_json.insert(reg.client_data_json.size() - 1, " ");
  auto result = VerifyRegistration(Rp(), "c", reg.client_data_json,
                                   reg.attestation_object);
  EXPECT_EQ(WebAuthnRefusalReason(result.status()), "signature")
      << result.status();
}

TEST_P(WebAuthnTest, GarbageIsMalformedNotACrash) {
  for (const std::string& bytes :
       {std::string(), std::string("\xa1", 1), std::string(300, '\xff'),
        std::string("\x5f\x41\x00", 3)}) {
    auto result = VerifyRegistration(Rp(), "c", "{}", bytes);
    EXPECT_FALSE(result.ok());
    SoftAuthenticator other(GetParam());
    auto reg = other.Register(kRpId, kOrigin, "c");
    result = VerifyRegistration(Rp(), "c", reg.client_data_json, bytes);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << result.status();
    auto assertion =
        VerifyAssertion(Rp(), "c", credential_, "{}", bytes, bytes);
    EXPECT_FALSE(assertion.ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, WebAuthnTest,
                         ::testing::Values(kCoseEs256, kCoseEdDsa),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return info.param == kCoseEs256
                                      ? std::string("ES256")
                                      : std::string("EdDSA");
                         });

TEST(Base64UrlTest, RoundTripsWithoutPadding) {
  const std::string bytes("\xfb\xff\x00\x01", 4);
  EXPECT_EQ(Base64UrlEncode(bytes), "-_8AAQ");
  EXPECT_EQ(*Base64UrlDecode("-_8AAQ"), bytes);
  EXPECT_FALSE(Base64UrlDecode("-_8AAQ==").ok());
  EXPECT_FALSE(Base64UrlDecode("+/8AAQ").ok());
}

}  // namespace
}  // namespace credbroker
