#include "broker/core/approval_pin.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "broker/common/errors.h"
#include "broker/store/sqlite_store.h"
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
    PinPolicy policy;
    policy.free_attempts = 3;
    policy.first_lockout = absl::Seconds(10);
    policy.max_lockout = absl::Seconds(25);
    pin_ = std::make_unique<ApprovalPin>(
        store_.get(), &sealer_, audit_.get(), [this] { return now_; }, policy);
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
  absl::Status Check(const std::string& pin) {
    return pin_->Check(SecretBytes(pin), caller_, "Approve");
  }
  absl::Status Set(const std::string& current, const std::string& next) {
    return pin_->Set(SecretBytes(current), SecretBytes(next), caller_);
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
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ApprovalPin> pin_;
};

TEST_F(ApprovalPinTest, NoPinLetsEveryApprovalThrough) {
  EXPECT_TRUE(Check("").ok());
  EXPECT_TRUE(Check("anything").ok());
  EXPECT_FALSE(pin_->Status().set);
}

TEST_F(ApprovalPinTest, SetPinIsRequiredAndOnlyItsHashIsStored) {
  ASSERT_TRUE(Set("", "4711-secret").ok());
  EXPECT_TRUE(pin_->Status().set);
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
  EXPECT_TRUE(absl::StrContains(*record, "$argon2id$"));
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
  EXPECT_FALSE(pin_->Status().set);
  EXPECT_TRUE(Check("").ok());
  Open();
  EXPECT_TRUE(Check("").ok());  // Cleared is not "deleted behind our back".
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
  EXPECT_EQ(pin_->Status().failed_attempts, 5);
  now_ += absl::Seconds(25);
  EXPECT_TRUE(Check("right-pin").ok());
  EXPECT_EQ(pin_->Status().failed_attempts, 0);
  EXPECT_TRUE(absl::StrContains(Check("w6").message(), "1 wrong attempt"));
}

TEST_F(ApprovalPinTest, EditedPinRecordRefusesApprovals) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  // Replace the hash with one of a PIN the attacker knows, keeping the MAC.
  Sql("UPDATE meta SET value = substr(value, 1, instr(value, char(10))) || "
      "'$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaA' WHERE key = "
      "'approval_pin'");
  EXPECT_EQ(Check("right-pin").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Set("right-pin", "new-pin").code(), absl::StatusCode::kDataLoss);
  Caller op;
  op.role = "operator";
  ASSERT_TRUE(pin_->Reset(op).ok());
  EXPECT_TRUE(Check("").ok());
  EXPECT_EQ(CountAudit("pin.reset"), 1);
}

TEST_F(ApprovalPinTest, DeletedPinRecordIsDetectedFromTheAuditLog) {
  ASSERT_TRUE(Set("", "right-pin").ok());
  Sql("DELETE FROM meta WHERE key = 'approval_pin'");
  EXPECT_EQ(Check("").code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(pin_->Status().set);
}

}  // namespace
}  // namespace credbroker
