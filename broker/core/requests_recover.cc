#include <algorithm>
#include <iostream>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/common/text.h"
#include "broker/core/requests.h"
#include "broker/core/requests_internal.h"
#include "broker/crypto/crypto.h"

namespace credbroker {

using requests_internal::GrantEnded;
using requests_internal::kAll;

namespace {

constexpr char kSpillIdKey[] = "spill_id";

// The store's meta key that records the take-back of spill `id`.
std::string SpillTakenKey(absl::string_view id) {
  return absl::StrCat("spill_taken/", id);
}

}  // namespace

// What Recover reads from the store and then the spill, keyed so that a
// spilled row (newer) replaces the store's.
struct RequestManager::Loaded {
  std::map<std::string, RequestRecord> open;
  std::map<std::string, GrantRecord> grants;
  std::map<std::string, StandingRecord> standing;
  std::map<std::pair<std::string, std::string>, RequestRecord> decided;
};

absl::Status RequestManager::Recover() {
  absl::MutexLock lock(&mu_);
  // A spill left by a run that ended before the store took it back: the
  // store takes it now, or (still refusing writes) its rows are laid over
  // the store's below.
  if (options_.spill.open) {
    absl::Status opened = OpenSpill(/*create=*/false);
    if (!opened.ok() && !absl::IsNotFound(opened)) return opened;
    if (opened.ok()) TakeBackSpill().IgnoreError();
  }
  const absl::Time now = clock_();
  Loaded loaded;
  Effects refused;
  for (Store* store : {store_, spill_.get()}) {
    if (store != nullptr) {
      CB_RETURN_IF_ERROR(LoadRows(store, now, loaded, refused));
    }
  }
  // Refused either way; a store that cannot take the events must not stop the
  // start.
  if (!refused.write.audit.empty()) Commit(refused).IgnoreError();
  Install(loaded, now);
  return absl::OkStatus();
}

absl::Status RequestManager::LoadRows(Store* store, absl::Time now,
                                      Loaded& loaded, Effects& refused) {
  const bool spill = store != store_;
  auto verified = [&](auto& rows, absl::string_view what, auto id_of) {
    RefuseUnverified(rows, what, id_of, spill ? "the spill" : "the store",
                     refused);
  };
  // Every row that can still be acted on: open requests, and the recent
  // decisions an agent may ask about again (from the spill too, so that a
  // decision recorded there closes a request the store still has open).
  CB_ASSIGN_OR_RETURN(std::vector<RequestRecord> requests,
                      store->ListRequests(/*open_only=*/false));
  const absl::Time recent = now - options_.max_grant_ttl;
  requests.erase(std::remove_if(requests.begin(), requests.end(),
                                [recent](const RequestRecord& r) {
                                  return r.decided_at != absl::InfinitePast() &&
                                         r.decided_at < recent;
                                }),
                 requests.end());
  verified(requests, "request",
           [](const RequestRecord& r) { return r.request_id; });
  for (RequestRecord& r : requests) {
    if (r.decided_at != absl::InfinitePast()) {
      loaded.open.erase(r.request_id);
      loaded.decided[{r.session_key, r.need_id}] = std::move(r);
    } else {
      loaded.open[r.request_id] = std::move(r);
    }
  }
  ListGrantsOptions grant_options;
  grant_options.now = now;
  grant_options.limit = kAll;
  grant_options.include_ended = spill;
  CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> listed,
                      store->ListGrants(grant_options));
  verified(listed, "grant", [](const GrantRecord& g) { return g.grant_id; });
  for (GrantRecord& g : listed) {
    if (GrantEnded(g, now)) {
      loaded.grants.erase(g.grant_id);
    } else {
      loaded.grants[g.grant_id] = std::move(g);
    }
  }
  CB_ASSIGN_OR_RETURN(std::vector<StandingRecord> approvals,
                      store->ListStanding());
  verified(approvals, "standing approval",
           [](const StandingRecord& a) { return a.id; });
  for (StandingRecord& a : approvals) loaded.standing[a.id] = std::move(a);
  return absl::OkStatus();
}

void RequestManager::Install(Loaded& loaded, absl::Time now) {
  for (auto& [id, r] : loaded.open) {
    Session& session = sessions_[r.session_key];
    session.disconnected_at = now;
    away_.insert({now, r.session_key});
    session.caller.peer = r.agent_peer;
    by_need_[{r.session_key, r.need_id}] = r.request_id;
    AddOpen(std::move(r));
  }
  for (auto& [id, g] : loaded.grants) active_grants_[id] = std::move(g);
  // A need resent after a restart gets its decision, not a new request (and
  // an approved grant nobody received yet goes to the first to ask).
  for (auto& [key, r] : loaded.decided) {
    if (loaded.open.count(r.request_id) == 0) decided_[key] = std::move(r);
  }
  standing_.clear();
  for (auto& [id, a] : loaded.standing) standing_.push_back(std::move(a));
  // Oldest first, as the store lists them.
  std::stable_sort(standing_.begin(), standing_.end(),
                   [](const StandingRecord& a, const StandingRecord& b) {
                     return a.created_at < b.created_at;
                   });
}

template <typename Row, typename IdOf>
void RequestManager::RefuseUnverified(std::vector<Row>& rows,
                                      absl::string_view what, IdOf id_of,
                                      absl::string_view where,
                                      Effects& refused) {
  auto bad = std::remove_if(rows.begin(), rows.end(), [this](const Row& row) {
    return !rows_.Verify(row);
  });
  for (auto it = bad; it != rows.end(); ++it) {
    const std::string detail = absl::StrCat(
        what, " ", id_of(*it), " in ", where,
        " was refused: its MAC does not verify, so it was written or edited "
        "behind the broker's back; it is not acted on");
    std::cerr << "credbrokerd: DATA_LOSS: " << detail << "\n";
    Caller broker;
    broker.role = "broker";
    broker.peer = "credbrokerd";
    refused.write.audit.push_back(
        Event("row.refused", broker, nullptr, nullptr, "DATA_LOSS", detail));
  }
  rows.erase(bad, rows.end());
}

absl::Status RequestManager::OpenSpill(bool create) {
  CB_ASSIGN_OR_RETURN(std::unique_ptr<Store> spill,
                      options_.spill.open(create));
  absl::StatusOr<std::string> id = spill->GetMeta(kSpillIdKey);
  if (id.ok()) {
    // A spill the store took back already, whose files could not be
    // removed then: its rows are older than the store's. Never reuse it.
    absl::StatusOr<std::string> taken = store_->GetMeta(SpillTakenKey(*id));
    if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
    if (taken.ok()) {
      spill.reset();
      CB_RETURN_IF_ERROR(RemoveSpill());
      if (!create)
        return absl::NotFoundError("the spill was taken back already");
      CB_ASSIGN_OR_RETURN(spill, options_.spill.open(/*create=*/true));
      id = absl::NotFoundError("a new spill");
    }
  }
  if (absl::IsNotFound(id.status())) {
    id = RandomHex(16);
    CB_RETURN_IF_ERROR(spill->PutMeta(kSpillIdKey, *id));
  }
  if (!id.ok()) return id.status();
  spill_ = std::move(spill);
  spill_id_ = *std::move(id);
  return absl::OkStatus();
}

absl::Status RequestManager::RemoveSpill() {
  return options_.spill.remove
             ? options_.spill.remove()
             : absl::FailedPreconditionError("the spill cannot be removed");
}

absl::Status RequestManager::TakeBackSpill() {
  if (spill_ == nullptr) return absl::OkStatus();
  const std::string marker = SpillTakenKey(spill_id_);
  absl::StatusOr<std::string> taken = store_->GetMeta(marker);
  if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
  if (!taken.ok()) {
    FlowWrite all;
    CB_ASSIGN_OR_RETURN(all.requests,
                        spill_->ListRequests(/*open_only=*/false));
    ListGrantsOptions grants;
    grants.include_ended = true;
    grants.limit = kAll;
    CB_ASSIGN_OR_RETURN(all.grants, spill_->ListGrants(grants));
    CB_ASSIGN_OR_RETURN(all.standing, spill_->ListStanding());
    Effects refused;
    RefuseUnverified(
        all.requests, "request",
        [](const RequestRecord& r) { return r.request_id; }, "the spill",
        refused);
    RefuseUnverified(
        all.grants, "grant", [](const GrantRecord& g) { return g.grant_id; },
        "the spill", refused);
    RefuseUnverified(
        all.standing, "standing approval",
        [](const StandingRecord& a) { return a.id; }, "the spill", refused);
    CB_ASSIGN_OR_RETURN(all.bindings, spill_->ListBindings(""));
    AuditQuery events;
    events.limit = kAll;
    CB_ASSIGN_OR_RETURN(all.audit, spill_->ListAudit(events));
    // The store re-chains these events: check the spill's chain first, and
    // record where it was broken (edited behind the broker's back).
    std::string prev;
    for (const AuditRecord& e : all.audit) {
      if (e.prev_hash != prev || audit_->HashOf(e) != e.hash) {
        AuditRecord broken = Event(
            "audit.spill_chain_broken", Caller(), nullptr, nullptr, "error",
            absl::StrCat("the spill's audit chain is broken at its event ",
                         e.sequence, " (", e.kind, ")"));
        all.audit.push_back(std::move(broken));
        break;
      }
      prev = e.hash;
    }
    for (AuditRecord& e : refused.write.audit)
      all.audit.push_back(std::move(e));
    all.meta.push_back({marker, absl::FormatTime(clock_())});
    rows_.Sign(all);
    CB_RETURN_IF_ERROR(store_->WriteFlow(all, audit_->HashFn()));
    std::cerr << "credbrokerd: the store takes writes again; "
              << all.requests.size() << " requests, " << all.grants.size()
              << " grants and " << all.audit.size()
              << " audit events recorded in the spill were copied into it\n";
  }
  spill_.reset();
  spill_id_.clear();
  return RemoveSpill();
}

}  // namespace credbroker
