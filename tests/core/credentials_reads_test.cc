// CredentialManager reads: every write is seen by the next read, a held
// answer ends with a commit or the clock, rows changed behind the store are
// refused.
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/core/credentials.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/core/credentials_fixture.h"

namespace credbroker {
namespace testing {
namespace {

TEST_F(CredentialManagerTest, EveryKindOfWriteIsSeenByTheNextRead) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  ASSERT_TRUE(manager_->Put(AwsWith("staging", kKeyId2, kSecret2)).ok());
  CredentialManager::AnswerLife life;
  auto read = [&](const std::string& profile) {
    absl::StatusOr<CredentialSummary> s =
        manager_->Get("aws", profile, 0, &life);
    if (s.ok()) {
      EXPECT_TRUE(manager_->StillHolds(life));
    }
    return s;
  };
  auto validated = [&](const std::string& profile) {
    CredentialManager::AnswerLife checked;
    absl::StatusOr<ValidateResult> v =
        manager_->ValidateStored("aws", profile, &checked);
    if (v.ok()) {
      EXPECT_TRUE(manager_->StillHolds(checked));
    }
    return v;
  };
  absl::StatusOr<CredentialSummary> first = read("");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version, 1);
  EXPECT_TRUE(first->is_default);
  ASSERT_EQ(FindField(*first, "access_key_id")->display, "AKIA…MPLE");

  // A new version.
  PutCredentialInput in = AwsWith("default", kKeyId2, kSecret2);
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  EXPECT_FALSE(manager_->StillHolds(life));
  absl::StatusOr<CredentialSummary> put = read("");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->version, 2);
  EXPECT_NE(put->fingerprint, first->fingerprint);

  // A rollback to version 1: a new version with the old values.
  ASSERT_TRUE(manager_->Rollback("aws", "default", 1).ok());
  EXPECT_FALSE(manager_->StillHolds(life));
  absl::StatusOr<CredentialSummary> rolled = read("default");
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->version, 3);
  EXPECT_EQ(rolled->fingerprint, first->fingerprint);

  // Another default profile: the empty profile reads it, and "default" is
  // no longer marked so.
  ASSERT_TRUE(manager_->SetDefaultProfile("aws", "staging").ok());
  EXPECT_FALSE(manager_->StillHolds(life));
  absl::StatusOr<CredentialSummary> old_default = read("default");
  ASSERT_TRUE(old_default.ok()) << old_default.status();
  EXPECT_FALSE(old_default->is_default);
  absl::StatusOr<CredentialSummary> new_default = read("");
  ASSERT_TRUE(new_default.ok()) << new_default.status();
  EXPECT_EQ(new_default->profile, "staging");
  EXPECT_TRUE(new_default->is_default);
  absl::StatusOr<ValidateResult> check = validated("");
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->profile, "staging");

  // A delete.
  ASSERT_TRUE(manager_->Delete("aws", "staging").ok());
  EXPECT_FALSE(manager_->StillHolds(life));
  EXPECT_TRUE(absl::IsNotFound(read("").status()));
  EXPECT_TRUE(absl::IsNotFound(validated("staging").status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->GetValues("aws", "", 0).status()));

  // Nothing else moves an answer's life but the clock.
  absl::StatusOr<CredentialSummary> kept = read("default");
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(manager_->Get("aws", "default", 0).ok());
  ASSERT_TRUE(manager_->List("", 0, "").ok());
  EXPECT_TRUE(manager_->StillHolds(life));
}

TEST_F(CredentialManagerTest,
       ReadsRacingWritesNeverAnswerOlderThanAnAcknowledgedVersion) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  std::atomic<int64_t> acknowledged{1};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 5; ++t) {
    readers.emplace_back([&, t] {
      while (!done.load()) {
        const int64_t floor = acknowledged.load();
        if (t == 2) {
          absl::StatusOr<CredentialManager::StoredValues> v =
              manager_->GetValues("aws", "", 0);
          ASSERT_TRUE(v.ok()) << v.status();
          EXPECT_GE(v->version, floor);
        } else if (t == 3) {
          absl::StatusOr<ValidateResult> check =
              manager_->ValidateStored("aws", "");
          ASSERT_TRUE(check.ok()) << check.status();
          EXPECT_TRUE(check->valid);
        } else {
          absl::StatusOr<CredentialSummary> s = manager_->Get("aws", "", 0);
          ASSERT_TRUE(s.ok()) << s.status();
          EXPECT_GE(s->version, floor);
        }
        ++reads;
      }
    });
  }
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<PutCredentialResult> put = manager_->Put(Aws());
    ASSERT_TRUE(put.ok()) << put.status();
    acknowledged.store(put->credential.version);
  }
  done.store(true);
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 40);
  absl::StatusOr<CredentialSummary> last = manager_->Get("aws", "", 0);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->version, 41);
}

TEST_F(CredentialManagerTest, AnAnswerStopsHoldingWhenTheClockMovesItOn) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  CredentialManager::AnswerLife life;
  absl::StatusOr<CredentialSummary> fresh = manager_->Get("aws", "", 0, &life);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->readiness, Readiness::kReady);
  EXPECT_TRUE(manager_->StillHolds(life));
  now_ += absl::Hours(24 * 400);  // Past AWS's rotation period.
  EXPECT_FALSE(manager_->StillHolds(life));
  absl::StatusOr<CredentialSummary> old = manager_->Get("aws", "", 0);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->readiness, Readiness::kRotationDue);
  EXPECT_LE(old->days_until_rotation, 0);
  // An answer never holds before the time it was made at.
  now_ -= absl::Hours(24 * 400) + absl::Seconds(1);
  EXPECT_FALSE(manager_->StillHolds(life));
}

// An answer held for as long as its AnswerLife says (its clock-dependent
// part: days until rotation, the readiness, an expiry's findings) must be
// what a read at that moment says, at every moment: stepped across each
// boundary (a whole day before the rotation due time and before the expiry, the
// due time, the start of the "expires soon" warning, the expiry) in steps that
// land on and just around each boundary.
TEST_F(CredentialManagerTest, AHeldAnswerFollowsTheClockAcrossEveryBoundary) {
  PutCredentialInput github;
  github.provider = "github";
  github.values.emplace("token",
                        SecretBytes("github_pat_" + std::string(22, 'A') + "_" +
                                    std::string(59, 'b')));
  github.values.emplace("expires_at", SecretBytes("2027-03-01"));
  ASSERT_TRUE(manager_->Put(std::move(github)).ok());
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  auto summary_line = [](const CredentialSummary& s) {
    std::string line =
        absl::StrCat(s.days_until_rotation, " ", static_cast<int>(s.readiness));
    for (const Finding& f : s.findings)
      absl::StrAppend(&line, " ", f.code, ":", f.message);
    return line;
  };
  auto validation_line = [](const ValidateResult& v) {
    std::string line = absl::StrCat(v.valid, " ", static_cast<int>(v.readiness),
                                    " ", v.required_permissions.size(), " ",
                                    v.manual_checks.size());
    for (const Finding& f : v.findings)
      absl::StrAppend(&line, " ", f.code, ":", f.message);
    return line;
  };
  const absl::Time start = now_;
  // From 2027-01-15 08:00 UTC, 100 days reach past AWS's rotation due time
  // (90 days), the start of the "expires soon" warning (14 days before the
  // expiry) and the expiry itself (2027-03-01), all on whole hours.
  struct Held {
    CredentialManager::AnswerLife life;
    std::string summary;
    std::string validation;
  };
  std::map<std::string, Held> held;
  int compared = 0;
  int changes = 0;
  int reads = 0;
  std::map<std::string, std::string> last;
  for (absl::Duration t = absl::ZeroDuration(); t < absl::Hours(24 * 100);
       t += absl::Hours(1)) {
    for (absl::Duration nudge :
         {-absl::Nanoseconds(1) / 4, absl::ZeroDuration(),
          absl::Nanoseconds(1) / 4}) {
      // Every boundary is on a whole hour: each is hit, and so are the
      // instants just before and after it.
      now_ = start + t + nudge;
      for (const char* provider : {"aws", "github"}) {
        Held& h = held[provider];
        if (!manager_->StillHolds(h.life)) {
          absl::StatusOr<CredentialSummary> s =
              manager_->Get(provider, "", 0, &h.life);
          CredentialManager::AnswerLife checked;
          absl::StatusOr<ValidateResult> v =
              manager_->ValidateStored(provider, "", &checked);
          ASSERT_TRUE(s.ok()) << s.status();
          ASSERT_TRUE(v.ok()) << v.status();
          ASSERT_EQ(checked.until, h.life.until);
          h.summary = summary_line(*s);
          h.validation = validation_line(*v);
          ++reads;
        }
        absl::StatusOr<CredentialSummary> expected =
            manager_->Get(provider, "", 0);
        ASSERT_TRUE(expected.ok()) << expected.status();
        const std::string got = h.summary;
        ASSERT_EQ(got, summary_line(*expected))
            << provider << " at " << absl::FormatTime(now_);
        // And the diagnosis of what is stored, which holds as long.
        absl::StatusOr<ValidateResult> diagnosis =
            manager_->Validate(provider, "", {}, SecretBytes());
        ASSERT_TRUE(diagnosis.ok()) << diagnosis.status();
        ASSERT_EQ(h.validation, validation_line(*diagnosis))
            << provider << " at " << absl::FormatTime(now_);
        if (last[provider] != got) ++changes;
        last[provider] = got;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 100 * 24 * 3 * 2);
  // Each credential's answer changed every day and at each threshold, and
  // was read again only when it did (its life ended at the change).
  EXPECT_GT(changes, 2 * 100);
  EXPECT_LT(reads, 2 * changes);
}

TEST_F(CredentialManagerTest, ARowChangedWhileTheStoreWasClosedIsRefused) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  ASSERT_TRUE(manager_->Get("aws", "", 0).ok());
  ASSERT_TRUE(manager_->List("", 0, "").ok());
  ASSERT_TRUE(manager_->Validate("aws", "", {}, SecretBytes()).ok());
  ASSERT_TRUE(manager_->GetValues("aws", "", 0).ok());

  // Flip the last byte of the stored ciphertext while the store is closed
  // (while it is open no other process can open the file).
  manager_.reset();
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/credbroker.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* read = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT sealed FROM credentials", -1, &read,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(read), SQLITE_ROW);
  std::string sealed(static_cast<const char*>(sqlite3_column_blob(read, 0)),
                     sqlite3_column_bytes(read, 0));
  sqlite3_finalize(read);
  ASSERT_FALSE(sealed.empty());
  sealed.back() ^= 1;
  sqlite3_stmt* write = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE credentials SET sealed = ?1", -1,
                               &write, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(write, 1, sealed.data(), static_cast<int>(sealed.size()),
                    SQLITE_STATIC);
  ASSERT_EQ(sqlite3_step(write), SQLITE_DONE);
  sqlite3_finalize(write);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_close(db);
  auto reopened =
      OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  store_ = std::move(*reopened);
  manager_ = std::make_unique<CredentialManager>(store_.get(), sealer_.get(),
                                                 &ProviderRegistry::Default(),
                                                 [this] { return now_; });

  absl::StatusOr<CredentialSummary> got = manager_->Get("aws", "", 0);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  absl::StatusOr<ValidateResult> validated =
      manager_->Validate("aws", "", {}, SecretBytes());
  EXPECT_EQ(validated.status().code(), absl::StatusCode::kDataLoss)
      << validated.status();
  // Nor are its values released.
  EXPECT_EQ(manager_->GetValues("aws", "", 0).status().code(),
            absl::StatusCode::kDataLoss);
  absl::StatusOr<ListCredentialsResult> listed = manager_->List("", 0, "");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->credentials.size(), 1u);
  EXPECT_EQ(listed->credentials[0].readiness, Readiness::kInvalid);

  // A new version is read as itself.
  PutCredentialInput in = Aws();
  in.values.erase("access_key_id");
  in.values.emplace("access_key_id", SecretBytes("AKIAJ7QXZ2ABCDEFGHWX"));
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  got = manager_->Get("aws", "", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  const MaskedField* key = FindField(*got, "access_key_id");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->display, "AKIA…GHWX");
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
