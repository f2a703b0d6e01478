// The store's tables as records: the SQL that selects and writes each
// table's rows, the mappers from a selected row to its record (each reads
// the columns its SQL selects, in that order), and the checks on a write's
// arguments made before it is queued. Internal to broker/store.
#ifndef CREDBROKER_BROKER_STORE_SQLITE_ROWS_H_
#define CREDBROKER_BROKER_STORE_SQLITE_ROWS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/store/sqlite_statement.h"
#include "broker/store/store.h"

namespace credbroker {
namespace sqlite_internal {

// SQL text, each with static lifetime (it is also its statement's cache
// key). Credential records (ReadRecord): ?1 provider, ?2 profile, ?3
// version (0: the latest); listing ?1 provider, ?2/?3 the cursor, ?4 limit.
extern const char kGetSql[];
extern const char kListAllSql[];
extern const char kListProviderSql[];
extern const char kListProviderAfterSql[];
extern const char kVersionsSql[];
// Audit events (ReadAudit).
extern const char kLastAuditSql[];
extern const char kInsertAuditSql[];
extern const char kListAuditSql[];
// Approval requests (ReadRequest).
extern const char kUpsertRequestSql[];
extern const char kListRequestsSql[];
extern const char kListOpenRequestsSql[];
extern const char kGetRequestSql[];
// Grants (ReadGrant).
extern const char kUpsertGrantSql[];
extern const char kListGrantsSql[];
extern const char kGetGrantSql[];
// Standing approvals (ReadStanding).
extern const char kUpsertStandingSql[];
extern const char kListStandingSql[];
// Resource bindings (ReadBinding).
extern const char kUpsertBindingSql[];
extern const char kGetBindingSql[];
extern const char kListBindingsSql[];

// The row `s` is on, as a record.
AuditRecord ReadAudit(const Statement& s);
CredentialRecord ReadRecord(const Statement& s);
// DATA_LOSS when its context or missing field list is malformed.
absl::StatusOr<RequestRecord> ReadRequest(const Statement& s);
GrantRecord ReadGrant(const Statement& s);
StandingRecord ReadStanding(const Statement& s);
BindingRecord ReadBinding(const Statement& s);

// Every row `s` (prepared and bound) yields, each as `read` gives it;
// `what` names the read in errors. A `read` that fails stops at that row.
template <typename Record>
absl::StatusOr<std::vector<Record>> StepAll(Statement& s,
                                            absl::string_view what,
                                            Record (*read)(const Statement&)) {
  std::vector<Record> out;
  while (true) {
    absl::StatusOr<bool> row = s.Step(what);
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(read(s));
  }
}
template <typename Record>
absl::StatusOr<std::vector<Record>> StepAll(
    Statement& s, absl::string_view what,
    absl::StatusOr<Record> (*read)(const Statement&)) {
  std::vector<Record> out;
  while (true) {
    absl::StatusOr<bool> row = s.Step(what);
    if (!row.ok()) return row.status();
    if (!*row) return out;
    absl::StatusOr<Record> record = read(s);
    if (!record.ok()) return record.status();
    out.push_back(*std::move(record));
  }
}

// A list of arbitrary byte strings as one blob: each is "<decimal length>:"
// followed by its bytes.
std::string EncodeStrings(const std::vector<absl::string_view>& strings);

// Inverse of EncodeStrings; DATA_LOSS when `blob` is not such a list.
absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob,
                                                       absl::string_view what);

// INVALID_ARGUMENT when a record of `write` has no key, or audit events
// come without `hash_fn`.
absl::Status ValidateFlowWrite(const FlowWrite& write,
                               const Store::AuditHashFn& hash_fn);

// INVALID_ARGUMENT when a list's `limit` is not positive.
absl::Status ValidateLimit(int limit);

// INVALID_ARGUMENT when `provider` or `profile` is empty.
absl::Status ValidateIdentity(absl::string_view provider,
                              absl::string_view profile);

}  // namespace sqlite_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SQLITE_ROWS_H_
