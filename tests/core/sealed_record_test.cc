#include "broker/core/sealed_record.h"

#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

constexpr SealedRecordFormat kFormat = {
    "test_record", "v1:",           "credbroker.test_record.v1",
    "thing.",      "thing.refused", "the test record"};

class SealedRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbsealed.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteStore(dir_ + "/credbroker.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_, [] {
      return absl::FromUnixSeconds(1'800'000'000);
    });
    record_ = std::make_unique<SealedRecord>(kFormat, store_.get(), &sealer_,
                                             audit_.get());
  }
  void TearDown() override {
    record_.reset();
    audit_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Write(const std::string& plain, uint64_t counter,
             const std::string& kind = "thing.set") {
    AuditRecord event;
    event.kind = kind;
    event.outcome = "ok";
    event.detail = "thing written";
    ASSERT_TRUE(record_->Write(SecretBytes(plain), counter, event).ok());
  }
  LoadedRecord Load() {
    absl::StatusOr<LoadedRecord> loaded = record_->Load();
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? std::move(*loaded) : LoadedRecord();
  }
  std::string Stored() { return store_->GetMeta(kFormat.meta_key).value(); }

  std::string dir_;
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<SealedRecord> record_;
};

TEST_F(SealedRecordTest, NothingWrittenIsNone) {
  LoadedRecord loaded = Load();
  EXPECT_EQ(loaded.state, LoadedRecord::kNone);
  EXPECT_EQ(loaded.audited, -1);
}

TEST_F(SealedRecordTest, AWrittenRecordIsSealedAndNamedByItsAuditEvent) {
  Write("the plain bytes", 1);
  EXPECT_TRUE(absl::StartsWith(Stored(), "v1:1:"));
  EXPECT_FALSE(absl::StrContains(Stored(), "plain"));
  LoadedRecord loaded = Load();
  ASSERT_EQ(loaded.state, LoadedRecord::kSealed);
  EXPECT_EQ(loaded.plain.Reveal(), "the plain bytes");
  EXPECT_EQ(loaded.counter, 1u);
  EXPECT_EQ(loaded.audited, 1);
  EXPECT_EQ(loaded.newest_kind, "thing.set");
  AuditQuery q;
  q.kind = "thing.";
  auto events = store_->ListAudit(q);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].detail, "thing written (record 1)");
}

TEST_F(SealedRecordTest, AnOlderRecordPutBackIsTampered) {
  Write("first", 1);
  const std::string first = Stored();
  Write("second", 2);
  ASSERT_TRUE(store_->PutMeta(kFormat.meta_key, first).ok());
  EXPECT_EQ(Load().state, LoadedRecord::kTampered);
}

TEST_F(SealedRecordTest, ARenumberedRecordIsTampered) {
  Write("first", 1);
  Write("second", 2);
  // Record 1's sealed bytes under the number the audit log names.
  ASSERT_TRUE(store_
                  ->PutMeta(kFormat.meta_key,
                            absl::StrReplaceAll(Stored(), {{"v1:2:", "v1:1:"}}))
                  .ok());
  EXPECT_EQ(Load().state, LoadedRecord::kTampered);
}

TEST_F(SealedRecordTest, ARemovedRecordIsTampered) {
  Write("first", 1);
  ASSERT_TRUE(store_->PutMeta(kFormat.meta_key, "").ok());
  EXPECT_EQ(Load().state, LoadedRecord::kTampered);
}

TEST_F(SealedRecordTest, RefusalsAndOtherFormatsAreTellable) {
  AuditRecord refused;
  refused.kind = "thing.refused";
  refused.outcome = "ok";
  refused.detail = "refused (record 7)";
  ASSERT_TRUE(audit_->Record(refused).ok());
  ASSERT_TRUE(store_->PutMeta(kFormat.meta_key, "an older format").ok());
  LoadedRecord loaded = Load();
  EXPECT_EQ(loaded.state, LoadedRecord::kOther);
  EXPECT_EQ(loaded.text, "an older format");
  EXPECT_EQ(loaded.audited, -1);  // A refusal names no record.
}

TEST_F(SealedRecordTest, TheNextCounterIsAboveWhatTheAuditLogNames) {
  Write("first", 1);
  Write("second", 2);
  Write("third", 3);
  absl::StatusOr<uint64_t> next = record_->NextCounter(1);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 4u);
  next = record_->NextCounter(9);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 10u);
}

}  // namespace
}  // namespace credbroker
