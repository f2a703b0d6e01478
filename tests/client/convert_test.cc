// Every field of every message the client converts survives a round trip
// message -> plain type -> message: a field added to a .proto and not to
// the conversion fails here.
#include "client/internal/convert.h"

#include "gtest/gtest.h"
#include "tests/client/round_trip.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

TEST(ConvertTest, SharedTypesKeepEveryField) {
  ExpectRoundTrip<FieldSpec, v1::FieldSpec>();
  ExpectRoundTrip<ProviderInfo, v1::ProviderInfo>();
  ExpectRoundTrip<Finding, v1::Finding>();
  ExpectRoundTrip<MaskedField, v1::MaskedField>();
  ExpectRoundTrip<CredentialSummary, v1::CredentialSummary>();
  ExpectRoundTrip<CredentialNeeded, v1::CredentialNeeded>();
  ExpectRoundTrip<Grant, v1::Grant>();
  ExpectRoundTrip<GrantInfo, v1::GrantInfo>();
  ExpectRoundTrip<ApprovalRequest, v1::ApprovalRequest>();
  ExpectRoundTrip<AuditEvent, v1::AuditEvent>();
  ExpectRoundTrip<PasskeyChallenge, v1::PasskeyChallenge>();
  ExpectRoundTrip<PasskeyAssertion, v1::PasskeyAssertion>();
}

TEST(ConvertTest, UnsetTimesAndDurationsStayUnset) {
  v1::GrantInfo info;
  info.set_grant_id("g-1");
  const GrantInfo v = FromProto(info);
  EXPECT_EQ(v.ended_at, absl::InfinitePast());
  v1::GrantInfo back;
  ToProto(v, &back);
  EXPECT_FALSE(back.has_ended_at());
  EXPECT_FALSE(back.has_created_at());

  CredentialNeeded need;
  need.need_id = "n-1";
  v1::CredentialNeeded wire;
  ToProto(need, &wire);
  EXPECT_FALSE(wire.has_requested_ttl());
  need.requested_ttl = absl::Milliseconds(1500);
  ToProto(need, &wire);
  EXPECT_EQ(wire.requested_ttl().seconds(), 1);
  EXPECT_EQ(wire.requested_ttl().nanos(), 500000000);
}

TEST(ConvertTest, AnEnumNumberThisClientDoesNotKnowIsUnspecified) {
  EXPECT_EQ(FromProto(static_cast<v1::Readiness>(99)), Readiness::kUnspecified);
  EXPECT_EQ(FromProto(v1::READINESS_EXPIRED), Readiness::kExpired);
  EXPECT_EQ(ReadinessName(Readiness::kRotationDue), "READINESS_ROTATION_DUE");
  EXPECT_EQ(RequestStateName(RequestState::kRejected),
            "REQUEST_STATE_REJECTED");
  EXPECT_EQ(ScopeName(Scope::kStanding), "SCOPE_STANDING");
  EXPECT_EQ(SeverityName(Severity::kWarning), "SEVERITY_WARNING");
}

TEST(ConvertTest, GrantValuesArriveAsSecrets) {
  v1::Grant grant;
  (*grant.mutable_values())["secret_access_key"] = "wJalrEXAMPLE";
  const Grant v = FromProto(grant);
  ASSERT_EQ(v.values.count("secret_access_key"), 1u);
  EXPECT_EQ(v.values.at("secret_access_key").Reveal(), "wJalrEXAMPLE");
}

}  // namespace
}  // namespace internal
}  // namespace client
}  // namespace credbroker
