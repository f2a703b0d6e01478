#include "broker/core/passkeys.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "broker/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/soft_authenticator.h"

namespace credbroker {
namespace {

using ::testing::HasSubstr;

constexpr char kOrigin[] = "http://localhost:4100";
constexpr char kPin[] = "4711-pin";

class PasskeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbpasskey.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_path_ = dir_ + "/credbroker.db";
    now_ = absl::FromUnixSeconds(1'800'000'000);
    caller_.role = "approver";
    caller_.peer = "test";
    caller_.pid = 4242;
    caller_.start_time = 777;
    policy_.rp.id = "localhost";
    policy_.rp.origins = {kOrigin};
    Open();
    ASSERT_TRUE(
        pin_->Set(SecretBytes(""), SecretBytes(kPin), SecretBytes(""), caller_)
            .ok());
  }
  void TearDown() override {
    Close();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Close() {
    passkeys_.reset();
    pin_.reset();
    audit_.reset();
    store_.reset();
  }
  // (Re)opens everything, as a broker restart does.
  void Open() {
    Close();
    auto store = OpenSqliteStore(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    Clock clock = [this] { return now_; };
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_, clock);
    PinPolicy pin_policy;
    pin_policy.unlock_window = absl::Minutes(5);
    pin_ = std::make_unique<ApprovalPin>(store_.get(), &sealer_, audit_.get(),
                                         clock, pin_policy);
    ASSERT_TRUE(pin_->Load().ok());
    passkeys_ = std::make_unique<Passkeys>(store_.get(), &sealer_, audit_.get(),
                                           pin_.get(), clock, policy_);
    ASSERT_TRUE(passkeys_->Load().ok());
  }
  void Sql(const std::string& sql) {
    Close();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    Open();
  }
  std::string Meta(const std::string& key) {
    auto value = store_->GetMeta(key);
    return value.ok() ? *value : "";
  }
  absl::Status Register(SoftAuthenticator& a, const std::string& pin = kPin) {
    auto challenge = passkeys_->BeginRegistration(caller_);
    if (!challenge.ok()) return challenge.status();
    SoftRegistration reg =
        a.Register("localhost", kOrigin, challenge->challenge);
    return passkeys_
        ->FinishRegistration(SecretBytes(pin), "laptop key",
                             reg.client_data_json, reg.attestation_object,
                             caller_)
        .status();
  }
  PasskeyAssertionInput Assertion(SoftAuthenticator& a,
                                  const std::string& challenge,
                                  const std::string& origin = kOrigin) {
    SoftAssertion s = a.Assert("localhost", origin, challenge);
    return {a.credential_id(), s.client_data_json, s.authenticator_data,
            s.signature};
  }
  absl::Status Decide(const PasskeyAssertionInput* a,
                      const std::string& purpose = "Approve r1",
                      const std::string& pin = "") {
    return passkeys_->CheckDecision(SecretBytes(pin), a, "Approve", purpose,
                                    caller_);
  }
  std::string Challenge(const std::string& purpose = "Approve r1") {
    auto c = passkeys_->BeginAssertion(purpose, caller_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->challenge : "";
  }
  int CountAudit(const std::string& kind) {
    AuditQuery q;
    q.kind = kind;
    auto events = store_->ListAudit(q);
    return events.ok() ? static_cast<int>(events->size()) : -1;
  }

  std::string dir_, db_path_;
  absl::Time now_;
  Caller caller_;
  PasskeyPolicy policy_;
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ApprovalPin> pin_;
  std::unique_ptr<Passkeys> passkeys_;
  SoftAuthenticator key_{kCoseEs256};
};

TEST_F(PasskeysTest, RegisteringNeedsTheTypedPin) {
  EXPECT_EQ(Register(key_, "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Register(key_, "wrong-pin").code(),
            absl::StatusCode::kPermissionDenied);
  // A correct PIN opened an unlock window (Check), which does not count.
  ASSERT_TRUE(pin_->Check(SecretBytes(kPin), caller_, "Approve").ok());
  EXPECT_EQ(Register(key_, "").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Register(key_).ok());
  auto list = passkeys_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "laptop key");
  EXPECT_EQ((*list)[0].id, Base64UrlEncode(key_.credential_id()));
  EXPECT_EQ(Register(key_).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(PasskeysTest,
       AnAssertionApprovesOnlyTheDecisionItsChallengeWasIssuedFor) {
  ASSERT_TRUE(Register(key_).ok());
  PasskeyAssertionInput other = Assertion(key_, Challenge("Approve r2"));
  absl::Status status = Decide(&other);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("challenge"));
  PasskeyAssertionInput good = Assertion(key_, Challenge());
  EXPECT_TRUE(Decide(&good).ok());
  EXPECT_EQ(CountAudit("passkey.used"), 1);
}

TEST_F(PasskeysTest, AChallengeIsSpentOnceAndExpires) {
  ASSERT_TRUE(Register(key_).ok());
  const std::string challenge = Challenge();
  PasskeyAssertionInput first = Assertion(key_, challenge);
  ASSERT_TRUE(Decide(&first).ok());
  EXPECT_EQ(Decide(&first).code(), absl::StatusCode::kPermissionDenied);
  PasskeyAssertionInput again = Assertion(key_, challenge);
  EXPECT_EQ(Decide(&again).code(), absl::StatusCode::kPermissionDenied);
  PasskeyAssertionInput late = Assertion(key_, Challenge());
  now_ += policy_.challenge_lifetime;
  EXPECT_THAT(Decide(&late).message(), HasSubstr("expired"));
}

TEST_F(PasskeysTest, AWrongOriginIsRefusedAndSpendsTheChallenge) {
  ASSERT_TRUE(Register(key_).ok());
  const std::string challenge = Challenge();
  PasskeyAssertionInput wrong =
      Assertion(key_, challenge, "http://localhost:9999");
  absl::Status status = Decide(&wrong);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("origin"));
  PasskeyAssertionInput right = Assertion(key_, challenge);
  EXPECT_EQ(Decide(&right).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(PasskeysTest, ACounterThatWentBackIsAuditedAsAPossibleClone) {
  ASSERT_TRUE(Register(key_).ok());
  PasskeyAssertionInput a = Assertion(key_, Challenge());
  ASSERT_TRUE(Decide(&a).ok());
  key_.sign_count = 0;  // A copy of the key that signed less often.
  PasskeyAssertionInput clone = Assertion(key_, Challenge());
  absl::Status status = Decide(&clone);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("cloned"));
  AuditQuery q;
  q.kind = "passkey.refused";
  auto events = store_->ListAudit(q);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  EXPECT_THAT(events->back().detail,
              HasSubstr("possibly a cloned authenticator"));
}

TEST_F(PasskeysTest, TheCounterSurvivesARestart) {
  ASSERT_TRUE(Register(key_).ok());
  PasskeyAssertionInput a = Assertion(key_, Challenge());
  ASSERT_TRUE(Decide(&a).ok());
  Open();
  key_.sign_count = 0;
  PasskeyAssertionInput replay = Assertion(key_, Challenge());
  EXPECT_EQ(Decide(&replay).code(), absl::StatusCode::kPermissionDenied);
  PasskeyAssertionInput next = Assertion(key_, Challenge());  // Counts 2.
  EXPECT_TRUE(Decide(&next).ok());
}

TEST_F(PasskeysTest, WhenRequiredThePinAloneNoLongerSuffices) {
  EXPECT_TRUE(Decide(nullptr, "Approve r1", kPin).ok());
  policy_.required = true;
  Open();
  ASSERT_TRUE(Register(key_).ok());
  absl::Status status = Decide(nullptr, "Approve r1", kPin);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("passkey"));
  PasskeyAssertionInput a = Assertion(key_, Challenge());
  EXPECT_TRUE(Decide(&a).ok());
}

TEST_F(PasskeysTest, AnOlderRecordPutBackIsRefusedUntilRemovedWithThePin) {
  ASSERT_TRUE(Register(key_).ok());
  const std::string old_record = Meta("passkeys");
  PasskeyAssertionInput a = Assertion(key_, Challenge());
  ASSERT_TRUE(Decide(&a).ok());  // Writes the counter: record 2.
  Sql("UPDATE meta SET value = '" + old_record + "' WHERE key = 'passkeys'");
  EXPECT_EQ(passkeys_->List().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(passkeys_->BeginAssertion("Approve r1", caller_).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(passkeys_->Remove("", SecretBytes(""), caller_).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(passkeys_->Remove("", SecretBytes(kPin), caller_).ok());
  Open();
  auto list = passkeys_->List();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->empty());
}

TEST_F(PasskeysTest, APlantedRecordIsRefused) {
  Sql("INSERT OR REPLACE INTO meta (key, value) VALUES ('passkeys', "
      "'v1:1:00ff')");
  EXPECT_EQ(passkeys_->List().status().code(), absl::StatusCode::kDataLoss);
  Sql("DELETE FROM meta WHERE key = 'passkeys'");
  ASSERT_TRUE(Register(key_).ok());
  Sql("DELETE FROM meta WHERE key = 'passkeys'");  // Deleted after one was
                                                   // written.
  EXPECT_EQ(passkeys_->List().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(PasskeysTest, RemovingNeedsThePinAndNamesAnUnknownId) {
  ASSERT_TRUE(Register(key_).ok());
  const std::string id = Base64UrlEncode(key_.credential_id());
  EXPECT_EQ(passkeys_->Remove(id, SecretBytes("wrong-pin"), caller_).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(passkeys_->Remove("nope", SecretBytes(kPin), caller_).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(passkeys_->Remove(id, SecretBytes(kPin), caller_).ok());
  EXPECT_EQ(passkeys_->BeginAssertion("Approve r1", caller_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace credbroker
