#include "broker/core/approval_pin.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "broker/crypto/password_hash.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class ApprovalPinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbpin.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_path_ = dir_ + "/credbroker.db";
    now_ = absl::FromUnixSeconds(1'800'000'000);
    caller_.role = "approver";
    caller_.peer = "test, pid 1, /bin/test";
    caller_.pid = 4242;
    caller_.start_time = 777;
    policy_.free_attempts = 3;
    policy_.first_lockout = absl::Seconds(10);
    policy_.max_lockout = absl::Seconds(25);
    policy_.unlock_window = absl::ZeroDuration();
    Open();
  }
  void TearDown() override {
    pin_.reset();
    audit_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  // (Re)opens everything, as a broker restart does.
  void Open() {
    pin_.reset();
    audit_.reset();
    store_.reset();
    auto store = OpenSqliteStore(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_,
                                        [this] { return now_; });
    pin_ = std::make_unique<ApprovalPin>(
        store_.get(), &sealer_, audit_.get(), [this] { return now_; }, policy_,
        passphrase_check_);
    ASSERT_TRUE(pin_->Load().ok());
  }
  void Sql(const std::string& sql) {
    pin_.reset();
    audit_.reset();
    store_.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    Open();
  }
  absl::Status Check(const std::string& pin, const Caller* caller = nullptr) {
    return pin_->Check(SecretBytes(pin), caller ? *caller : caller_, "Approve");
  }
  absl::Status Set(const std::string& current, const std::string& next,
                   const std::string& passphrase = "") {
    return pin_->Set(SecretBytes(current), SecretBytes(next),
                     SecretBytes(passphrase), caller_);
  }
  PinStatus Status() { return pin_->Status(caller_); }
  int CountAudit(const std::string& kind) {
    AuditQuery q;
    q.kind = kind;
    auto events = store_->ListAudit(q);
    return events.ok() ? static_cast<int>(events->size()) : -1;
  }

  std::string dir_, db_path_;
  absl::Time now_;
  Caller caller_;
  PinPolicy policy_;
  PassphraseCheck passphrase_check_;
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ApprovalPin> pin_;
};

TEST_F(ApprovalPinTest, WithTheFactorOnNoApprovalPassesUntilAPinIsSet) {
  absl::Status none = Check("");
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition) << none;
  EXPECT_TRUE(absl::StrContains(none.message(), "credctl pin set")) << none;
  EXPECT_EQ(Check("anything").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Status().set);
  EXPECT_TRUE(Status().required);
  EXPECT_EQ(CountAudit("pin.refused"), 2);
}

TEST_F(ApprovalPinTest, WithTheFactorOffNoPinLetsApprovalsThrough) {
  policy_.required = false;
  Open();
  EXPECT_TRUE(Check("").ok());
  EXPECT_TRUE(Check("anything").ok());
  EXPECT_FALSE(Status().required);
  ASSERT_TRUE(pin_->RecordDisabled(caller_).ok());
  EXPECT_EQ(CountAudit("factor.disabled"), 1);
}

TEST_F(ApprovalPinTest, SetPinIsRequiredAndNothingGuessableIsStored) {
  ASSERT_TRUE(Set("", "4711-secret").ok());
  EXPECT_TRUE(Status().set);
  EXPECT_TRUE(Check("4711-secret").ok());
  absl::Status missing = Check("");
  EXPECT_EQ(missing.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(missing.message(), "needs the approval PIN"));
  absl::Status wrong = Check("4712-secret");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(absl::StrContains(wrong.message(), "4711"));
  auto record = store_->GetMeta("approval_pin");
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(absl::StrContains(*record, "4711-secret"));
  // Sealed: no Argon2id string to guess against offline.
  EXPECT_FALSE(absl::StrContains(*record, "argon2")) << *record;
  EXPECT_TRUE(absl::StartsWith(*record, "v2:1:")) << *record;
  // Survives a restart.
  Open();
  EXPECT_TRUE(Check("4711-secret").ok());
  EXPECT_EQ(Check("").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CountAudit("pin.set"), 1);
  EXPECT_GE(CountAudit("pin.refused"), 2);
}

TEST_F(ApprovalPinTest, ChangingOrClearingNeedsTheCurrentPin) {
  ASSERT_TRUE(Set("", "first-pin").ok());
  EXPECT_EQ(Set("", "second").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Set("nope", "").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Set("first-pin", "second").ok());
  EXPECT_TRUE(Check("second").ok());
  ASSERT_TRUE(Set("second", "").ok());
  EXPECT_FALSE(Status().set);
  EXPECT_EQ(Check("").code(), absl::StatusCode::kFailedPrecondition);
  Open();  // Cleared is not "deleted behind our back".
  EXPECT_EQ(Check("").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Set("", "third").ok());
  EXPECT_TRUE(Check("third").ok());
}

TEST_F(ApprovalPinTest, PinLengthIsBounded) {
  absl::Status s = Set("", "123");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(GetFieldViolations(s).size(), 1u);
  EXPECT_EQ(GetFieldViolations(s)[0].field, "new_pin");
  EXPECT_EQ(Set("", std::string(129, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ApprovalPinTest,
       WrongPinsLockOutWithDoublingBackoffThatSurvivesRestart) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  EXPECT_EQ(Check("w1").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Check("w2").code(), absl::StatusCode::kPermissionDenied);
  // A missing PIN is not a guess.
  EXPECT_EQ(Check("").code(), absl::StatusCode::kPermissionDenied);
  absl::Status third = Check("w3");
  EXPECT_EQ(third.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(third.message(), "locked for 10 s")) << third;
  // Locked: even the right PIN is not checked.
  absl::Status locked = Check("right-pin");
  EXPECT_EQ(locked.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(locked.message(), "try again in 10 s"))
      << locked;
  Open();
  EXPECT_EQ(Check("right-pin").code(), absl::StatusCode::kResourceExhausted);
  now_ += absl::Seconds(10);
  EXPECT_TRUE(absl::StrContains(Check("w4").message(), "locked for 20 s"));
  now_ += absl::Seconds(20);
  EXPECT_TRUE(
      absl::StrContains(Check("w5").message(), "locked for 25 s"));  // Capped.
  EXPECT_EQ(Status().failed_attempts, 5);
  now_ += absl::Seconds(25);
  EXPECT_TRUE(Check("right-pin").ok());
  EXPECT_EQ(Status().failed_attempts, 0);
  EXPECT_TRUE(absl::StrContains(Check("w6").message(), "1 wrong attempt"));
}

TEST_F(ApprovalPinTest, AnEditedLockoutIsRefusedLikeAnEditedPin) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  EXPECT_EQ(Check("w1").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Check("w2").code(), absl::StatusCode::kPermissionDenied);
  // Resetting the count to buy more guesses.
  Sql("UPDATE meta SET value = '0 0 ' || substr(value, -64) "
      "WHERE key = 'approval_pin_lockout'");
  EXPECT_EQ(Check("right-pin").code(), absl::StatusCode::kDataLoss);
}

TEST_F(ApprovalPinTest, EditedPinRecordRefusesApprovals) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  // Flip one hex digit of the sealed hash (the value is a BLOB: compared
  // as text, so that a last digit '0' becomes '1').
  Sql("UPDATE meta SET value = substr(value, 1, length(value) - 1) || "
      "CASE WHEN CAST(substr(value, -1) AS TEXT) = '0' THEN '1' ELSE '0' END "
      "WHERE key = 'approval_pin'");
  EXPECT_EQ(Check("right-pin").code(), absl::StatusCode::kDataLoss)
      << *store_->GetMeta("approval_pin");
  EXPECT_EQ(Set("right-pin", "new-pin").code(), absl::StatusCode::kDataLoss);
  Caller op;
  op.role = "operator";
  ASSERT_TRUE(pin_->Reset(op).ok());
  EXPECT_EQ(Check("").code(),
            absl::StatusCode::kFailedPrecondition);  // None set now.
  EXPECT_EQ(CountAudit("pin.reset"), 1);
  Open();  // The reset record is the audited one.
  ASSERT_TRUE(Set("", "after-reset").ok());
  EXPECT_TRUE(Check("after-reset").ok());
}

TEST_F(ApprovalPinTest, AnOlderRecordPutBackIsRefused) {
  ASSERT_TRUE(Set("", "known-to-agent").ok());
  auto old_record = store_->GetMeta("approval_pin");
  ASSERT_TRUE(old_record.ok());
  ASSERT_TRUE(Set("known-to-agent", "only-the-person").ok());
  Sql("UPDATE meta SET value = '" + *old_record +
      "' WHERE key = 'approval_pin'");
  EXPECT_EQ(Check("known-to-agent").code(), absl::StatusCode::kDataLoss);
}

TEST_F(ApprovalPinTest, DeletedPinRecordIsDetectedFromTheAuditLog) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  Sql("DELETE FROM meta WHERE key = 'approval_pin'");
  EXPECT_EQ(Check("").code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Status().set);
}

TEST_F(ApprovalPinTest, ARecordOfTheOlderFormatIsSealedWhenLoaded) {
  auto hash = HashPassword(SecretBytes("legacy-pin"));
  ASSERT_TRUE(hash.ok());
  std::string mac = sealer_.AuditMac("credbroker.approval_pin.v1;" + *hash);
  ASSERT_TRUE(store_->PutMeta("approval_pin", mac + "\n" + *hash).ok());
  ASSERT_TRUE(store_->PutMeta("approval_pin_lockout", "1 0").ok());
  Open();
  EXPECT_TRUE(Check("legacy-pin").ok());
  auto record = store_->GetMeta("approval_pin");
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(absl::StrContains(*record, "argon2")) << *record;
  EXPECT_EQ(CountAudit("pin.sealed"), 1);
  Open();
  EXPECT_TRUE(Check("legacy-pin").ok());
}

TEST_F(ApprovalPinTest, TheUnlockWindowBelongsToOneProcessAndEnds) {
  policy_.unlock_window = absl::Minutes(5);
  Open();
  ASSERT_TRUE(Set("", "right-pin").ok());
  EXPECT_EQ(Check("").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Check("right-pin").ok());
  EXPECT_TRUE(Check("").ok());
  EXPECT_EQ(Status().window_until, now_ + absl::Minutes(5));
  Caller other = caller_;
  other.pid = 4243;  // Another process with the same token.
  EXPECT_EQ(Check("", &other).code(), absl::StatusCode::kPermissionDenied);
  Caller reused = caller_;
  reused.start_time = 778;  // The same pid, reused by a new process.
  EXPECT_EQ(Check("", &reused).code(), absl::StatusCode::kPermissionDenied);
  Caller unknown = caller_;
  unknown.pid = 0;  // A caller the kernel could not identify gets none.
  ASSERT_TRUE(Check("right-pin", &unknown).ok());
  EXPECT_EQ(Check("", &unknown).code(), absl::StatusCode::kPermissionDenied);
  now_ += absl::Minutes(5);
  EXPECT_EQ(Check("").code(), absl::StatusCode::kPermissionDenied);
  // Changing the PIN closes every window, and needs the PIN typed.
  ASSERT_TRUE(Check("right-pin").ok());
  EXPECT_EQ(Set("", "changed").code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Set("right-pin", "changed").ok());
  EXPECT_EQ(Check("").code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ApprovalPinTest, TheFirstPinOfAPassphraseStoreNeedsThePassphrase) {
  passphrase_check_ = [](const SecretBytes& p) {
    return p.Reveal() == "store passphrase"
               ? absl::OkStatus()
               : absl::PermissionDeniedError("wrong");
  };
  Open();
  EXPECT_TRUE(Status().first_pin_needs_passphrase);
  absl::Status none = Set("", "agent-pin");
  EXPECT_EQ(none.code(), absl::StatusCode::kPermissionDenied) << none;
  EXPECT_TRUE(absl::StrContains(none.message(), "store_passphrase")) << none;
  EXPECT_EQ(Set("", "agent-pin", "a guess").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Status().failed_attempts, 1);
  EXPECT_FALSE(Status().set);
  ASSERT_TRUE(Set("", "person-pin", "store passphrase").ok());
  EXPECT_TRUE(Check("person-pin").ok());
  // Changing it needs the PIN, not the passphrase.
  EXPECT_EQ(Set("", "x-pin", "store passphrase").code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace credbroker
