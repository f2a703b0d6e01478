#include "broker/store/sqlite_rows.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"

namespace credbroker {
namespace sqlite_internal {
namespace {

// DATA_LOSS: a stored `what` does not decode.
absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("the database holds a malformed ", what,
                   " (restore the data directory from a backup)"));
}

}  // namespace

// The columns ReadRecord() reads, in order, and the join they come from.
#define CB_SELECT_RECORD                                                    \
  "SELECT c.provider, c.profile, c.version, c.sealed, c.fingerprint,"       \
  " c.created_at, c.rotation_period_s, p.first_created_at, p.version_count" \
  " FROM credential_profiles p JOIN credentials c"                          \
  " ON c.provider = p.provider AND c.profile = p.profile"

const char kGetSql[] = CB_SELECT_RECORD
    " AND c.version = CASE WHEN ?3 = 0 THEN p.latest_version ELSE ?3 END"
    " WHERE p.provider = ?1 AND p.profile = ?2";
// Keyset paging on credential_profiles' primary key; each row joins to its
// latest version through the credentials primary key.
const char kListAllSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE (p.provider, p.profile) > (?2, ?3)"
    " ORDER BY p.provider, p.profile LIMIT ?4";
// One provider: an index range on (provider, profile) in both cases.
const char kListProviderSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE p.provider = ?1"
    " ORDER BY p.provider, p.profile LIMIT ?4";
const char kListProviderAfterSql[] = CB_SELECT_RECORD
    " AND c.version = p.latest_version"
    " WHERE p.provider = ?1 AND p.profile > ?3"
    " ORDER BY p.provider, p.profile LIMIT ?4";
const char kVersionsSql[] = CB_SELECT_RECORD
    " WHERE p.provider = ?1 AND p.profile = ?2 ORDER BY c.version";
#undef CB_SELECT_RECORD

const char kLastAuditSql[] =
    "SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1";
const char kInsertAuditSql[] =
    "INSERT INTO audit_events (sequence, time_us, kind, role, peer, provider,"
    " profile, request_id, grant_id, action, outcome, detail, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
const char kListAuditSql[] =
    "SELECT sequence, time_us, kind, role, peer, provider, profile, request_id,"
    " grant_id, action, outcome, detail, prev_hash, hash FROM audit_events"
    " WHERE sequence > ?1 AND time_us >= ?2 AND time_us < ?3"
    " AND (?4 = '' OR provider = ?4)"
    " AND (?5 = '' OR kind = ?5 OR (substr(?5, -1) = '.' AND"
    "      substr(kind, 1, length(?5)) = ?5))"
    " ORDER BY sequence LIMIT ?6";

AuditRecord ReadAudit(const Statement& s) {
  AuditRecord r;
  r.sequence = s.Int(0);
  r.time = FromMicros(s.Int(1));
  r.kind = s.Text(2);
  r.role = s.Text(3);
  r.peer = s.Text(4);
  r.provider = s.Text(5);
  r.profile = s.Text(6);
  r.request_id = s.Text(7);
  r.grant_id = s.Text(8);
  r.action = s.Text(9);
  r.outcome = s.Text(10);
  r.detail = s.Text(11);
  r.prev_hash = s.Text(12);
  r.hash = s.Text(13);
  return r;
}

CredentialRecord ReadRecord(const Statement& s) {
  CredentialRecord r;
  r.provider = s.Text(0);
  r.profile = s.Text(1);
  r.version = s.Int(2);
  r.sealed = s.Bytes(3);
  r.fingerprint = s.Text(4);
  r.created_at = FromMicros(s.Int(5));
  r.rotation_period = absl::Seconds(s.Int(6));
  r.first_created_at = FromMicros(s.Int(7));
  r.version_count = s.Int(8);
  return r;
}

std::string EncodeStrings(const std::vector<absl::string_view>& strings) {
  std::string out;
  for (absl::string_view s : strings) {
    absl::StrAppend(&out, s.size(), ":", s);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob,
                                                       absl::string_view what) {
  std::vector<std::string> out;
  while (!blob.empty()) {
    size_t colon = blob.find(':');
    uint64_t size = 0;
    bool valid = colon != absl::string_view::npos && colon > 0 && colon <= 10;
    for (size_t i = 0; valid && i < colon; ++i) {
      valid = blob[i] >= '0' && blob[i] <= '9';
      size = size * 10 + static_cast<uint64_t>(blob[i] - '0');
    }
    if (!valid || size > blob.size() - colon - 1) {
      return Malformed(what);
    }
    out.emplace_back(blob.substr(colon + 1, size));
    blob.remove_prefix(colon + 1 + size);
  }
  return out;
}

#define CB_REQUEST_COLUMNS                                                \
  "request_id, session_key, need_id, provider, profile, action, context," \
  " requested_ttl_us, agent_peer, state, missing_fields, created_at,"     \
  " expires_at, decided_at, decision, grant_id, binding_note, mac"
const char kUpsertRequestSql[] =
    "INSERT INTO requests (" CB_REQUEST_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
    " ?15, ?16, ?17, ?18) ON CONFLICT (request_id) DO UPDATE SET"
    " session_key = excluded.session_key, need_id = excluded.need_id,"
    " provider = excluded.provider, profile = excluded.profile,"
    " action = excluded.action,"
    " context = excluded.context, requested_ttl_us = excluded.requested_ttl_us,"
    " agent_peer = excluded.agent_peer, state = excluded.state,"
    " missing_fields = excluded.missing_fields,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at,"
    " decided_at = excluded.decided_at, decision = excluded.decision,"
    " grant_id = excluded.grant_id, binding_note = excluded.binding_note,"
    " mac = excluded.mac";
const char kListRequestsSql[] = "SELECT " CB_REQUEST_COLUMNS
                                " FROM requests"
                                " ORDER BY created_at, request_id";
const char kListOpenRequestsSql[] = "SELECT " CB_REQUEST_COLUMNS
                                    " FROM requests WHERE decided_at = ?1"
                                    " ORDER BY created_at, request_id";
const char kGetRequestSql[] =
    "SELECT " CB_REQUEST_COLUMNS " FROM requests WHERE request_id = ?1";
#undef CB_REQUEST_COLUMNS

#define CB_GRANT_COLUMNS                                          \
  "grant_id, request_id, session_key, provider, profile, action," \
  " credential_version, scope, created_at, expires_at, ended_at," \
  " end_reason, mac"
const char kUpsertGrantSql[] =
    "INSERT INTO grants (" CB_GRANT_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (grant_id) DO UPDATE SET request_id = excluded.request_id,"
    " session_key = excluded.session_key, provider = excluded.provider,"
    " profile = excluded.profile, action = excluded.action,"
    " credential_version = excluded.credential_version,"
    " scope = excluded.scope, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at, ended_at = excluded.ended_at,"
    " end_reason = excluded.end_reason, mac = excluded.mac";
// Keyset paging on grants_by_created. ?3 = 1 includes ended and expired
// grants; otherwise only those with ended_at = ?4 (not ended) that expire
// after ?5 (now).
const char kListGrantsSql[] =
    "SELECT " CB_GRANT_COLUMNS
    " FROM grants WHERE (created_at, grant_id) > (?1, ?2)"
    " AND (?3 = 1 OR (ended_at = ?4 AND expires_at > ?5))"
    " ORDER BY created_at, grant_id LIMIT ?6";
const char kGetGrantSql[] =
    "SELECT " CB_GRANT_COLUMNS " FROM grants WHERE grant_id = ?1";
#undef CB_GRANT_COLUMNS

#define CB_STANDING_COLUMNS                                                  \
  "id, provider, profile, action_pattern, created_at, expires_at, revoked, " \
  "mac"
const char kUpsertStandingSql[] =
    "INSERT INTO standing_approvals (" CB_STANDING_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (id) DO UPDATE SET provider = excluded.provider,"
    " profile = excluded.profile, action_pattern = excluded.action_pattern,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at,"
    " revoked = excluded.revoked, mac = excluded.mac";
const char kListStandingSql[] = "SELECT " CB_STANDING_COLUMNS
                                " FROM standing_approvals"
                                " ORDER BY created_at, id";
#undef CB_STANDING_COLUMNS

#define CB_BINDING_COLUMNS                                        \
  "provider, resource, profile, fingerprint, credential_version," \
  " grant_id, created_at, updated_at"
// An update keeps the binding's created_at.
const char kUpsertBindingSql[] =
    "INSERT INTO resource_bindings (" CB_BINDING_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (provider, resource) DO UPDATE SET"
    " profile = excluded.profile, fingerprint = excluded.fingerprint,"
    " credential_version = excluded.credential_version,"
    " grant_id = excluded.grant_id, updated_at = excluded.updated_at";
const char kGetBindingSql[] = "SELECT " CB_BINDING_COLUMNS
                              " FROM resource_bindings"
                              " WHERE provider = ?1 AND resource = ?2";
const char kListBindingsSql[] =
    "SELECT " CB_BINDING_COLUMNS
    " FROM resource_bindings WHERE (?1 = '' OR provider = ?1)"
    " ORDER BY provider, resource";
#undef CB_BINDING_COLUMNS

absl::StatusOr<RequestRecord> ReadRequest(const Statement& s) {
  RequestRecord r;
  r.request_id = s.Text(0);
  r.session_key = s.Text(1);
  r.need_id = s.Text(2);
  r.provider = s.Text(3);
  r.profile = s.Text(4);
  r.action = s.Text(5);
  CB_ASSIGN_OR_RETURN(
      std::vector<std::string> context,
      DecodeStrings(s.Bytes(6),
                    absl::StrCat("context of request ", r.request_id)));
  if (context.size() % 2 != 0) {
    return Malformed(absl::StrCat("context of request ", r.request_id));
  }
  for (size_t i = 0; i < context.size(); i += 2) {
    r.context.emplace_back(std::move(context[i]), std::move(context[i + 1]));
  }
  r.requested_ttl = MicrosToDuration(s.Int(7));
  r.agent_peer = s.Text(8);
  r.state = static_cast<int>(s.Int(9));
  CB_ASSIGN_OR_RETURN(
      r.missing_fields,
      DecodeStrings(s.Bytes(10), absl::StrCat("missing field list of request ",
                                              r.request_id)));
  r.created_at = MicrosToTime(s.Int(11));
  r.expires_at = MicrosToTime(s.Int(12));
  r.decided_at = MicrosToTime(s.Int(13));
  r.decision = s.Text(14);
  r.grant_id = s.Text(15);
  r.binding_note = s.Text(16);
  r.mac = s.Text(17);
  return r;
}

GrantRecord ReadGrant(const Statement& s) {
  GrantRecord g;
  g.grant_id = s.Text(0);
  g.request_id = s.Text(1);
  g.session_key = s.Text(2);
  g.provider = s.Text(3);
  g.profile = s.Text(4);
  g.action = s.Text(5);
  g.credential_version = s.Int(6);
  g.scope = static_cast<int>(s.Int(7));
  g.created_at = MicrosToTime(s.Int(8));
  g.expires_at = MicrosToTime(s.Int(9));
  g.ended_at = MicrosToTime(s.Int(10));
  g.end_reason = s.Text(11);
  g.mac = s.Text(12);
  return g;
}

StandingRecord ReadStanding(const Statement& s) {
  StandingRecord r;
  r.id = s.Text(0);
  r.provider = s.Text(1);
  r.profile = s.Text(2);
  r.action_pattern = s.Text(3);
  r.created_at = MicrosToTime(s.Int(4));
  r.expires_at = MicrosToTime(s.Int(5));
  r.revoked = s.Int(6) != 0;
  r.mac = s.Text(7);
  return r;
}

BindingRecord ReadBinding(const Statement& s) {
  BindingRecord b;
  b.provider = s.Text(0);
  b.resource = s.Text(1);
  b.profile = s.Text(2);
  b.fingerprint = s.Text(3);
  b.credential_version = s.Int(4);
  b.grant_id = s.Text(5);
  b.created_at = MicrosToTime(s.Int(6));
  b.updated_at = MicrosToTime(s.Int(7));
  return b;
}

// Ids are the flow tables' keys: an empty one is the caller's mistake.
absl::Status ValidateFlowWrite(const FlowWrite& write,
                               const Store::AuditHashFn& hash_fn) {
  for (const RequestRecord& r : write.requests) {
    if (r.request_id.empty()) {
      return absl::InvalidArgumentError("request id must not be empty");
    }
  }
  for (const GrantRecord& g : write.grants) {
    if (g.grant_id.empty()) {
      return absl::InvalidArgumentError("grant id must not be empty");
    }
  }
  for (const StandingRecord& r : write.standing) {
    if (r.id.empty()) {
      return absl::InvalidArgumentError(
          "standing approval id must not be empty");
    }
  }
  for (const BindingRecord& b : write.bindings) {
    if (b.provider.empty() || b.resource.empty() || b.profile.empty()) {
      return absl::InvalidArgumentError(
          "a binding needs a provider, a resource and a profile");
    }
  }
  for (const auto& [key, value] : write.meta) {
    if (key.empty()) {
      return absl::InvalidArgumentError("metadata key must not be empty");
    }
  }
  if (!write.audit.empty() && !hash_fn) {
    return absl::InvalidArgumentError("no audit hash function given");
  }
  return absl::OkStatus();
}

absl::Status ValidateLimit(int limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("list limit must be positive, got ", limit));
  }
  return absl::OkStatus();
}

absl::Status ValidateIdentity(absl::string_view provider,
                              absl::string_view profile) {
  if (provider.empty()) {
    return absl::InvalidArgumentError("provider must not be empty");
  }
  if (profile.empty()) {
    return absl::InvalidArgumentError("profile must not be empty");
  }
  return absl::OkStatus();
}

}  // namespace sqlite_internal
}  // namespace credbroker
