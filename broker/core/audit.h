// AuditLog records what happened (who, which role, what, when, outcome;
// never a secret value) in the store's append-only audit table, each event
// chained to the previous one by a MAC keyed from the data key, so that an
// edited, inserted or deleted event is detectable, and a chain cannot be
// recomputed without the key. Thread-safe.
#ifndef CREDBROKER_BROKER_CORE_AUDIT_H_
#define CREDBROKER_BROKER_CORE_AUDIT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/core/credentials.h"
#include "broker/store/store.h"

namespace credbroker {

struct AuditPage {
  std::vector<AuditRecord> events;
  std::string next_page_token;
};

// N in a detail that ends "(record N)": the sealed factor records (the
// approval PIN, passkeys) name the counter they wrote so. -1 when absent.
int64_t AuditRecordNumber(absl::string_view detail);

// An event of `kind` by `caller`, with `outcome` ("ok" or a status code's
// name) and `detail`; what it concerns (provider, request, ...) and its
// time are for the maker to add.
AuditRecord EventBy(absl::string_view kind, const Caller& caller,
                    absl::string_view outcome, std::string detail);

class AuditLog {
 public:
  // `store` and `sealer` must outlive the log.
  AuditLog(Store* store, const Sealer* sealer, Clock clock);

  // Appends `event` (its time set now). The error of a failed write is
  // returned, so that callers that must fail closed can.
  absl::Status Record(AuditRecord event);

  // INVALID_ARGUMENT for a bad page token or size.
  absl::StatusOr<AuditPage> List(AuditQuery query, int page_size,
                                 absl::string_view page_token);

  // Walks the whole chain. OK, or DATA_LOSS naming the first event that was
  // edited, inserted or removed.
  absl::Status Verify();

  // The same walk, with where it broke. A break is in the result; the
  // status is an error only when the store cannot be read.
  struct Verification {
    int64_t events_checked = 0;      // Intact events before any break.
    int64_t broken_at_sequence = 0;  // 0 when the chain is intact.
    std::string problem;             // What is wrong there, in words.
    bool intact() const { return broken_at_sequence == 0; }
  };
  absl::StatusOr<Verification> VerifyChain();

  // The chain hash of `event` (over every field but `hash`).
  std::string HashOf(const AuditRecord& event) const;

  // For writes that carry their own audit event (Store::PutCredential):
  // `event` with its time set now, and the hash function Record uses.
  AuditRecord Stamped(AuditRecord event) const;
  Store::AuditHashFn HashFn() const;

 private:
  Store* store_;
  const Sealer* sealer_;
  Clock clock_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_AUDIT_H_
