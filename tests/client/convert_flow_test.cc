// Every field of the flow's messages (credential_broker.proto,
// approval_service.proto) survives a round trip message -> plain type ->
// message, and an unset sub-message stays unset.

#include "client/internal/convert.h"
#include "gtest/gtest.h"
#include "tests/client/round_trip.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

TEST(ConvertFlowTest, FlowMessagesKeepEveryField) {
  ExpectRoundTrip<NeedUpdate, v1::NeedUpdate>();
  ExpectRoundTrip<ApprovalEvent, v1::ApprovalEvent>();
  ExpectRoundTrip<FormField, v1::FormField>();
  ExpectRoundTrip<CredentialForm, v1::CredentialForm>();
  ExpectRoundTrip<Approval, v1::ApproveRequest>();
  ExpectRoundTrip<ApprovalResult, v1::ApproveResponse>();
  ExpectRoundTrip<FormQuery, v1::GetCredentialFormRequest>();
}

TEST(ConvertFlowTest, UnsetSubMessagesStayUnset) {
  v1::ApprovalEvent done;
  done.set_kind(v1::ApprovalEvent::KIND_SNAPSHOT_DONE);
  const ApprovalEvent event = FromProto(done);
  EXPECT_EQ(event.kind, ApprovalEvent::Kind::kSnapshotDone);
  EXPECT_FALSE(event.request.has_value());
  EXPECT_FALSE(event.credential.has_value());
  ExpectRoundTrip<ApprovalEvent>(done);

  v1::NeedUpdate pending;
  pending.set_need_id("n-1");
  pending.set_state(v1::REQUEST_STATE_PENDING_APPROVAL);
  EXPECT_FALSE(FromProto(pending).grant.has_value());
  ExpectRoundTrip<NeedUpdate>(pending);

  v1::CredentialForm form;
  form.set_provider("aws");
  EXPECT_FALSE(FromProto(form).request.has_value());
  ExpectRoundTrip<CredentialForm>(form);

  v1::ApproveRequest approve;
  approve.set_request_id("r-1");
  const Approval approval = FromProto(approve);
  EXPECT_FALSE(approval.passkey.has_value());
  EXPECT_EQ(approval.ttl, absl::ZeroDuration());
  ExpectRoundTrip<Approval>(approve);
}

TEST(ConvertFlowTest, ApprovalSendsEveryFieldItIsGiven) {
  Approval approval;
  approval.request_id = "r-7";
  approval.values.emplace("secret_access_key", SecretBytes("wJalrEXAMPLE"));
  approval.scope = Scope::kStanding;
  approval.ttl = absl::Hours(2);
  approval.action_pattern = "deploy *";
  approval.pin = SecretBytes("4821");
  approval.generate = {"database_password"};
  approval.passkey = PasskeyAssertion{"id", "{}", "auth", "sig"};
  v1::ApproveRequest m;
  ToProto(approval, &m);
  EXPECT_EQ(m.request_id(), "r-7");
  EXPECT_EQ(m.values().at("secret_access_key"), "wJalrEXAMPLE");
  EXPECT_EQ(m.scope(), v1::SCOPE_STANDING);
  EXPECT_EQ(m.ttl().seconds(), 7200);
  EXPECT_EQ(m.action_pattern(), "deploy *");
  EXPECT_EQ(m.pin(), "4821");
  ASSERT_EQ(m.generate_size(), 1);
  EXPECT_EQ(m.generate(0), "database_password");
  EXPECT_EQ(m.passkey().signature(), "sig");

  WipeSecrets(m);
  EXPECT_TRUE(m.values().at("secret_access_key").empty());
  EXPECT_TRUE(m.pin().empty());
  // The plain value keeps its secrets.
  EXPECT_EQ(approval.pin.Reveal(), "4821");
}

TEST(ConvertFlowTest, FormQuerySendsItsFields) {
  v1::GetCredentialFormRequest m;
  ToProto(FormQuery{"r-1", "aws", "prod"}, &m);
  EXPECT_EQ(m.request_id(), "r-1");
  EXPECT_EQ(m.provider(), "aws");
  EXPECT_EQ(m.profile(), "prod");
}

TEST(ConvertFlowTest, GrantValuesInAnUpdateAreSecretsAndWipeable) {
  v1::NeedUpdate update;
  update.set_state(v1::REQUEST_STATE_GRANTED);
  (*update.mutable_grant()->mutable_values())["token"] = "tok-EXAMPLE";
  const NeedUpdate v = FromProto(update);
  ASSERT_TRUE(v.grant.has_value());
  EXPECT_EQ(v.grant->values.at("token").Reveal(), "tok-EXAMPLE");
  WipeSecrets(update);
  EXPECT_TRUE(update.grant().values().at("token").empty());
  EXPECT_EQ(v.grant->values.at("token").Reveal(), "tok-EXAMPLE");
}

TEST(ConvertFlowTest, EventKindsKeepTheWireNumbers) {
  EXPECT_EQ(FromProto(v1::ApprovalEvent::KIND_ROTATION_DUE),
            ApprovalEvent::Kind::kRotationDue);
  EXPECT_EQ(FromProto(static_cast<v1::ApprovalEvent::Kind>(99)),
            ApprovalEvent::Kind::kUnspecified);
  EXPECT_EQ(ApprovalEventKindName(ApprovalEvent::Kind::kAgentDisconnected),
            "KIND_AGENT_DISCONNECTED");
}

}  // namespace
}  // namespace internal
}  // namespace client
}  // namespace credbroker
