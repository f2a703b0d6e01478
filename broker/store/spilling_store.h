// SpillingStore is a Store that keeps the approval flow going while its
// primary store refuses writes (a read-only data directory, a disk full past
// its reserve, an I/O error). A flow write (WriteFlow) the primary refuses
// goes to a second store, the spill, just as durably; once rows wait there,
// every flow write goes there too, to keep their order. Reads of flow rows
// (requests, grants, standing approvals, bindings) see the spill's rows
// over the primary's. TakeBack copies the spill into the primary in one
// transaction that also records the spill's id, so that a crash before the
// spill's files are removed never copies them twice. Every other call goes
// to the primary alone. Meant for the approval flow's writes: the meta of a
// spilled FlowWrite is not taken back, so writes that must reach the
// primary (keys, PIN records) go to it directly. A flow write that carries
// a new credential version is never spilled: refused by the primary, or
// while rows wait in the spill, it fails (UNAVAILABLE then) and nothing is
// written.
//
// Thread-safe: its own mutex guards the spill (which is open, its id, the
// back-off of TakeBackWhenDue); a flow write or read that meets the spill
// holds it for the call. Errors are the primary's or the spill's; a write
// neither takes keeps the primary's status code.
#ifndef CREDBROKER_BROKER_STORE_SPILLING_STORE_H_
#define CREDBROKER_BROKER_STORE_SPILLING_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/store.h"

namespace credbroker {

// Where the spill lives. Both unset: no spill, and refused writes fail.
struct SpillOptions {
  // Opens the spill store; with `create` false, NOT_FOUND when there is
  // none.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(bool create)> open;
  // Removes the spill store's files once taken back (it is closed then).
  std::function<absl::Status()> remove;
};

class SpillingStore : public ForwardingStore {
 public:
  // What the primary takes back is checked by the caller's rules first.
  struct TakeBackChecks {
    // Drops the spilled rows that must not be taken back (planted or
    // edited ones) and returns the audit events that say so.
    std::function<std::vector<AuditRecord>(FlowWrite& rows)> vet;
    // The audit log's hash: checks the spill's chain and chains its events
    // in the primary. Required.
    AuditHashFn hash;
  };

  // Wraps `primary`, which must outlive the result. A spill left by an earlier
  // run is opened (its rows are read from now on) unless the primary records it
  // as taken back already: then its files are removed. `clock` (default
  // absl::Now) stamps the take-back and paces TakeBackWhenDue. Errors: opening
  // the left spill, or reading the primary's record of it.
  static absl::StatusOr<std::unique_ptr<SpillingStore>> Open(
      Store* primary, SpillOptions options,
      std::function<absl::Time()> clock = nullptr);

  // Whether flow writes go to the spill (rows wait there).
  bool spilling();

  // Copies every spilled row and audit event the checks keep into the
  // primary in one transaction (with an audit.spill_chain_broken event when
  // the spill's chain does not verify), then removes the spill. OK when
  // there is no spill. On error the spill stays in use, unless only its
  // removal failed.
  absl::Status TakeBack(const TakeBackChecks& checks);
  // TakeBack, unless an earlier try failed too recently: the tries back off
  // from 250 ms up to 8 s while the primary still refuses writes.
  void TakeBackWhenDue(const TakeBackChecks& checks);

  // --- Store: the flow's calls; every other one is the primary's alone ---
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
  // Moves with the primary's mark and with each spilled write.
  std::optional<ChangeMark> CurrentChangeMark() override;

 private:
  SpillingStore(Store* primary, SpillOptions options,
                std::function<absl::Time()> clock);

  Store& primary() const { return inner(); }
  static absl::Status RefuseSpilledVersion();
  // Opens the spill (making it with `create`); a spill the primary took
  // back already is removed, never reused.
  absl::Status OpenSpill(bool create) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveSpill();
  // Every spilled row, the audit events last, as one write to the primary.
  absl::StatusOr<FlowWrite> ReadSpill(const TakeBackChecks& checks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A row read with `read` from the spill first (its rows are newer), then
  // from the primary.
  template <typename Read>
  auto ReadFlowRow(Read read);

  const SpillOptions options_;
  const std::function<absl::Time()> clock_;

  absl::Mutex mu_;
  // Open while flow writes go to, or wait in, the spill.
  std::unique_ptr<Store> spill_ ABSL_GUARDED_BY(mu_);
  std::string spill_id_ ABSL_GUARDED_BY(mu_);
  // Writes that went to the spill, and take-backs (for CurrentChangeMark).
  uint64_t spill_changes_ ABSL_GUARDED_BY(mu_) = 0;
  // TakeBackWhenDue's next try, after failed ones.
  absl::Time next_take_back_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration take_back_delay_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_STORE_SPILLING_STORE_H_
