#include "broker/core/credentials.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/crypto/crypto.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

class CredentialManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbcore.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = absl::FromUnixSeconds(1'800'000'000);
    auto store =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(store.ok()) << store.status();
    auto counting = std::make_unique<CountingStore>(std::move(*store));
    counting_ = counting.get();
    store_ = std::move(counting);
    sealer_ = std::make_unique<Sealer>(NewDataKey());
    manager_ = std::make_unique<CredentialManager>(store_.get(), sealer_.get(),
                                                   &ProviderRegistry::Default(),
                                                   [this] { return now_; });
  }
  void TearDown() override {
    manager_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  PutCredentialInput Aws(const std::string& profile = "") {
    PutCredentialInput in;
    in.provider = "aws";
    in.profile = profile;
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    return in;
  }

  // Counts the reads of one credential that reach the database.
  class CountingStore : public ForwardingStore {
   public:
    using ForwardingStore::ForwardingStore;
    absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                   absl::string_view profile,
                                                   int64_t version) override {
      ++reads;
      return ForwardingStore::GetCredential(provider, profile, version);
    }
    std::atomic<int> reads{0};
  };

  std::string dir_;
  CountingStore* counting_ = nullptr;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sealer> sealer_;
  absl::Time now_;
  std::unique_ptr<CredentialManager> manager_;
};

const MaskedField* FindField(const CredentialSummary& s,
                             const std::string& name) {
  for (const auto& f : s.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

PutCredentialInput AwsWith(const std::string& profile,
                           const std::string& key_id,
                           const std::string& secret) {
  PutCredentialInput in;
  in.provider = "aws";
  in.profile = profile;
  in.values.emplace("access_key_id", SecretBytes(key_id));
  in.values.emplace("secret_access_key", SecretBytes(secret));
  return in;
}

constexpr char kKeyId2[] = "AKIAI44QH8DHBEXAMPLE";
constexpr char kSecret2[] = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

TEST_F(CredentialManagerTest, PutStoresVersionsAndMasksSecrets) {
  absl::StatusOr<PutCredentialResult> r = manager_->Put(Aws());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->credential.provider, "aws");
  EXPECT_EQ(r->credential.profile, "default");
  EXPECT_EQ(r->credential.version, 1);
  EXPECT_EQ(r->credential.readiness, Readiness::kReady);
  const MaskedField* secret = FindField(r->credential, "secret_access_key");
  ASSERT_NE(secret, nullptr);
  EXPECT_TRUE(secret->sensitive);
  EXPECT_TRUE(secret->set);
  EXPECT_FALSE(absl::StrContains(secret->display, "wJalrXUtnFEMI"));
  const MaskedField* id = FindField(r->credential, "access_key_id");
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->display, "AKIA…MPLE");

  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<CredentialSummary> got = manager_->Get("aws", "default", 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->version_count, 2);
  auto values = manager_->GetValues("aws", "", 1);
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(values->values.at("secret_access_key").Reveal() == kSecret);
}

TEST_F(CredentialManagerTest, TrimsStraySpacesAndSaysSo) {
  PutCredentialInput in = Aws();
  in.values["access_key_id"] = SecretBytes(std::string(" ") + kKeyId + "\n");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_TRUE(r.ok()) << r.status();
  bool reported = false;
  for (const auto& f : r->findings) {
    reported |= f.field == "access_key_id" && f.severity == Severity::kInfo;
  }
  EXPECT_TRUE(reported);
  auto values = manager_->GetValues("aws", "default", 0);
  EXPECT_TRUE(values->values.at("access_key_id").Reveal() == kKeyId);
}

TEST_F(CredentialManagerTest,
       InvalidValuesAreRefusedWithViolationsAndNothingStored) {
  PutCredentialInput in = Aws();
  in.values["access_key_id"] = SecretBytes("AKIA123");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FieldViolation> v = GetFieldViolations(r.status());
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].field, "values.access_key_id");
  EXPECT_EQ(manager_->Get("aws", "default", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CredentialManagerTest, UnknownProviderAndBadProfileAreInvalidArgument) {
  PutCredentialInput in = Aws();
  in.provider = "awz";
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "aws") ||
              !GetFieldViolations(r.status()).empty());
  r = manager_->Put(Aws("Bad Profile!"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_FALSE(GetFieldViolations(r.status()).empty());
  EXPECT_EQ(GetFieldViolations(r.status())[0].field, "profile");
}

TEST_F(CredentialManagerTest, KeepExistingKeepsUnsentSecrets) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  PutCredentialInput update;
  update.provider = "aws";
  update.keep_existing = true;
  update.values.emplace("region", SecretBytes("eu-west-1"));
  update.values.emplace("secret_access_key", SecretBytes(""));  // Left blank.
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(update));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->credential.version, 2);
  auto values = manager_->GetValues("aws", "default", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_TRUE(values->values.at("secret_access_key").Reveal() == kSecret);
  EXPECT_TRUE(values->values.at("region").Reveal() == "eu-west-1");
}

TEST_F(CredentialManagerTest, ProfilesAreIndependent) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  ASSERT_TRUE(manager_->Put(Aws("staging")).ok());
  absl::StatusOr<ListCredentialsResult> list = manager_->List("", 0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->credentials.size(), 2u);
  EXPECT_EQ(list->credentials[0].profile, "default");
  EXPECT_EQ(list->credentials[1].profile, "staging");
  ASSERT_TRUE(manager_->Delete("aws", "staging").ok());
  EXPECT_EQ(manager_->Delete("aws", "staging").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager_->Get("aws", "default", 0).ok());
}

TEST_F(CredentialManagerTest, ListPagesThroughEverything) {
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(manager_->Put(Aws("p" + std::to_string(i))).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<ListCredentialsResult> page =
        manager_->List("aws", 3, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& c : page->credentials) seen.push_back(c.profile);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen.front(), "p0");
  EXPECT_EQ(seen.back(), "p6");
  EXPECT_EQ(manager_->List("", 0, "!!garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, RotationDueAfterThePeriod) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  now_ += absl::Hours(24 * 89);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24 * 2);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kRotationDue);
  // A per-profile period overrides the provider's.
  PutCredentialInput in = Aws("short");
  in.rotation_period = absl::Hours(24 * 7);
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  now_ += absl::Hours(24 * 8);
  EXPECT_EQ(manager_->Get("aws", "short", 0)->readiness,
            Readiness::kRotationDue);
}

TEST_F(CredentialManagerTest, RotationPeriodOutsideOneDayToTenYearsIsRefused) {
  for (absl::Duration bad : {absl::Seconds(1), absl::Hours(23),
                             -absl::Hours(48), absl::Hours(24 * 3651)}) {
    PutCredentialInput in = Aws("rot");
    in.rotation_period = bad;
    absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    ASSERT_FALSE(GetFieldViolations(r.status()).empty());
    EXPECT_EQ(GetFieldViolations(r.status())[0].field, "rotation_period");
  }
  PutCredentialInput ok = Aws("rot");
  ok.rotation_period = absl::Hours(24);
  EXPECT_TRUE(manager_->Put(std::move(ok)).ok());
}

TEST_F(CredentialManagerTest, ValidateCandidateStoresNothing) {
  FieldValues values;
  values.emplace("access_key_id", SecretBytes("akia-not-a-key"));
  absl::StatusOr<ValidateResult> r =
      manager_->Validate("aws", "", std::move(values), SecretBytes());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->valid);
  EXPECT_FALSE(r->findings.empty());
  EXPECT_FALSE(r->required_permissions.empty());
  EXPECT_EQ(manager_->Get("aws", "", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CredentialManagerTest, ValidateStored) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<ValidateResult> r =
      manager_->Validate("aws", "", {}, SecretBytes());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->valid);
  EXPECT_EQ(r->readiness, Readiness::kReady);
}

TEST_F(CredentialManagerTest, GeneratesRedisPasswordWhenAsked) {
  PutCredentialInput in;
  in.provider = "redis-cloud";
  in.values.emplace(
      "account_key",
      SecretBytes("A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z"));
  in.values.emplace(
      "user_key",
      SecretBytes("S1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z"));
  in.generate.push_back("database_password");
  absl::StatusOr<PutCredentialResult> r = manager_->Put(std::move(in));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->generated.size(), 1u);
  auto values = manager_->GetValues("redis-cloud", "", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_GE(values->values.at("database_password").size(), 24u);

  PutCredentialInput bad = Aws();
  bad.generate.push_back("secret_access_key");
  EXPECT_EQ(manager_->Put(std::move(bad)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, RecordUnderAnotherKeyIsDataLossNotGarbage) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  Sealer other(NewDataKey());
  CredentialManager wrong(store_.get(), &other, &ProviderRegistry::Default(),
                          [this] { return now_; });
  absl::StatusOr<CredentialSummary> got = wrong.Get("aws", "", 0);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(got.status().message(), "aws/default"));
}

// The one cache of credential facts is the store's index of latest rows,
// and every answer's life (AnswerLife) ends with the store's next commit:
// each kind of write (a new version, a rollback, a new default profile, a
// delete) is seen by the next read, and ends the life of every answer read
// before it.
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

TEST_F(CredentialManagerTest, ResolveRequirementsNamesProvidersAndReadiness) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  absl::StatusOr<std::vector<Requirement>> r = manager_->ResolveRequirements(
      {"deploy to AWS in us-east-1", "netlify"}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].provider, "aws");
  EXPECT_TRUE((*r)[0].configured);
  EXPECT_EQ((*r)[0].readiness, Readiness::kReady);
  EXPECT_EQ((*r)[1].provider, "netlify");
  EXPECT_FALSE((*r)[1].configured);
  EXPECT_FALSE((*r)[1].missing_fields.empty());
  EXPECT_EQ(manager_->ResolveRequirements({"kubernetes"}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialManagerTest, OversizedInputIsRefused) {
  PutCredentialInput in = Aws();
  in.values["secret_access_key"] =
      SecretBytes(std::string(kMaxValueBytes + 1, 'x'));
  EXPECT_EQ(manager_->Put(std::move(in)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- History, rollback, default profiles, expiry, days until rotation. ---

TEST_F(CredentialManagerTest, HistoryListsVersionsWithoutValues) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  now_ += absl::Hours(1);
  ASSERT_TRUE(manager_->Put(AwsWith("", kKeyId2, kSecret2)).ok());
  absl::StatusOr<CredentialHistory> h = manager_->ListVersions("aws", "");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->profile, "default");
  ASSERT_EQ(h->versions.size(), 2u);
  EXPECT_EQ(h->versions[0].version, 1);
  EXPECT_FALSE(h->versions[0].current);
  EXPECT_TRUE(h->versions[1].current);
  EXPECT_EQ(h->versions[1].created_at - h->versions[0].created_at,
            absl::Hours(1));
  EXPECT_NE(h->versions[0].fingerprint, h->versions[1].fingerprint);
  EXPECT_FALSE(h->versions[0].fingerprint.empty());
  EXPECT_TRUE(absl::IsNotFound(manager_->ListVersions("aws", "nope").status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(manager_->ListVersions("nope", "").status()));
}

TEST_F(CredentialManagerTest, RollbackStoresANewVersionWithTheOldValues) {
  absl::StatusOr<PutCredentialResult> v1 = manager_->Put(Aws());
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(manager_->Put(AwsWith("", kKeyId2, kSecret2)).ok());
  absl::StatusOr<RollbackResult> r = manager_->Rollback("aws", "", 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->restored_version, 1);
  EXPECT_EQ(r->credential.version, 3);
  EXPECT_EQ(r->credential.version_count, 3);
  EXPECT_EQ(r->credential.fingerprint, v1->credential.fingerprint);
  absl::StatusOr<CredentialManager::StoredValues> values =
      manager_->GetValues("aws", "", 0);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(values->version, 3);
  EXPECT_EQ(values->values.at("access_key_id").Reveal(), kKeyId);
  EXPECT_EQ(values->values.at("secret_access_key").Reveal(), kSecret);
  // History stays append-only: versions 1 and 2 are still there.
  EXPECT_EQ(manager_->ListVersions("aws", "")->versions.size(), 3u);
  EXPECT_EQ(
      manager_->GetValues("aws", "", 2)->values.at("access_key_id").Reveal(),
      kKeyId2);

  EXPECT_TRUE(
      absl::IsFailedPrecondition(manager_->Rollback("aws", "", 3).status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->Rollback("aws", "", 9).status()));
  EXPECT_TRUE(absl::IsNotFound(manager_->Rollback("aws", "other", 1).status()));
  absl::Status bad = manager_->Rollback("aws", "", 0).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  ASSERT_EQ(GetFieldViolations(bad).size(), 1u);
  EXPECT_EQ(GetFieldViolations(bad)[0].field, "version");
}

TEST_F(CredentialManagerTest, DefaultProfileIsUsedWhereTheProfileIsEmpty) {
  ASSERT_TRUE(manager_->Put(Aws("default")).ok());
  ASSERT_TRUE(manager_->Put(AwsWith("staging", kKeyId2, kSecret2)).ok());
  EXPECT_EQ(*manager_->DefaultProfile("aws"), "default");
  EXPECT_TRUE(manager_->Get("aws", "", 0)->is_default);

  absl::StatusOr<DefaultProfileChange> c =
      manager_->SetDefaultProfile("aws", "staging");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->previous_profile, "default");
  EXPECT_EQ(c->profile, "staging");
  EXPECT_TRUE(c->configured);
  EXPECT_EQ(*store_->GetMeta("default_profile/aws"), "staging");

  absl::StatusOr<CredentialSummary> got = manager_->Get("aws", "", 0);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->profile, "staging");
  EXPECT_TRUE(got->is_default);
  EXPECT_EQ(
      manager_->GetValues("aws", "", 0)->values.at("access_key_id").Reveal(),
      kKeyId2);
  EXPECT_EQ(manager_->Validate("aws", "", {}, SecretBytes())->profile,
            "staging");
  // Put with no profile writes the default profile.
  EXPECT_EQ(manager_->Put(Aws())->credential.profile, "staging");

  absl::StatusOr<ListCredentialsResult> list = manager_->List("aws", 0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->credentials.size(), 2u);
  EXPECT_FALSE(list->credentials[0].is_default);  // default
  EXPECT_TRUE(list->credentials[1].is_default);   // staging

  // Other providers keep "default"; an empty profile resets; bad names are
  // refused.
  EXPECT_EQ(*manager_->DefaultProfile("gcp"), "default");
  EXPECT_FALSE(manager_->SetDefaultProfile("gcp", "prod")->configured);
  EXPECT_EQ(manager_->SetDefaultProfile("aws", "")->profile, "default");
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager_->SetDefaultProfile("aws", "Bad Name").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager_->SetDefaultProfile("nope", "x").status()));
}

TEST_F(CredentialManagerTest, ResolveRequirementsUsesDefaultsAndBindings) {
  ASSERT_TRUE(manager_->Put(Aws("prod")).ok());
  ASSERT_TRUE(manager_->SetDefaultProfile("aws", "prod").ok());
  absl::StatusOr<std::vector<Requirement>> r =
      manager_->ResolveRequirements({"deploy to aws", "netlify"}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].profile, "prod");
  EXPECT_EQ((*r)[0].profile_source, "default");
  EXPECT_TRUE((*r)[0].configured);
  EXPECT_EQ((*r)[0].readiness, Readiness::kReady);
  EXPECT_EQ((*r)[1].provider, "netlify");
  EXPECT_EQ((*r)[1].profile, "default");
  EXPECT_FALSE((*r)[1].configured);
  EXPECT_FALSE((*r)[1].missing_fields.empty());

  // A binding wins over the default for its resource.
  ASSERT_TRUE(manager_->Put(Aws("old")).ok());
  FlowWrite w;
  BindingRecord b;
  b.provider = "aws";
  b.resource = "cluster-a";
  b.profile = "old";
  b.fingerprint = manager_->Get("aws", "old", 0)->fingerprint;
  b.credential_version = 1;
  b.created_at = b.updated_at = now_;
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  r = manager_->ResolveRequirements({"aws"}, "", "cluster-a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].profile, "old");
  EXPECT_EQ((*r)[0].profile_source, "binding");
  EXPECT_TRUE((*r)[0].binding_note.empty());
  r = manager_->ResolveRequirements({"aws"}, "prod", "cluster-a");
  EXPECT_EQ((*r)[0].profile, "prod");
  EXPECT_EQ((*r)[0].profile_source, "requested");
  EXPECT_TRUE(
      absl::StrContains((*r)[0].binding_note, "was created with aws/old"));
}

TEST_F(CredentialManagerTest, BindingStateFollowsRotationAndDeletion) {
  ASSERT_TRUE(manager_->Put(Aws("old")).ok());
  BindingRecord b;
  b.provider = "aws";
  b.resource = "cluster-a";
  b.profile = "old";
  b.fingerprint = manager_->Get("aws", "old", 0)->fingerprint;
  b.credential_version = 1;
  FlowWrite w;
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  EXPECT_EQ(manager_->ListBindings("")->at(0).state, BindingState::kCurrent);

  ASSERT_TRUE(manager_->Put(AwsWith("old", kKeyId2, kSecret2)).ok());
  std::vector<BindingView> v = *manager_->ListBindings("aws");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, BindingState::kRotated);
  EXPECT_TRUE(absl::StrContains(v[0].note, "different credential"));
  EXPECT_FALSE(absl::StrContains(v[0].note, kSecret2));

  ASSERT_TRUE(manager_->Delete("aws", "old").ok());
  v = *manager_->ListBindings("aws");
  EXPECT_EQ(v[0].state, BindingState::kProfileDeleted);
  EXPECT_TRUE(absl::StrContains(v[0].note, "deleted"));
  absl::StatusOr<ProfileChoice> choice =
      manager_->ChooseProfile("aws", "", "cluster-a");
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->profile, "old");
  EXPECT_TRUE(absl::StrContains(choice->note, "deleted"));
  EXPECT_TRUE(manager_->ListBindings("gcp")->empty());
}

TEST_F(CredentialManagerTest, DaysUntilRotationCountsDown) {
  ASSERT_TRUE(manager_->Put(Aws()).ok());
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, 90);
  now_ += absl::Hours(24 * 89 + 1);
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, 0);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24);
  EXPECT_EQ(manager_->Get("aws", "", 0)->days_until_rotation, -1);
  EXPECT_EQ(manager_->Get("aws", "", 0)->readiness, Readiness::kRotationDue);
}

TEST_F(CredentialManagerTest, KnownExpiryDates) {
  // now_ is 2027-01-15. A date already past is refused when entered.
  PutCredentialInput past;
  past.provider = "github";
  past.values.emplace("token",
                      SecretBytes("github_pat_" + std::string(22, 'A') + "_" +
                                  std::string(59, 'b')));
  past.values.emplace("expires_at", SecretBytes("2027-01-01"));
  absl::Status refused = manager_->Put(std::move(past)).status();
  ASSERT_TRUE(absl::IsInvalidArgument(refused));
  EXPECT_EQ(GetFieldViolations(refused)[0].field, "values.expires_at");

  PutCredentialInput soon;
  soon.provider = "github";
  soon.values.emplace("token",
                      SecretBytes("github_pat_" + std::string(22, 'A') + "_" +
                                  std::string(59, 'b')));
  soon.values.emplace("expires_at", SecretBytes("2027-01-20"));
  absl::StatusOr<PutCredentialResult> put = manager_->Put(std::move(soon));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->credential.expires_at,
            absl::FromCivil(absl::CivilDay(2027, 1, 20), absl::UTCTimeZone()));
  bool warned = false;
  for (const Finding& f : put->findings) warned |= f.code == "expires_soon";
  EXPECT_TRUE(warned);
  EXPECT_EQ(put->credential.readiness, Readiness::kReady);

  // Read once before the date (the read is remembered), then once the date
  // passes the stored credential is EXPIRED, and doctor says so.
  EXPECT_EQ(manager_->Get("github", "", 0)->readiness, Readiness::kReady);
  now_ += absl::Hours(24 * 10);
  EXPECT_EQ(manager_->Get("github", "", 0)->readiness, Readiness::kExpired);
  absl::StatusOr<ValidateResult> doctor =
      manager_->Validate("github", "", {}, SecretBytes());
  ASSERT_TRUE(doctor.ok());
  EXPECT_EQ(doctor->readiness, Readiness::kExpired);
  const Finding* expired = nullptr;
  for (const Finding& f : doctor->findings) {
    if (f.code == "expired") expired = &f;
  }
  ASSERT_NE(expired, nullptr);
  EXPECT_EQ(expired->field, "expires_at");
  EXPECT_TRUE(absl::StrContains(expired->message, "2027-01-20"));
  EXPECT_FALSE(expired->fix.empty());
  EXPECT_FALSE(doctor->required_permissions.empty());
  EXPECT_FALSE(doctor->manual_checks.empty());
}

TEST_F(CredentialManagerTest, DoctorGivesEveryFindingWithItsFix) {
  // An Azure credential whose secret is past its date (the guide's "Client
  // secret expired") and past its rotation period.
  PutCredentialInput in;
  in.provider = "azure";
  in.values.emplace("client_id",
                    SecretBytes("11111111-2222-3333-4444-555555555555"));
  in.values.emplace("client_secret",
                    SecretBytes("abc8Q~FAKEfakeFAKEfakeFAKEfakeFAKEfake.x"));
  in.values.emplace("tenant_id",
                    SecretBytes("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
  in.values.emplace("subscription_id",
                    SecretBytes("01234567-89ab-cdef-0123-456789abcdef"));
  in.values.emplace("resource_group", SecretBytes("monk-rg"));
  in.values.emplace("expires_at", SecretBytes("2027-06-30"));
  ASSERT_TRUE(manager_->Put(std::move(in)).ok());
  now_ += absl::Hours(24 * 200);
  absl::StatusOr<ValidateResult> d =
      manager_->Validate("azure", "", {}, SecretBytes());
  ASSERT_TRUE(d.ok()) << d.status();
  std::set<std::string> codes;
  for (const Finding& f : d->findings) {
    codes.insert(f.code);
    EXPECT_FALSE(f.message.empty()) << f.code;
    EXPECT_FALSE(f.fix.empty()) << f.code;
  }
  EXPECT_TRUE(codes.count("expired"));
  EXPECT_TRUE(codes.count("rotation_due"));
  EXPECT_EQ(d->readiness, Readiness::kExpired);
  bool contributor = false;
  for (const auto& p : d->required_permissions) {
    contributor |= absl::StrContains(p, "Contributor");
  }
  EXPECT_TRUE(contributor);
}

}  // namespace
}  // namespace credbroker
