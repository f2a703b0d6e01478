// Store is the broker's persistent state: credential versions (sealed by the
// caller; the store never sees a plaintext secret), broker metadata (the
// wrapped data key), the audit log, and the approval flow's requests, grants
// and standing approvals. A Store is safe for concurrent use from
// multiple threads without external synchronization. A write returns OK only
// after it is durable.
#ifndef CREDBROKER_BROKER_STORE_STORE_H_
#define CREDBROKER_BROKER_STORE_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace credbroker {

// One stored version of one provider/profile credential.
struct CredentialRecord {
  std::string provider;
  std::string profile;
  int64_t version = 0;          // 1, 2, ... per provider/profile.
  std::string sealed;           // Opaque: sealed field values.
  std::string fingerprint;      // Of the values; shown in history.
  absl::Time created_at;        // When this version was stored.
  absl::Time first_created_at;  // When version 1 was stored (filled by reads).
  // Rotation period override for this profile; zero means the provider's.
  absl::Duration rotation_period = absl::ZeroDuration();
  int64_t version_count = 0;  // Filled by reads of the latest version.
};

struct ListCredentialsOptions {
  std::string provider;  // Empty: all.
  int limit = 100;
  // Resume after this provider/profile (exclusive), for paging.
  std::string after_provider;
  std::string after_profile;
};

// One audit event. The store assigns `sequence` and `prev_hash`; the caller's
// hash function fills `hash` from everything else.
struct AuditRecord {
  int64_t sequence = 0;
  absl::Time time;
  std::string kind;  // "credential.put", "call.refused", ...
  std::string role;  // "approver", "agent", "" for the broker.
  std::string peer;
  std::string provider;
  std::string profile;
  std::string request_id;
  std::string grant_id;
  std::string action;
  std::string outcome;  // "ok" or a status code name.
  std::string detail;   // Never a secret value.
  std::string prev_hash;
  std::string hash;
};

struct AuditQuery {
  absl::Time since = absl::InfinitePast();    // Inclusive.
  absl::Time until = absl::InfiniteFuture();  // Exclusive.
  std::string provider;                       // Empty: any.
  std::string kind;            // Empty: any; "credential." matches a prefix.
  int64_t after_sequence = 0;  // Paging cursor (exclusive).
  int limit = 100;
};

// An agent's need and what became of it (the approval flow's request).
// `state` and `scope` values are core's enums; the store keeps them opaque.
struct RequestRecord {
  std::string request_id;
  std::string session_key;  // The agent session the need came from.
  std::string need_id;      // Unique within the session.
  std::string provider;
  std::string profile;
  std::string action;
  std::vector<std::pair<std::string, std::string>> context;  // In order.
  absl::Duration requested_ttl = absl::ZeroDuration();
  std::string agent_peer;
  int state = 0;
  std::vector<std::string> missing_fields;
  absl::Time created_at;
  absl::Time expires_at;
  absl::Time decided_at = absl::InfinitePast();  // InfinitePast: undecided.
  std::string decision;  // "approved", "denied: <reason>", ...
  std::string grant_id;
  // What the approver is told about the resource binding the need's profile
  // came from (the bound profile was deleted or rotated); "" when nothing.
  std::string binding_note;
  // The core's MAC over every field above (see broker/core/row_mac.h);
  // kept as given.
  std::string mac;
};

// A release of one credential version to one agent session.
struct GrantRecord {
  std::string grant_id;
  std::string request_id;
  std::string session_key;
  std::string provider;
  std::string profile;
  std::string action;
  int64_t credential_version = 0;
  int scope = 0;
  absl::Time created_at;
  absl::Time expires_at;
  absl::Time ended_at = absl::InfiniteFuture();  // Released or revoked.
  std::string end_reason;  // "released", "revoked: <reason>".
  std::string mac;         // As RequestRecord::mac.
};

// A standing approval: needs for provider/profile whose action matches
// `action_pattern` are granted without asking until `expires_at`.
struct StandingRecord {
  std::string id;
  std::string provider;
  std::string profile;
  std::string action_pattern;
  absl::Time created_at;
  absl::Time expires_at;
  bool revoked = false;
  std::string mac;  // As RequestRecord::mac.
};

// A resource binding: the named resource (a cluster) of `provider` was
// created with `profile`'s credential, whose fingerprint and version are
// those of the grant that first acted on it (refreshed by later grants of
// the same profile).
struct BindingRecord {
  std::string provider;
  std::string resource;
  std::string profile;
  std::string fingerprint;
  int64_t credential_version = 0;
  std::string grant_id;  // The grant that last wrote the binding.
  absl::Time created_at;
  absl::Time updated_at;
};

// Writes that must land together or not at all: a decision, its grant, the
// standing rule it made, the resource binding it records, the credential
// version it stored, and their audit events (so that a release whose audit
// event cannot be written does not happen).
struct FlowWrite {
  // A new credential version, sealed by the caller for `version`
  // (provider, profile, version, sealed, fingerprint and rotation_period
  // are used). `version` must be the one the store assigns next (1 after a
  // delete): otherwise another write came first and WriteFlow fails with
  // ABORTED, writing nothing. Like PutCredential, it does not use the
  // disk reserve.
  std::optional<CredentialRecord> credential;
  std::vector<RequestRecord> requests;   // Upserted by request_id.
  std::vector<GrantRecord> grants;       // Upserted by grant_id.
  std::vector<StandingRecord> standing;  // Upserted by id.
  // Upserted by (provider, resource); an update keeps created_at.
  std::vector<BindingRecord> bindings;
  std::vector<AuditRecord> audit;  // Appended in order.
  // Broker metadata (as PutMeta), upserted by key.
  std::vector<std::pair<std::string, std::string>> meta;
};

struct ListGrantsOptions {
  bool include_ended = false;  // Also released, revoked and expired ones.
  absl::Time now;              // What "expired" is measured against.
  int limit = 100;
  // Resume after this (created_at, grant_id), exclusive; ordered by both.
  absl::Time after_created_at = absl::InfinitePast();
  std::string after_grant_id;
};

class Store {
 public:
  virtual ~Store() = default;

  // Stores a new version of provider/profile. `seal` is called inside the
  // write transaction with the version number being written (so the caller
  // can bind the ciphertext to it) and returns the sealed bytes and
  // fingerprint. Returns the stored record (version_count and
  // first_created_at filled). `seal` runs while the store is locked: it must
  // not call back into the store; when it fails nothing is written and its
  // status is returned. Writes are group-committed, so `seal`, `audit_of`
  // and `hash_fn` (here and in AppendAudit and WriteFlow) may run on
  // another caller's thread, and more than once (a write is redone alone
  // when another write of its batch fails): they must not depend on the
  // calling thread or have effects outside their result.
  //
  // `audit_of`, when set, gives the audit event of the stored record; it is
  // appended in the same transaction, chained as AppendAudit does (with
  // `hash_fn`), so that a credential change whose audit event cannot be
  // written is not stored either.
  using SealFn =
      std::function<absl::StatusOr<std::pair<std::string, std::string>>(
          int64_t version)>;
  using AuditHashFn = std::function<std::string(const AuditRecord&)>;
  using AuditOfFn = std::function<AuditRecord(const CredentialRecord&)>;
  virtual absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) = 0;

  // The latest version (version == 0) or a given one. NOT_FOUND otherwise.
  virtual absl::StatusOr<CredentialRecord> GetCredential(
      absl::string_view provider, absl::string_view profile,
      int64_t version) = 0;

  // Latest version of each provider/profile, ordered by provider, profile.
  virtual absl::StatusOr<std::vector<CredentialRecord>> ListCredentials(
      const ListCredentialsOptions& options) = 0;

  // Every version of provider/profile, oldest first (history).
  virtual absl::StatusOr<std::vector<CredentialRecord>> ListVersions(
      absl::string_view provider, absl::string_view profile) = 0;

  // Removes every version; returns how many. NOT_FOUND when there were none.
  // `audit_of`, when set, gives the audit event of a deletion of that many
  // versions, appended in the same transaction (as PutCredential's).
  using DeleteAuditFn = std::function<AuditRecord(int64_t removed)>;
  virtual absl::StatusOr<int64_t> DeleteCredential(
      absl::string_view provider, absl::string_view profile,
      const DeleteAuditFn& audit_of = nullptr,
      const AuditHashFn& hash_fn = nullptr) = 0;

  // Small broker metadata (wrapped data key, kdf params). NOT_FOUND if unset.
  virtual absl::StatusOr<std::string> GetMeta(absl::string_view key) = 0;
  virtual absl::Status PutMeta(absl::string_view key,
                               absl::string_view value) = 0;

  // Appends an audit event at the end of the chain. Inside the write
  // transaction the store sets `sequence` and `prev_hash` (the previous
  // event's hash, "" for the first) and calls `hash_fn` for `hash`. Durable
  // when OK, like every write.
  virtual absl::StatusOr<AuditRecord> AppendAudit(
      AuditRecord event, const AuditHashFn& hash_fn) = 0;

  // Events matching `query`, in sequence order.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) = 0;

  // Keeps `bytes` of disk space in reserve beside the store, so that when
  // the disk fills, approval flows and audit events can still be written
  // (WriteFlow and AppendAudit release the reserve and retry once) while
  // new credential versions are refused until space returns. 0 disables.
  // An error (the space is not there) leaves the store without a reserve.
  virtual absl::Status ReserveSpace(int64_t bytes) = 0;

  // Applies every part of `write` in one transaction (audit events chained as
  // AppendAudit does). On any error nothing is applied.
  virtual absl::Status WriteFlow(const FlowWrite& write,
                                 const AuditHashFn& hash_fn) = 0;

  // Requests, oldest first; `open_only`: those with no decision yet.
  virtual absl::StatusOr<std::vector<RequestRecord>> ListRequests(
      bool open_only) = 0;
  // NOT_FOUND when absent.
  virtual absl::StatusOr<RequestRecord> GetRequest(
      absl::string_view request_id) = 0;

  // Grants ordered by (created_at, grant_id). Without include_ended, only
  // those not ended and not expired at options.now.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options) = 0;
  // NOT_FOUND when absent.
  virtual absl::StatusOr<GrantRecord> GetGrant(absl::string_view grant_id) = 0;

  // Standing approvals, oldest first, revoked and expired ones included.
  virtual absl::StatusOr<std::vector<StandingRecord>> ListStanding() = 0;

  // The binding of `resource` for `provider`; NOT_FOUND when there is none.
  virtual absl::StatusOr<BindingRecord> GetBinding(
      absl::string_view provider, absl::string_view resource) = 0;
  // Bindings ordered by (provider, resource); `provider` empty: all.
  virtual absl::StatusOr<std::vector<BindingRecord>> ListBindings(
      absl::string_view provider) = 0;

  // PRAGMA integrity_check (or the equivalent): OK or DATA_LOSS.
  virtual absl::Status CheckIntegrity() = 0;

  // Committed write transactions and the writes (credential versions and
  // deletions, audit events, approval-flow writes) they carried: more writes
  // than transactions means concurrent writes shared a commit.
  // `batches_redone`: shared commits rolled back because one of their writes
  // failed, each write then redone alone. `queued`: writes waiting for the next
  // commit. `checkpoints`: write-ahead-log checkpoints done off the commit
  // path.
  struct WriteStats {
    int64_t transactions = 0;
    int64_t writes = 0;
    int64_t batches_redone = 0;
    int64_t queued = 0;
    int64_t checkpoints = 0;
  };
  virtual WriteStats GetWriteStats() { return {}; }

  // Reads of a latest version (GetCredential with version 0) answered from
  // the store's memory and from its database, and the profiles it keeps in
  // memory (one entry each at most).
  struct ReadStats {
    int64_t latest_from_memory = 0;
    int64_t latest_from_database = 0;
    int64_t latest_kept = 0;
  };
  virtual ReadStats GetReadStats() { return {}; }

  // A mark that changes whenever this store commits a transaction. The
  // store owns its database: while it is open no other process can change
  // it. So when the mark taken before a read equals the mark now, nothing
  // has been committed since, and what that read returned is still what is
  // stored. nullopt when the store cannot tell; the caller then reads.
  using ChangeMark = uint64_t;
  virtual std::optional<ChangeMark> CurrentChangeMark() { return std::nullopt; }
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_STORE_H_
