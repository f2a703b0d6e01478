// The store's writes: each public write is queued for a group commit
// (sqlite_writer.cc), and its *Locked body is what it does inside the
// transaction.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"
#include "broker/store/latest_index.h"
#include "broker/store/sqlite_rows.h"
#include "broker/store/sqlite_statement.h"
#include "broker/store/sqlite_store_impl.h"

namespace credbroker {
namespace sqlite_internal {
namespace {

// Writes `r` through kUpsertRequestSql, prepared as `s`.
absl::Status UpsertRequest(Statement& s, const RequestRecord& r) {
  std::vector<absl::string_view> context;
  context.reserve(2 * r.context.size());
  for (const auto& [key, value] : r.context) {
    context.push_back(key);
    context.push_back(value);
  }
  std::vector<absl::string_view> missing(r.missing_fields.begin(),
                                         r.missing_fields.end());
  s.Bind(1, r.request_id)
      .Bind(2, r.session_key)
      .Bind(3, r.need_id)
      .Bind(4, r.provider)
      .Bind(5, r.profile)
      .Bind(6, r.action)
      .BindBlob(7, EncodeStrings(context))
      .Bind(8, DurationToMicros(r.requested_ttl))
      .Bind(9, r.agent_peer)
      .Bind(10, int64_t{r.state})
      .BindBlob(11, EncodeStrings(missing))
      .Bind(12, TimeToMicros(r.created_at))
      .Bind(13, TimeToMicros(r.expires_at))
      .Bind(14, TimeToMicros(r.decided_at))
      .Bind(15, r.decision)
      .Bind(16, r.grant_id)
      .Bind(17, r.binding_note)
      .Bind(18, r.mac);
  return s.Run("write request");
}

// Writes `g` through kUpsertGrantSql, prepared as `s`.
absl::Status UpsertGrant(Statement& s, const GrantRecord& g) {
  s.Bind(1, g.grant_id)
      .Bind(2, g.request_id)
      .Bind(3, g.session_key)
      .Bind(4, g.provider)
      .Bind(5, g.profile)
      .Bind(6, g.action)
      .Bind(7, g.credential_version)
      .Bind(8, int64_t{g.scope})
      .Bind(9, TimeToMicros(g.created_at))
      .Bind(10, TimeToMicros(g.expires_at))
      .Bind(11, TimeToMicros(g.ended_at))
      .Bind(12, g.end_reason)
      .Bind(13, g.mac);
  return s.Run("write grant");
}

// Writes `r` through kUpsertStandingSql, prepared as `s`.
absl::Status UpsertStanding(Statement& s, const StandingRecord& r) {
  s.Bind(1, r.id)
      .Bind(2, r.provider)
      .Bind(3, r.profile)
      .Bind(4, r.action_pattern)
      .Bind(5, TimeToMicros(r.created_at))
      .Bind(6, TimeToMicros(r.expires_at))
      .Bind(7, int64_t{r.revoked ? 1 : 0})
      .Bind(8, r.mac);
  return s.Run("write standing approval");
}

// Writes `b` through kUpsertBindingSql, prepared as `s`.
absl::Status UpsertBinding(Statement& s, const BindingRecord& b) {
  s.Bind(1, b.provider)
      .Bind(2, b.resource)
      .Bind(3, b.profile)
      .Bind(4, b.fingerprint)
      .Bind(5, b.credential_version)
      .Bind(6, b.grant_id)
      .Bind(7, TimeToMicros(b.created_at))
      .Bind(8, TimeToMicros(b.updated_at));
  return s.Run("write resource binding");
}

}  // namespace

absl::StatusOr<CredentialRecord> SqliteStore::PutCredential(
    absl::string_view provider, absl::string_view profile,
    absl::Duration rotation_period, const SealFn& seal,
    const AuditOfFn& audit_of, const AuditHashFn& hash_fn) {
  CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
  if (rotation_period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("rotation period must not be negative");
  }
  if (reserve_released_) {
    // Refused before it joins a batch: on a full disk a refusal inside a
    // batch would send every write of it back to commit alone.
    absl::MutexLock lock(&mu_);
    CB_RETURN_IF_ERROR(RestoreReserve());
  }
  return CommitValue<CredentialRecord>(
      "store credential", /*retry_when_full=*/false,
      [&]() -> absl::StatusOr<CredentialRecord> {
        mu_.AssertHeld();
        CB_RETURN_IF_ERROR(RestoreReserve());
        CB_ASSIGN_OR_RETURN(
            CredentialRecord record,
            PutLocked(provider, profile, rotation_period, seal));
        if (audit_of) {
          CB_RETURN_IF_ERROR(
              AppendAuditLocked(audit_of(record), hash_fn).status());
        }
        return record;
      });
}

absl::StatusOr<int64_t> SqliteStore::DeleteCredential(
    absl::string_view provider, absl::string_view profile,
    const DeleteAuditFn& audit_of, const AuditHashFn& hash_fn) {
  CB_RETURN_IF_ERROR(ValidateIdentity(provider, profile));
  return CommitValue<int64_t>(
      "delete credential", /*retry_when_full=*/false,
      [&]() -> absl::StatusOr<int64_t> {
        mu_.AssertHeld();
        CB_ASSIGN_OR_RETURN(int64_t removed, DeleteLocked(provider, profile));
        if (audit_of) {
          CB_RETURN_IF_ERROR(
              AppendAuditLocked(audit_of(removed), hash_fn).status());
        }
        return removed;
      });
}

absl::StatusOr<AuditRecord> SqliteStore::AppendAudit(
    AuditRecord event, const AuditHashFn& hash_fn) {
  return CommitValue<AuditRecord>("append audit event",
                                  /*retry_when_full=*/true,
                                  [&]() -> absl::StatusOr<AuditRecord> {
                                    mu_.AssertHeld();
                                    return AppendAuditLocked(event, hash_fn);
                                  });
}

absl::Status SqliteStore::WriteFlow(const FlowWrite& write,
                                    const AuditHashFn& hash_fn) {
  CB_RETURN_IF_ERROR(ValidateFlowWrite(write, hash_fn));
  const bool new_version = write.credential.has_value();
  if (new_version) {
    CB_RETURN_IF_ERROR(ValidateIdentity(write.credential->provider,
                                        write.credential->profile));
    if (reserve_released_) {
      // As PutCredential: a new version never takes the reserve.
      absl::MutexLock lock(&mu_);
      CB_RETURN_IF_ERROR(RestoreReserve());
    }
  }
  auto body = [&]() -> absl::Status {
    mu_.AssertHeld();
    if (new_version) CB_RETURN_IF_ERROR(RestoreReserve());
    return WriteFlowLocked(write, hash_fn);
  };
  return Commit("write approval flow", /*retry_when_full=*/!new_version, body);
}

absl::StatusOr<CredentialRecord> SqliteStore::PutLocked(
    absl::string_view provider, absl::string_view profile,
    absl::Duration rotation_period, const SealFn& seal) {
  CredentialRecord record;
  record.provider = std::string(provider);
  record.profile = std::string(profile);
  record.rotation_period = absl::Seconds(
      absl::ToInt64Seconds(rotation_period));  // Stored in whole seconds.
  record.created_at = FromMicros(absl::ToUnixMicros(clock_()));
  bool exists = false;
  {
    CB_ASSIGN_OR_RETURN(
        Statement s,
        Prepare("SELECT latest_version, version_count, first_created_at"
                " FROM credential_profiles"
                " WHERE provider = ?1 AND profile = ?2"));
    s.Bind(1, provider).Bind(2, profile);
    CB_ASSIGN_OR_RETURN(exists, s.Step("store credential"));
    if (exists) {
      record.version = s.Int(0) + 1;
      record.version_count = s.Int(1) + 1;
      record.first_created_at = FromMicros(s.Int(2));
    } else {
      record.version = 1;
      record.version_count = 1;
      record.first_created_at = record.created_at;
    }
  }

  absl::StatusOr<std::pair<std::string, std::string>> sealed =
      seal(record.version);
  if (!sealed.ok()) return sealed.status();
  record.sealed = std::move(sealed->first);
  record.fingerprint = std::move(sealed->second);

  CB_RETURN_IF_ERROR(WriteVersionLocked(record, exists));
  changes_.push_back({LatestIndex::Key(provider, profile), record});
  return record;
}

// The rows of PutLocked's new version `record`: its profile's row, moved on
// to it (or made, when !profile_exists), and the version's own row.
absl::Status SqliteStore::WriteVersionLocked(const CredentialRecord& record,
                                             bool profile_exists) {
  if (profile_exists) {
    CB_ASSIGN_OR_RETURN(Statement s,
                        Prepare("UPDATE credential_profiles"
                                " SET latest_version = ?3, version_count = ?4"
                                " WHERE provider = ?1 AND profile = ?2"));
    s.Bind(1, record.provider)
        .Bind(2, record.profile)
        .Bind(3, record.version)
        .Bind(4, record.version_count);
    CB_RETURN_IF_ERROR(s.Run("store credential"));
  } else {
    CB_ASSIGN_OR_RETURN(
        Statement s,
        Prepare("INSERT INTO credential_profiles (provider, profile,"
                " latest_version, version_count, first_created_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5)"));
    s.Bind(1, record.provider)
        .Bind(2, record.profile)
        .Bind(3, record.version)
        .Bind(4, record.version_count)
        .Bind(5, absl::ToUnixMicros(record.first_created_at));
    CB_RETURN_IF_ERROR(s.Run("store credential"));
  }
  CB_ASSIGN_OR_RETURN(
      Statement s,
      Prepare("INSERT INTO credentials (provider, profile, version,"
              " sealed, fingerprint, created_at, rotation_period_s)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  s.Bind(1, record.provider)
      .Bind(2, record.profile)
      .Bind(3, record.version)
      .BindBlob(4, record.sealed)
      .Bind(5, record.fingerprint)
      .Bind(6, absl::ToUnixMicros(record.created_at))
      .Bind(7, absl::ToInt64Seconds(record.rotation_period));
  return s.Run("store credential");
}

absl::StatusOr<int64_t> SqliteStore::DeleteLocked(absl::string_view provider,
                                                  absl::string_view profile) {
  int64_t count = 0;
  {
    CB_ASSIGN_OR_RETURN(Statement s,
                        Prepare("DELETE FROM credentials"
                                " WHERE provider = ?1 AND profile = ?2"));
    s.Bind(1, provider).Bind(2, profile);
    CB_RETURN_IF_ERROR(s.Run("delete credential"));
    count = sqlite3_changes64(db_);
  }
  {
    CB_ASSIGN_OR_RETURN(Statement s,
                        Prepare("DELETE FROM credential_profiles"
                                " WHERE provider = ?1 AND profile = ?2"));
    s.Bind(1, provider).Bind(2, profile);
    CB_RETURN_IF_ERROR(s.Run("delete credential"));
  }
  changes_.push_back({LatestIndex::Key(provider, profile), std::nullopt});
  if (count == 0) {
    return absl::NotFoundError(
        absl::StrCat("no credential stored for ", provider, "/", profile));
  }
  return count;
}

// Appends `event` at the end of the audit chain inside the caller's
// transaction: sets sequence (last + 1) and prev_hash (the last hash, ""
// for the first), then hash from `hash_fn`. AppendAudit and WriteFlow
// both chain through here.
absl::StatusOr<AuditRecord> SqliteStore::AppendAuditLocked(
    AuditRecord event, const AuditHashFn& hash_fn) {
  if (!hash_fn) {
    return absl::InvalidArgumentError("no audit hash function given");
  }
  {
    CB_ASSIGN_OR_RETURN(Statement last, Prepare(kLastAuditSql));
    CB_ASSIGN_OR_RETURN(bool row, last.Step("read audit chain"));
    event.sequence = row ? last.Int(0) + 1 : 1;
    event.prev_hash = row ? last.Text(1) : "";
  }
  event.hash = hash_fn(event);
  CB_ASSIGN_OR_RETURN(Statement s, Prepare(kInsertAuditSql));
  s.Bind(1, event.sequence)
      .Bind(2, absl::ToUnixMicros(event.time))
      .Bind(3, event.kind)
      .Bind(4, event.role)
      .Bind(5, event.peer)
      .Bind(6, event.provider)
      .Bind(7, event.profile)
      .Bind(8, event.request_id)
      .Bind(9, event.grant_id)
      .Bind(10, event.action)
      .Bind(11, event.outcome)
      .Bind(12, event.detail)
      .Bind(13, event.prev_hash)
      .Bind(14, event.hash);
  CB_RETURN_IF_ERROR(s.Run("append audit event"));
  return event;
}

// Every part of `write`, inside the caller's transaction.
absl::Status SqliteStore::WriteFlowLocked(const FlowWrite& write,
                                          const AuditHashFn& hash_fn) {
  if (write.credential.has_value()) {
    const CredentialRecord& c = *write.credential;
    CB_RETURN_IF_ERROR(
        PutLocked(c.provider, c.profile, c.rotation_period,
                  [&c](int64_t version)
                      -> absl::StatusOr<std::pair<std::string, std::string>> {
                    if (version != c.version) {
                      return absl::AbortedError(absl::StrCat(
                          c.provider, "/", c.profile, " changed meanwhile: ",
                          "version ", version, " is next, not ", c.version));
                    }
                    return std::make_pair(c.sealed, c.fingerprint);
                  })
            .status());
  }
  for (const RequestRecord& r : write.requests) {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertRequestSql));
    CB_RETURN_IF_ERROR(UpsertRequest(s, r));
  }
  for (const GrantRecord& g : write.grants) {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertGrantSql));
    CB_RETURN_IF_ERROR(UpsertGrant(s, g));
  }
  for (const StandingRecord& r : write.standing) {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertStandingSql));
    CB_RETURN_IF_ERROR(UpsertStanding(s, r));
  }
  for (const BindingRecord& b : write.bindings) {
    CB_ASSIGN_OR_RETURN(Statement s, Prepare(kUpsertBindingSql));
    CB_RETURN_IF_ERROR(UpsertBinding(s, b));
  }
  for (const auto& [key, value] : write.meta) {
    CB_RETURN_IF_ERROR(PutMetaLocked(key, value));
  }
  for (const AuditRecord& event : write.audit) {
    CB_RETURN_IF_ERROR(AppendAuditLocked(event, hash_fn).status());
  }
  return absl::OkStatus();
}

}  // namespace sqlite_internal
}  // namespace credbroker
