// SqliteStore: group commit, the change mark, the latest versions kept in
// memory, checkpoints, and the database owned by one process.
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
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

// Group commit: holds the writer inside a first credential write until
// every one of `writes`, each on its own thread, is queued behind it, then
// lets it finish; returns once all are done.
void WithWritesQueuedBehindASlowOne(Store& store,
                                    std::vector<std::function<void()>> writes) {
  absl::Notification inside, release;
  std::thread first([&] {
    auto slow = [&](int64_t version)
        -> absl::StatusOr<std::pair<std::string, std::string>> {
      inside.Notify();
      release.WaitForNotification();
      return std::make_pair(SealedFor("aws", "first", version),
                            std::string("fp"));
    };
    EXPECT_TRUE(
        store.PutCredential("aws", "first", absl::ZeroDuration(), slow).ok());
  });
  inside.WaitForNotification();
  std::vector<std::thread> threads;
  for (std::function<void()>& write : writes)
    threads.emplace_back([&write] { write(); });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (store.GetWriteStats().queued < static_cast<int64_t>(writes.size()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(store.GetWriteStats().queued, static_cast<int64_t>(writes.size()));
  release.Notify();
  first.join();
  for (std::thread& t : threads) t.join();
}

void ExpectOneAuditChain(Store& store, size_t events) {
  AuditQuery query;
  query.limit = 1000;
  absl::StatusOr<std::vector<AuditRecord>> audit = store.ListAudit(query);
  ASSERT_TRUE(audit.ok()) << audit.status();
  ASSERT_EQ(audit->size(), events);
  std::string prev;
  for (size_t i = 0; i < audit->size(); ++i) {
    EXPECT_EQ((*audit)[i].sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*audit)[i].prev_hash, prev);
    EXPECT_EQ((*audit)[i].hash, ChainHash((*audit)[i]));
    prev = (*audit)[i].hash;
  }
}

TEST_F(SqliteStoreTest, WritesQueuedDuringACommitShareTheNextOne) {
  const Store::WriteStats before = store_->GetWriteStats();
  std::atomic<int> failures{0};
  std::vector<std::function<void()>> writes;
  for (int i = 0; i < 4; ++i) {
    writes.push_back([&, i] {
      const std::string profile = absl::StrCat("q", i);
      auto audit_of = [](const CredentialRecord& r) {
        AuditRecord e = Event("credential.put");
        e.profile = r.profile;
        return e;
      };
      if (!store_
               ->PutCredential("aws", profile, absl::ZeroDuration(),
                               FakeSeal("aws", profile), audit_of, ChainHash)
               .ok()) {
        ++failures;
      }
    });
  }
  writes.push_back([&] {
    FlowWrite write;
    write.grants = {Grant("g-queued", absl::FromUnixSeconds(1700000000),
                          absl::InfiniteFuture())};
    write.audit = {Event("grant.created")};
    if (!store_->WriteFlow(write, ChainHash).ok()) ++failures;
  });
  writes.push_back([&] {
    if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) ++failures;
  });
  WithWritesQueuedBehindASlowOne(*store_, std::move(writes));
  EXPECT_EQ(failures.load(), 0);

  const Store::WriteStats after = store_->GetWriteStats();
  EXPECT_EQ(after.writes - before.writes, 7);
  // The first alone, then the six queued behind it in one transaction.
  EXPECT_EQ(after.transactions - before.transactions, 2);
  EXPECT_EQ(after.batches_redone - before.batches_redone, 0);
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("q", i), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->sealed, SealedFor("aws", absl::StrCat("q", i), 1));
  }
  EXPECT_TRUE(store_->GetGrant("g-queued").ok());
  ExpectOneAuditChain(*store_, 6);
  // And all of it was committed: a fresh connection sees it.
  Reopen();
  EXPECT_TRUE(store_->GetCredential("aws", "q3", 0).ok());
  ExpectOneAuditChain(*store_, 6);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_F(SqliteStoreTest, TheChangeMarkMovesWithEveryCommit) {
  Put("aws", "default");
  std::optional<Store::ChangeMark> before = store_->CurrentChangeMark();
  ASSERT_TRUE(before.has_value());
  // Reads commit nothing.
  ASSERT_TRUE(store_->GetCredential("aws", "default", 0).ok());
  ASSERT_TRUE(store_->ListCredentials({}).ok());
  EXPECT_EQ(store_->CurrentChangeMark(), before);

  auto moved = [&](const char* what) {
    std::optional<Store::ChangeMark> now = store_->CurrentChangeMark();
    ASSERT_TRUE(now.has_value()) << what;
    EXPECT_NE(*now, *before) << what;
    before = now;
  };
  Put("aws", "default");
  moved("a new version");
  ASSERT_TRUE(store_->PutMeta("k", "v").ok());
  moved("a metadata value");
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  moved("a deletion");
}

// What another process gets from the database file while the store has it
// open: the sqlite3 shell's exit code and output for a count of the rows.
std::pair<int, std::string> CountInAnotherProcess(const std::string& path) {
  int out[2];
  if (pipe(out) != 0) return {-1, "pipe"};
  pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    execl("/usr/bin/sqlite3", "sqlite3", "-readonly", path.c_str(),
          "SELECT count(*) FROM credentials;", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0)
    text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

TEST_F(SqliteStoreTest, NoOtherProcessCanReadOrWriteTheOpenDatabase) {
  Put("aws", "default");
  // Locked for as long as the store is open, so nothing but the store's
  // own commits changes what it holds in memory.
  std::pair<int, std::string> open = CountInAnotherProcess(path_);
  EXPECT_NE(open.first, 0) << open.second;
  EXPECT_THAT(open.second, HasSubstr("locked"));
  store_.reset();
  std::pair<int, std::string> closed = CountInAnotherProcess(path_);
  EXPECT_EQ(closed.first, 0) << closed.second;
  EXPECT_EQ(closed.second, "1\n");
  Reopen();
  EXPECT_THAT(CountInAnotherProcess(path_).second, HasSubstr("locked"));
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 1);
}

// Every field of two records.
void ExpectSameRecord(const CredentialRecord& got,
                      const CredentialRecord& want) {
  EXPECT_EQ(got.provider, want.provider);
  EXPECT_EQ(got.profile, want.profile);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.sealed, want.sealed);
  EXPECT_EQ(got.fingerprint, want.fingerprint);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.first_created_at, want.first_created_at);
  EXPECT_EQ(got.rotation_period, want.rotation_period);
  EXPECT_EQ(got.version_count, want.version_count);
}

TEST_F(SqliteStoreTest, LatestVersionsWrittenOrReadAreAnsweredFromMemory) {
  Put("aws", "default");
  const CredentialRecord second = Put("aws", "default", absl::Hours(48));
  Store::ReadStats before = store_->GetReadStats();
  absl::StatusOr<CredentialRecord> got =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  Store::ReadStats after = store_->GetReadStats();
  EXPECT_EQ(after.latest_from_memory, before.latest_from_memory + 1);
  EXPECT_EQ(after.latest_from_database, before.latest_from_database);
  EXPECT_EQ(after.latest_kept, 1);
  // An older version is read from the database, and counts as neither.
  EXPECT_EQ(store_->GetCredential("aws", "default", 1)->version, 1);
  EXPECT_EQ(store_->GetReadStats().latest_from_database,
            after.latest_from_database);

  // What was kept from the write is what the database holds.
  Reopen();
  EXPECT_EQ(store_->GetReadStats().latest_kept, 0);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  EXPECT_EQ(store_->GetReadStats().latest_from_database, 1);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, second);
  EXPECT_EQ(store_->GetReadStats().latest_from_memory, 1);
  // A profile that is not stored is looked for each time, and not kept.
  EXPECT_EQ(store_->GetCredential("aws", "none", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCredential("aws", "none", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetReadStats().latest_from_database, 3);
  EXPECT_EQ(store_->GetReadStats().latest_kept, 1);

  // A deletion and a new first version.
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  EXPECT_EQ(store_->GetCredential("aws", "default", 0).status().code(),
            absl::StatusCode::kNotFound);
  const CredentialRecord again = Put("aws", "default");
  EXPECT_EQ(again.version, 1);
  got = store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, again);
}

// The index is the broker's one cache of credential facts: each kind of
// commit keeps it current, and those that change no credential row (an
// approval's flow write, a metadata value such as a default profile) leave
// its entries answering from memory.
TEST_F(SqliteStoreTest, EveryKindOfCommitKeepsTheIndexCurrent) {
  Put("aws", "default");
  Put("aws", "other");
  auto from_memory = [&](const char* profile, int64_t version,
                         const char* what) {
    const Store::ReadStats before = store_->GetReadStats();
    absl::StatusOr<CredentialRecord> got =
        store_->GetCredential("aws", profile, 0);
    ASSERT_TRUE(got.ok()) << what << ": " << got.status();
    EXPECT_EQ(got->version, version) << what;
    EXPECT_EQ(got->sealed, SealedFor("aws", profile, version)) << what;
    EXPECT_EQ(store_->GetReadStats().latest_from_memory,
              before.latest_from_memory + 1)
        << what;
  };
  from_memory("default", 1, "a new version");
  ASSERT_TRUE(store_->PutMeta("default_profile/aws", "other").ok());
  from_memory("default", 1, "after a metadata value");
  FlowWrite flow;
  AuditRecord event;
  event.kind = "request.approved";
  flow.audit.push_back(event);
  ASSERT_TRUE(store_->WriteFlow(flow, ChainHash).ok());
  from_memory("default", 1, "after a flow write");
  Put("aws", "default");
  from_memory("default", 2, "a newer version");
  from_memory("other", 1, "another profile's entry");
  ASSERT_TRUE(store_->DeleteCredential("aws", "default").ok());
  EXPECT_TRUE(
      absl::IsNotFound(store_->GetCredential("aws", "default", 0).status()));
  from_memory("other", 1, "after another profile's deletion");
}

TEST_F(SqliteStoreTest, AWriteRolledBackLeavesTheKeptVersion) {
  const CredentialRecord first = Put("aws", "default");
  auto failing =
      [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
    return absl::InternalError("sealer exploded");
  };
  auto audit_of = [](const CredentialRecord&) { return AuditRecord(); };
  // Refused before its row is written, and after (its audit event has no
  // hash function, so the whole transaction is rolled back).
  EXPECT_FALSE(
      store_->PutCredential("aws", "default", absl::ZeroDuration(), failing)
          .ok());
  EXPECT_FALSE(store_
                   ->PutCredential("aws", "default", absl::ZeroDuration(),
                                   FakeSeal("aws", "default"), audit_of,
                                   nullptr)
                   .ok());
  const Store::ReadStats before = store_->GetReadStats();
  absl::StatusOr<CredentialRecord> got =
      store_->GetCredential("aws", "default", 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRecord(*got, first);
  EXPECT_EQ(store_->GetReadStats().latest_from_memory,
            before.latest_from_memory + 1);
  EXPECT_EQ(Put("aws", "default").version, 2);
  EXPECT_EQ(store_->GetCredential("aws", "default", 0)->version, 2);
}

TEST_F(SqliteStoreTest,
       LatestReadsRacingWritesNeverAnswerOlderThanAcknowledged) {
  // Two profiles written in turn by one thread; readers check each answer
  // against the last version acknowledged before their read began, and that
  // the record is the one stored for that version. A third profile is
  // written now and then, a commit that changes neither.
  std::atomic<int64_t> acknowledged[2] = {{0}, {0}};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  const std::string profiles[2] = {"a", "b"};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      while (!done.load()) {
        const int i = t % 2;
        const int64_t floor = acknowledged[i].load();
        absl::StatusOr<CredentialRecord> r =
            store_->GetCredential("aws", profiles[i], 0);
        if (floor == 0 && absl::IsNotFound(r.status())) continue;
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_GE(r->version, floor);
        ASSERT_EQ(r->sealed, SealedFor("aws", profiles[i], r->version));
        ASSERT_EQ(r->version_count, r->version);
        ++reads;
      }
    });
  }
  for (int n = 1; n <= 150; ++n) {
    for (int i = 0; i < 2; ++i) {
      const CredentialRecord r = Put("aws", profiles[i]);
      ASSERT_EQ(r.version, n);
      acknowledged[i].store(n);
    }
    if (n % 10 == 0) {
      ASSERT_TRUE(store_
                      ->PutCredential("gcp", "x", absl::ZeroDuration(),
                                      FakeSeal("gcp", "x"))
                      .ok());
    }
  }
  done.store(true);
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(store_->GetReadStats().latest_from_memory, 0);
}

TEST_F(SqliteStoreTest, CheckpointsDoNotEmptyTheKeptVersions) {
  // Enough versions of 50 profiles for background checkpoints (see
  // TheLogIsCheckpointedInTheBackgroundAndStaysBounded): another connection,
  // but no commit.
  for (int i = 0; i < 1500; ++i) Put("aws", absl::StrCat("c", i % 50));
  EXPECT_GE(store_->GetWriteStats().checkpoints, 1);
  const Store::ReadStats before = store_->GetReadStats();
  for (int p = 0; p < 50; ++p) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("c", p), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 30);
  }
  EXPECT_EQ(store_->GetReadStats().latest_from_memory,
            before.latest_from_memory + 50);
  EXPECT_EQ(store_->GetReadStats().latest_kept, 50);
}

TEST_F(SqliteStoreTest, TheLogIsCheckpointedInTheBackgroundAndStaysBounded) {
  // 2,500 versions write several times SQLite's checkpoint threshold
  // (1,000 pages) to the log.
  const std::string wal = path_ + "-wal";
  int64_t largest = 0;
  for (int i = 0; i < 2500; ++i) {
    Put("aws", absl::StrCat("c", i % 50));
    struct stat st;
    if (stat(wal.c_str(), &st) == 0)
      largest = std::max<int64_t>(largest, st.st_size);
  }
  EXPECT_GE(store_->GetWriteStats().checkpoints, 1);
  // Never checkpointed, the log would hold every page written; the bound is
  // where the writer checkpoints itself (4,000 pages of 4 KiB plus a
  // 24-byte frame header), and a commit's worth above it.
  EXPECT_LT(largest, 4100 * (4096 + 24));
  Reopen();
  for (int p = 0; p < 50; ++p) {
    absl::StatusOr<CredentialRecord> r =
        store_->GetCredential("aws", absl::StrCat("c", p), 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 50);
  }
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_F(SqliteStoreTest, AWriteThatFailsInASharedCommitFailsAlone) {
  const Store::WriteStats before = store_->GetWriteStats();
  std::atomic<int> failures{0};
  absl::Status failed;
  std::vector<std::function<void()>> writes;
  for (int i = 0; i < 3; ++i) {
    writes.push_back([&, i] {
      const std::string profile = absl::StrCat("ok", i);
      if (!store_
               ->PutCredential("aws", profile, absl::ZeroDuration(),
                               FakeSeal("aws", profile))
               .ok()) {
        ++failures;
      }
    });
  }
  writes.push_back([&] {
    auto exploding =
        [](int64_t) -> absl::StatusOr<std::pair<std::string, std::string>> {
      return absl::InternalError("sealer exploded");
    };
    failed =
        store_->PutCredential("aws", "bad", absl::ZeroDuration(), exploding)
            .status();
  });
  writes.push_back([&] {
    if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) ++failures;
  });
  WithWritesQueuedBehindASlowOne(*store_, std::move(writes));

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.message(), "sealer exploded");
  EXPECT_EQ(store_->GetCredential("aws", "bad", 0).status().code(),
            absl::StatusCode::kNotFound);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(store_->GetCredential("aws", absl::StrCat("ok", i), 0).ok());
  }
  ExpectOneAuditChain(*store_, 1);
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  // The five queued writes were one batch, rolled back for the failing
  // one, and the four others committed alone.
  const Store::WriteStats after = store_->GetWriteStats();
  EXPECT_EQ(after.batches_redone - before.batches_redone, 1);
  EXPECT_EQ(after.transactions - before.transactions, 1 + 4);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
