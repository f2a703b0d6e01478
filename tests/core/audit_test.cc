#include "broker/core/audit.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbaudit.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_path_ = dir_ + "/credbroker.db";
    now_ = absl::FromUnixSeconds(1'800'000'000);
    Open();
  }
  void TearDown() override {
    log_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Open() {
    log_.reset();
    store_.reset();
    auto store = OpenSqliteStore(db_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    log_ = std::make_unique<AuditLog>(store_.get(), &sealer_,
                                      [this] { return now_; });
  }
  void Record(const std::string& kind, const std::string& provider) {
    AuditRecord e;
    e.kind = kind;
    e.role = "approver";
    e.provider = provider;
    e.profile = "default";
    e.outcome = "ok";
    ASSERT_TRUE(log_->Record(e).ok());
    now_ += absl::Seconds(1);
  }
  // Runs SQL on the database behind the store's back, as an attacker with
  // the file would.
  void Tamper(const std::string& sql) {
    log_.reset();
    store_.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
    sqlite3_close(db);
    Open();
  }

  std::string dir_;
  std::string db_path_;
  absl::Time now_;
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, EventsAreChainedInOrder) {
  Record("credential.put", "aws");
  Record("credential.put", "gcp");
  Record("credential.delete", "aws");
  absl::StatusOr<AuditPage> page = log_->List({}, 0, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].sequence, 1);
  EXPECT_EQ(page->events[0].prev_hash, "");
  EXPECT_EQ(page->events[1].prev_hash, page->events[0].hash);
  EXPECT_EQ(page->events[2].prev_hash, page->events[1].hash);
  EXPECT_EQ(page->events[0].time, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_TRUE(log_->Verify().ok());
}

TEST_F(AuditLogTest, FiltersAndPages) {
  for (int i = 0; i < 5; ++i) {
    Record("credential.put", "aws");
    Record("call.refused", "");
  }
  AuditQuery by_kind;
  by_kind.kind = "credential.";
  EXPECT_EQ(log_->List(by_kind, 0, "")->events.size(), 5u);
  by_kind.kind = "call.refused";
  EXPECT_EQ(log_->List(by_kind, 0, "")->events.size(), 5u);
  AuditQuery by_provider;
  by_provider.provider = "aws";
  EXPECT_EQ(log_->List(by_provider, 0, "")->events.size(), 5u);
  AuditQuery by_time;
  by_time.since = absl::FromUnixSeconds(1'800'000'002);
  by_time.until = absl::FromUnixSeconds(1'800'000'004);
  absl::StatusOr<AuditPage> window = log_->List(by_time, 0, "");
  ASSERT_EQ(window->events.size(), 2u);
  EXPECT_EQ(window->events[0].sequence, 3);

  std::vector<int64_t> seen;
  std::string token;
  do {
    absl::StatusOr<AuditPage> page = log_->List({}, 4, token);
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->events) seen.push_back(e.sequence);
    token = page->next_page_token;
  } while (!token.empty());
  ASSERT_EQ(seen.size(), 10u);
  EXPECT_EQ(seen.back(), 10);
  EXPECT_EQ(log_->List({}, 0, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AuditLogTest, EditedEventIsFound) {
  for (int i = 0; i < 4; ++i) Record("credential.put", "aws");
  Tamper(
      "UPDATE audit_events SET outcome = 'PERMISSION_DENIED' WHERE sequence = "
      "2");
  absl::Status s = log_->Verify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "event 2")) << s.message();
  EXPECT_TRUE(absl::StrContains(s.message(), "edited")) << s.message();
}

TEST_F(AuditLogTest, DeletedEventIsFound) {
  for (int i = 0; i < 4; ++i) Record("credential.put", "aws");
  Tamper("DELETE FROM audit_events WHERE sequence = 3");
  absl::Status s = log_->Verify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "event 3")) << s.message();
}

TEST_F(AuditLogTest, InsertedEventIsFound) {
  for (int i = 0; i < 3; ++i) Record("credential.put", "aws");
  // Shift events up and insert a forged one that claims to chain correctly.
  Tamper(
      "UPDATE audit_events SET sequence = sequence + 100 WHERE sequence >= 2;"
      "UPDATE audit_events SET sequence = sequence - 99 WHERE sequence >= 102;"
      "INSERT INTO audit_events SELECT 2, time_us, 'credential.delete', role,"
      " peer, provider, profile, request_id, grant_id, action, outcome, detail,"
      " hash, hash FROM audit_events WHERE sequence = 1;");
  absl::Status s = log_->Verify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(s.message(), "event 2")) << s.message();
}

TEST_F(AuditLogTest, ChainCannotBeRecomputedWithoutTheKey) {
  Record("credential.put", "aws");
  // A chain written under another data key does not verify under ours.
  Sealer other(NewDataKey());
  AuditLog forged(store_.get(), &other, [this] { return now_; });
  AuditRecord e;
  e.kind = "credential.delete";
  ASSERT_TRUE(forged.Record(e).ok());
  EXPECT_EQ(log_->Verify().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace credbroker
