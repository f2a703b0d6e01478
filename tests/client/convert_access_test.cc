// Every field of the access calls' messages (grants, audit, PIN, passkeys,
// lock) survives the conversion: answers round-trip message -> plain type
// -> message, and requests built from a fully filled plain type set every
// field of their message.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "gtest/gtest.h"
#include "tests/client/round_trip.h"

namespace credbroker {
namespace client {
namespace internal {
namespace {

TEST(ConvertAccessTest, AnswersKeepEveryField) {
  ExpectRoundTrip<GrantPage, v1::ListGrantsResponse>();
  ExpectRoundTrip<AuditPage, v1::ListAuditEventsResponse>();
  ExpectRoundTrip<AuditLogCheck, v1::VerifyAuditLogResponse>();
  ExpectRoundTrip<StandingApproval, v1::StandingApproval>();
  ExpectRoundTrip<std::vector<StandingApproval>,
                  v1::ListStandingApprovalsResponse>();
  ExpectRoundTrip<ApprovalPinStatus, v1::ApprovalPinStatus>();
  ExpectRoundTrip<Passkey, v1::Passkey>();
  ExpectRoundTrip<PasskeyList, v1::ListPasskeysResponse>();
  ExpectRoundTrip<LockState, v1::LockState>();
  ExpectRoundTrip<RekeyResult, v1::RekeyResponse>();
}

TEST(ConvertAccessTest, QueriesSetEveryField) {
  GrantQuery grants;
  grants.include_ended = true;
  grants.page_size = 50;
  grants.page_token = "next";
  const auto listed = AsProto<v1::ListGrantsRequest>(grants);
  ExpectEveryFieldSet(listed);
  EXPECT_EQ(listed.page_size(), 50);
  EXPECT_EQ(listed.page_token(), "next");

  AuditQuery audit;
  audit.since = absl::FromUnixSeconds(1700000000);
  audit.until = absl::FromUnixSeconds(1700000600) + absl::Milliseconds(5);
  audit.provider = "aws";
  audit.kind = "grant.issued";
  audit.page_size = 10;
  audit.page_token = "t";
  const auto events = AsProto<v1::ListAuditEventsRequest>(audit);
  ExpectEveryFieldSet(events);
  EXPECT_EQ(events.since().seconds(), 1700000000);
  EXPECT_EQ(events.until().nanos(), 5000000);
  EXPECT_EQ(events.kind(), "grant.issued");

  // Unset times stay unset: no "since 1970".
  const auto everything = AsProto<v1::ListAuditEventsRequest>(AuditQuery());
  EXPECT_FALSE(everything.has_since());
  EXPECT_FALSE(everything.has_until());
}

TEST(ConvertAccessTest, SecretsReachTheRequestAndAreWipedAfter) {
  PinChange pin;
  pin.current_pin = SecretBytes("1234");
  pin.new_pin = SecretBytes("5678");
  pin.store_passphrase = SecretBytes("correct horse");
  v1::SetApprovalPinRequest set;
  ToProto(pin, &set);
  ExpectEveryFieldSet(set);
  EXPECT_EQ(set.new_pin(), "5678");
  EXPECT_EQ(set.store_passphrase(), "correct horse");
  WipeSecrets(set);
  EXPECT_TRUE(set.current_pin().empty());
  EXPECT_TRUE(set.new_pin().empty());
  EXPECT_TRUE(set.store_passphrase().empty());

  PasskeyRegistration reg;
  reg.pin = SecretBytes("1234");
  reg.name = "YubiKey 5";
  reg.client_data_json = std::string("{\0}", 3);
  reg.attestation_object = "\xa3\x63";
  v1::FinishPasskeyRegistrationRequest finish;
  ToProto(reg, &finish);
  ExpectEveryFieldSet(finish);
  EXPECT_EQ(finish.client_data_json(), std::string("{\0}", 3));
  WipeSecrets(finish);
  EXPECT_TRUE(finish.pin().empty());
  EXPECT_EQ(finish.name(), "YubiKey 5");

  PasskeyRemoval removal;
  removal.id = "AbC";
  removal.all = true;
  removal.pin = SecretBytes("1234");
  v1::RemovePasskeyRequest remove;
  ToProto(removal, &remove);
  ExpectEveryFieldSet(remove);
  WipeSecrets(remove);
  EXPECT_TRUE(remove.pin().empty());

  KeyChange change;
  change.current_passphrase = SecretBytes("old passphrase");
  change.to = KeySource::kKeyFile;
  change.new_passphrase = SecretBytes("new passphrase");
  change.pin = SecretBytes("1234");
  v1::RekeyRequest rekey;
  ToProto(change, &rekey);
  ExpectEveryFieldSet(rekey);
  EXPECT_EQ(rekey.to(), v1::KEY_SOURCE_KEY_FILE);
  EXPECT_EQ(rekey.current_passphrase(), "old passphrase");
  WipeSecrets(rekey);
  EXPECT_TRUE(rekey.current_passphrase().empty());
  EXPECT_TRUE(rekey.new_passphrase().empty());
  EXPECT_TRUE(rekey.pin().empty());
}

TEST(ConvertAccessTest, KeySourcesKeepTheWireNumbers) {
  EXPECT_EQ(FromProto(v1::KEY_SOURCE_PASSPHRASE), KeySource::kPassphrase);
  EXPECT_EQ(FromProto(v1::KEY_SOURCE_KEY_FILE), KeySource::kKeyFile);
  EXPECT_EQ(FromProto(static_cast<v1::KeySource>(7)), KeySource::kUnspecified);
  EXPECT_EQ(KeySourceName(KeySource::kKeyFile), "KEY_SOURCE_KEY_FILE");
}

// credctl --json prints the message back: an unset time must not come back
// as 1970.
TEST(ConvertAccessTest, UnsetTimesStayUnset) {
  v1::ApprovalPinStatus status;
  status.set_pin_set(true);
  const auto pin = AsProto<v1::ApprovalPinStatus>(FromProto(status));
  EXPECT_FALSE(pin.has_locked_until());
  EXPECT_FALSE(pin.has_window_until());
  // "Never" is a value the broker always sends: credctl prints it.
  EXPECT_TRUE(pin.has_unlock_window());
  EXPECT_EQ(pin.unlock_window().seconds(), 0);

  v1::Passkey passkey;
  passkey.set_id("AbC");
  passkey.mutable_created()->set_seconds(1700000000);
  const Passkey v = FromProto(passkey);
  EXPECT_EQ(v.last_used, absl::InfinitePast());
  const auto back = AsProto<v1::Passkey>(v);
  EXPECT_TRUE(back.has_created());
  EXPECT_FALSE(back.has_last_used());
}

TEST(ConvertAccessTest, AnUnsetLockTimerIsZero) {
  v1::LockState state;
  state.set_locked(true);
  const LockState v = FromProto(state);
  EXPECT_EQ(v.auto_lock_after, absl::ZeroDuration());
  EXPECT_EQ(v.key_source, KeySource::kUnspecified);
  state.set_auto_lock_after_seconds(900);
  EXPECT_EQ(FromProto(state).auto_lock_after, absl::Minutes(15));
}

}  // namespace
}  // namespace internal
}  // namespace client
}  // namespace credbroker
