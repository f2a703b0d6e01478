// SqliteStore: the Store on one SQLite file (sqlite_store.h). Internal to
// broker/store; others open it through OpenSqliteStore. Thread-safe.
//
// Its definitions are split by subsystem: sqlite_store.cc (open, reads,
// metadata, statistics), sqlite_schema.cc (pragmas and migrations),
// sqlite_writer.cc (group commit, the disk space reserve) and
// sqlite_writes.cc (what each write does inside its transaction).
#ifndef CREDBROKER_BROKER_STORE_SQLITE_STORE_IMPL_H_
#define CREDBROKER_BROKER_STORE_SQLITE_STORE_IMPL_H_

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"
#include "broker/store/latest_index.h"
#include "broker/store/sqlite_checkpointer.h"
#include "broker/store/sqlite_readers.h"
#include "broker/store/sqlite_statement.h"
#include "broker/store/store.h"

namespace credbroker {
namespace sqlite_internal {

class SqliteStore : public Store {
 public:
  SqliteStore(std::string path, sqlite3* db, std::function<absl::Time()> clock)
      : path_(std::move(path)), clock_(std::move(clock)), db_(db) {}
  ~SqliteStore() override;

  // Pragmas and migrations; called once before the store is shared.
  absl::Status Initialize();
  // Opens the read connections, once the schema is current. Without them
  // (they could not be opened) every read uses the writer's connection.
  void OpenReaders();
  // Moves checkpoints off the commit path (Checkpointer), once the schema
  // is current. Without it SQLite checkpoints inside commits, as before.
  void StartCheckpointer();

  absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override;
  absl::StatusOr<CredentialRecord> GetCredential(absl::string_view provider,
                                                 absl::string_view profile,
                                                 int64_t version) override;
  absl::StatusOr<std::vector<CredentialRecord>> ListCredentials(
      const ListCredentialsOptions& options) override;
  absl::StatusOr<std::vector<CredentialRecord>> ListVersions(
      absl::string_view provider, absl::string_view profile) override;
  absl::StatusOr<int64_t> DeleteCredential(
      absl::string_view provider, absl::string_view profile,
      const DeleteAuditFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) override;

  absl::StatusOr<std::string> GetMeta(absl::string_view key) override;
  absl::Status PutMeta(absl::string_view key, absl::string_view value) override;

  // Counted by IndexCommitLocked, after the index is brought up to date.
  std::optional<ChangeMark> CurrentChangeMark() override {
    return commits_.load(std::memory_order_acquire);
  }

  absl::Status CheckIntegrity() override;
  ReadStats GetReadStats() override;
  WriteStats GetWriteStats() override;

  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) override;
  absl::Status ReserveSpace(int64_t bytes) override;

  absl::Status WriteFlow(const FlowWrite& write,
                         const AuditHashFn& hash_fn) override;
  absl::StatusOr<std::vector<RequestRecord>> ListRequests(
      bool open_only) override;
  absl::StatusOr<RequestRecord> GetRequest(
      absl::string_view request_id) override;
  absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options) override;
  absl::StatusOr<GrantRecord> GetGrant(absl::string_view grant_id) override;
  absl::StatusOr<std::vector<StandingRecord>> ListStanding() override;
  absl::StatusOr<BindingRecord> GetBinding(absl::string_view provider,
                                           absl::string_view resource) override;
  absl::StatusOr<std::vector<BindingRecord>> ListBindings(
      absl::string_view provider) override;

 private:
  // Group commit. Every credential (new version, deletion), audit and
  // approval-flow write goes through Commit. A write that finds no other
  // being committed commits alone; writes that arrive meanwhile queue, and
  // the next of them to run commits all that are queued (up to kMaxBatch)
  // in one transaction: one sync of the log for all of them instead of one
  // each. A write returns only once the transaction holding it is durable.
  // When any write in a batch fails, or the batch's commit does, the batch
  // is rolled back and each write is redone alone, so every write gets its
  // own outcome (and disk-full handling) exactly as without batching.
  struct QueuedWrite {
    absl::string_view what;  // For error messages.
    bool retry_when_full;    // Release the disk reserve and retry on ENOSPC.
    // Runs under mu_, in a transaction.
    const std::function<absl::Status()>* body;
    absl::Status result;
    bool finished = false;  // `result` is final (set under mu_ by the leader).
    bool done = false;      // The leader is through with it (under queue_mu_).
    // Handed the next commit by the leader (under queue_mu_).
    bool lead = false;
  };
  static constexpr size_t kMaxBatch = 64;

  absl::Status Commit(absl::string_view what, bool retry_when_full,
                      const std::function<absl::Status()>& body)
      ABSL_LOCKS_EXCLUDED(mu_, queue_mu_);

  // Commit for a write with a result: `locked` runs under mu_ inside the
  // transaction (perhaps more than once, see Commit); its value is returned
  // once the transaction holding it is durable.
  template <typename T, typename Fn>
  absl::StatusOr<T> CommitValue(absl::string_view what, bool retry_when_full,
                                Fn locked) ABSL_LOCKS_EXCLUDED(mu_, queue_mu_) {
    absl::StatusOr<T> value =
        absl::UnknownError(absl::StrCat("could not ", what));
    CB_RETURN_IF_ERROR(Commit(what, retry_when_full, [&]() -> absl::Status {
      value = locked();
      return value.status();
    }));
    return value;
  }

  void CommitBatchLocked(const std::vector<QueuedWrite*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CommitAloneLocked(const QueuedWrite& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // COMMIT of the transaction under way, then the latest-version index
  // brought up to date with what it changed (IndexCommitLocked).
  absl::Status CommitLocked(absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexCommitLocked(bool committed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Rollback() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string ReservePath() const { return path_ + ".reserve"; }
  bool ReleaseReserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RestoreReserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs `step` on `sql` prepared on a read connection (AcquireReader), or
  // on the writer's connection when there is none.
  template <typename T, typename Step>
  absl::StatusOr<T> Read(const char* sql, const Step& step)
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (ReaderLease reader = AcquireReader(readers_); reader) {
      CB_ASSIGN_OR_RETURN(Statement s, reader->Prepare(sql));
      return step(s);
    }
    absl::MutexLock lock(&mu_);
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(sql));
    return step(s);
  }

  std::string OpenContext(absl::string_view what) const {
    return absl::StrCat("open ", path_, " (", what, ")");
  }

  // A cached prepared statement for `sql` (a string with static lifetime,
  // which is also the cache key).
  absl::StatusOr<Statement> Prepare(const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return PrepareCached(db_, statements_, sql);
  }

  absl::Status Exec(const char* sql, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(rc, db_, what);
    return absl::OkStatus();
  }

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int> UserVersion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status PutMetaLocked(absl::string_view key, absl::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CredentialRecord> PutLocked(absl::string_view provider,
                                             absl::string_view profile,
                                             absl::Duration rotation_period,
                                             const SealFn& seal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteVersionLocked(const CredentialRecord& record,
                                  bool profile_exists)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> DeleteLocked(absl::string_view provider,
                                       absl::string_view profile)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<AuditRecord> AppendAuditLocked(AuditRecord event,
                                                const AuditHashFn& hash_fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteFlowLocked(const FlowWrite& write,
                               const AuditHashFn& hash_fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  // Stamps new versions; immutable after construction.
  const std::function<absl::Time()> clock_;
  // Guards the connection and everything done through it: one statement or
  // transaction at a time.
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_GUARDED_BY(mu_);
  // Prepared statements keyed by their (static) SQL text.
  StatementCache statements_ ABSL_GUARDED_BY(mu_);
  int64_t reserve_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The reserve file is not there (released on a full disk, or not yet
  // made). Changed only under mu_; atomic so that PutCredential can look
  // before it queues without taking mu_.
  std::atomic<bool> reserve_released_{false};
  // GetWriteStats; read without taking mu_ (a test watches the queue while
  // a write holds the connection).
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> batches_redone_{0};
  // The latest version of each profile read or written (GetCredential), the
  // changes the transaction under way made to it, and the count of commits
  // (CurrentChangeMark, IndexCommitLocked).
  LatestIndex latest_;
  std::vector<LatestIndex::Change> changes_ ABSL_GUARDED_BY(mu_);
  std::atomic<ChangeMark> commits_{0};
  // GetReadStats.
  std::atomic<int64_t> latest_from_memory_{0};
  std::atomic<int64_t> latest_from_database_{0};
  // Set once by OpenReaders before the store is shared; each has its own
  // lock (ReaderLease).
  std::vector<std::unique_ptr<ReadConnection>> readers_;
  // Set once by StartCheckpointer before the store is shared.
  std::unique_ptr<Checkpointer> checkpointer_;
  // Group commit (Commit): writes waiting for the next transaction, and
  // whether one is being committed. Taken before mu_, never inside it.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<QueuedWrite*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool committing_ ABSL_GUARDED_BY(queue_mu_) = false;
};

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_STORE_IMPL_H_
