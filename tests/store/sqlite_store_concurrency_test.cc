// SqliteStore under concurrent writers and other connections, at scale,
// and killed mid-write.
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/sqlite_store_fixture.h"

namespace credbroker {
namespace testing {
namespace {

using ::testing::HasSubstr;

// --- Concurrency ----------------------------------------------------------

TEST_F(SqliteStoreTest, ConcurrentPutsGetDistinctConsecutiveVersions) {
  constexpr int kThreads = 6;
  constexpr int kPutsPerThread = 20;
  std::vector<std::vector<int64_t>> versions(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPutsPerThread; ++i) {
        absl::StatusOr<CredentialRecord> r = store_->PutCredential(
            "aws", "shared", absl::ZeroDuration(), FakeSeal("aws", "shared"));
        if (!r.ok()) {
          ++failures;
          continue;
        }
        versions[t].push_back(r->version);
        // Readers interleave with writers.
        if (!store_->GetCredential("aws", "shared", 0).ok()) ++failures;
        if (!store_->ListCredentials(ListCredentialsOptions()).ok()) ++failures;
        // Each thread also writes its own profile.
        if (!store_
                 ->PutCredential("gcp", absl::StrCat("t", t),
                                 absl::ZeroDuration(),
                                 FakeSeal("gcp", absl::StrCat("t", t)))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> all;
  for (const auto& per_thread : versions) {
    // Each thread sees its own versions increase.
    EXPECT_TRUE(std::is_sorted(per_thread.begin(), per_thread.end()));
    all.insert(per_thread.begin(), per_thread.end());
  }
  constexpr int kTotal = kThreads * kPutsPerThread;
  ASSERT_EQ(all.size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kTotal);
  absl::StatusOr<std::vector<CredentialRecord>> history =
      store_->ListVersions("aws", "shared");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), static_cast<size_t>(kTotal));
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ((*history)[i].version, i + 1);
    EXPECT_EQ((*history)[i].sealed, SealedFor("aws", "shared", i + 1));
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store_->GetCredential("gcp", absl::StrCat("t", t), 0)->version,
              kPutsPerThread);
  }
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileShareVersions) {
  // Two connections (as two broker processes on a shared file would have):
  // BEGIN IMMEDIATE and the busy timeout keep numbering consistent.
  absl::StatusOr<std::unique_ptr<Store>> second = OpenSqliteStore(path_);
  ASSERT_TRUE(second.ok()) << second.status();
  std::thread a([&] {
    for (int i = 0; i < 25; ++i) Put("aws", "default");
  });
  std::thread b([&] {
    for (int i = 0; i < 25; ++i) {
      EXPECT_TRUE((*second)
                      ->PutCredential("aws", "default", absl::ZeroDuration(),
                                      FakeSeal("aws", "default"))
                      .ok());
    }
  });
  a.join();
  b.join();
  absl::StatusOr<std::vector<CredentialRecord>> history =
      store_->ListVersions("aws", "default");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ((*history)[i].version, i + 1);
}

TEST_F(SqliteStoreTest, WriterWaitsForAnotherConnectionsLock) {
  Put("aws", "default");
  // Another connection holds the write lock briefly: the store waits for it
  // (busy timeout) instead of failing.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  absl::Time start = absl::Now();
  CredentialRecord r = Put("aws", "default");
  release.join();
  sqlite3_close(other);
  EXPECT_EQ(r.version, 2);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
}

TEST_F(SqliteStoreTest, LockHeldTooLongIsUnavailable) {
  Put("aws", "default");
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::StatusOr<CredentialRecord> r = store_->PutCredential(
      "aws", "default", absl::ZeroDuration(), FakeSeal("aws", "default"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("locked"));
  // Reads are not blocked by a writer in WAL mode.
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(Put("aws", "default").version, 2);
}

TEST_F(SqliteStoreTest, DiskFullIsResourceExhaustedAndLosesNothing) {
  Put("aws", "default");
  Put("aws", "default");
  store_.reset();
  // In a child (file size limits are per process): cap file growth a little
  // above the current files, then try to store a large credential.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    if (!store.ok()) _exit(10);
    off_t largest = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st;
      if (stat((path_ + suffix).c_str(), &st) == 0) {
        largest = std::max(largest, st.st_size);
      }
    }
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(largest + 64 * 1024);
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(11);
    absl::StatusOr<CredentialRecord> r = (*store)->PutCredential(
        "aws", "default", absl::ZeroDuration(),
        [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
          return std::make_pair(std::string(4 << 20, 'x'), "fp");
        });
    if (r.ok()) _exit(12);
    if (r.status().code() != absl::StatusCode::kResourceExhausted) _exit(13);
    if (r.status().message().find("disk full") == absl::string_view::npos) {
      _exit(14);
    }
    if (r.status().message().find("xxxx") != absl::string_view::npos) {
      _exit(15);
    }
    // The store is still usable for reads.
    absl::StatusOr<CredentialRecord> latest =
        (*store)->GetCredential("aws", "default", 0);
    if (!latest.ok() || latest->version != 2) _exit(16);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);

  Reopen();
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  absl::StatusOr<CredentialRecord> latest =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->sealed, SealedFor("aws", "default", 2));
  EXPECT_EQ(Put("aws", "default").version, 3);
}

// --- Scale ----------------------------------------------------------------

TEST_F(SqliteStoreTest, ListingPagesThroughManyProfiles) {
  constexpr int kProfiles = 100000;
  store_.reset();
  // Bulk-load through a raw connection in one transaction (the store's own
  // writes each wait for fsync); two versions per profile.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_stmt* profile = nullptr;
    sqlite3_stmt* version = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(
            db, "INSERT INTO credential_profiles VALUES (?1, ?2, 2, 2, 1)", -1,
            &profile, nullptr),
        SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(
                  db,
                  "INSERT INTO credentials VALUES (?1, ?2, ?3, x'00', 'fp', "
                  "?3, 0)",
                  -1, &version, nullptr),
              SQLITE_OK);
    for (int i = 0; i < kProfiles; ++i) {
      std::string name = absl::StrFormat("p%06d", i);
      const char* provider = i % 2 == 0 ? "aws" : "gcp";
      sqlite3_bind_text(profile, 1, provider, -1, SQLITE_STATIC);
      sqlite3_bind_text(profile, 2, name.c_str(), -1, SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(profile), SQLITE_DONE);
      sqlite3_reset(profile);
      for (int v = 1; v <= 2; ++v) {
        sqlite3_bind_text(version, 1, provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(version, 2, name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(version, 3, v);
        ASSERT_EQ(sqlite3_step(version), SQLITE_DONE);
        sqlite3_reset(version);
      }
    }
    sqlite3_finalize(profile);
    sqlite3_finalize(version);
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  Reopen();

  // A page deep into the keyspace starts right after the cursor.
  ListCredentialsOptions options;
  options.limit = 100;
  options.after_provider = "gcp";
  options.after_profile = "p090001";
  constexpr int kRepeats = 5;
  for (int i = 0; i < kRepeats; ++i) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(options);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->size(), 100u);
    EXPECT_EQ(page->front().profile, "p090003");
    EXPECT_EQ(page->front().version, 2);
  }

  // The same deep in one provider's profiles.
  options.provider = "aws";
  options.after_provider = "aws";
  options.after_profile = "p090000";
  for (int i = 0; i < kRepeats; ++i) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(options);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->size(), 100u);
    EXPECT_EQ(page->front().profile, "p090002");
    EXPECT_EQ(page->back().profile, "p090200");
  }

  options.after_profile = "p099990";
  absl::StatusOr<std::vector<CredentialRecord>> tail =
      store_->ListCredentials(options);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 4u);  // p099992 .. p099998
  EXPECT_EQ(tail->back().profile, "p099998");

  // Walking every page visits each profile once.
  ListCredentialsOptions walk;
  walk.limit = 1000;
  int seen = 0;
  while (true) {
    absl::StatusOr<std::vector<CredentialRecord>> page =
        store_->ListCredentials(walk);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    seen += static_cast<int>(page->size());
    walk.after_provider = page->back().provider;
    walk.after_profile = page->back().profile;
  }
  EXPECT_EQ(seen, kProfiles);
}

// --- Durability -----------------------------------------------------------

// A writer killed at a random moment loses none of the writes it reported.
TEST_F(SqliteStoreTest, KilledWriterLosesNoAcknowledgedWrite) {
  store_.reset();
  std::mt19937 rng(std::random_device{}());
  int64_t acknowledged_total = 0;
  for (int iteration = 0; iteration < 4; ++iteration) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
      if (!store.ok()) _exit(2);
      for (int i = 0; i < 100000; ++i) {
        absl::StatusOr<CredentialRecord> r = (*store)->PutCredential(
            "aws", "killed", absl::ZeroDuration(), FakeSeal("aws", "killed"));
        if (!r.ok()) _exit(3);
        int64_t v = r->version;
        if (write(fds[1], &v, sizeof(v)) != sizeof(v)) _exit(4);
      }
      _exit(0);
    }
    close(fds[1]);
    std::uniform_int_distribution<int> delay_ms(30, 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus))
        << "child exited with " << WEXITSTATUS(wstatus);
    std::vector<int64_t> acknowledged;
    int64_t v = 0;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) acknowledged.push_back(v);
    close(fds[0]);
    acknowledged_total += static_cast<int64_t>(acknowledged.size());

    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CheckIntegrity().ok());
    for (int64_t version : acknowledged) {
      absl::StatusOr<CredentialRecord> r =
          (*store)->GetCredential("aws", "killed", version);
      ASSERT_TRUE(r.ok()) << "acknowledged version " << version
                          << " lost: " << r.status();
      EXPECT_EQ(r->sealed, SealedFor("aws", "killed", version));
    }
    // History has no holes.
    absl::StatusOr<std::vector<CredentialRecord>> history =
        (*store)->ListVersions("aws", "killed");
    ASSERT_TRUE(history.ok());
    for (size_t i = 0; i < history->size(); ++i) {
      ASSERT_EQ((*history)[i].version, static_cast<int64_t>(i + 1));
    }
    if (!acknowledged.empty()) {
      EXPECT_GE(static_cast<int64_t>(history->size()), acknowledged.back());
    }
  }
  EXPECT_GT(acknowledged_total, 0);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
