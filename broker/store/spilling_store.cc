#include "broker/store/spilling_store.h"

#include <algorithm>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/common/status_macros.h"

namespace credbroker {
namespace {

constexpr char kSpillIdKey[] = "spill_id";
constexpr int kAll = std::numeric_limits<int>::max();

// The primary's meta key that records the take-back of spill `id`.
std::string SpillTakenKey(absl::string_view id) {
  return absl::StrCat("spill_taken/", id);
}

// 128 random bits, in hex: a spill's id.
std::string NewSpillId() {
  std::random_device random;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(&id, absl::Hex(random(), absl::kZeroPad8));
  }
  return id;
}

// What a store answers when it cannot write at all: an I/O error, a
// read-only or unopenable file, a full disk.
bool RefusedWrite(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsFailedPrecondition(s) ||
         absl::IsResourceExhausted(s);
}

// `primary` with `spilled` laid over it, rows of equal key_of replaced,
// ordered by key_of.
template <typename Row, typename KeyOf>
std::vector<Row> Merge(std::vector<Row> primary, std::vector<Row> spilled,
                       KeyOf key_of) {
  std::map<decltype(key_of(std::declval<const Row&>())), Row> merged;
  for (Row& row : primary) merged[key_of(row)] = std::move(row);
  for (Row& row : spilled) merged[key_of(row)] = std::move(row);
  std::vector<Row> out;
  out.reserve(merged.size());
  for (auto& [key, row] : merged) out.push_back(std::move(row));
  return out;
}

bool GrantEnded(const GrantRecord& g, absl::Time now) {
  return g.ended_at != absl::InfiniteFuture() || g.expires_at <= now;
}

}  // namespace

SpillingStore::SpillingStore(Store* primary, SpillOptions options,
                             std::function<absl::Time()> clock)
    : ForwardingStore(primary),
      options_(std::move(options)),
      clock_(clock ? std::move(clock) : [] { return absl::Now(); }) {}

absl::StatusOr<std::unique_ptr<SpillingStore>> SpillingStore::Open(
    Store* primary, SpillOptions options, std::function<absl::Time()> clock) {
  std::unique_ptr<SpillingStore> store(
      new SpillingStore(primary, std::move(options), std::move(clock)));
  if (store->options_.open) {
    absl::MutexLock lock(&store->mu_);
    absl::Status opened = store->OpenSpill(/*create=*/false);
    if (!opened.ok() && !absl::IsNotFound(opened)) return opened;
  }
  return store;
}

bool SpillingStore::spilling() {
  absl::MutexLock lock(&mu_);
  return spill_ != nullptr;
}

absl::Status SpillingStore::OpenSpill(bool create) {
  CB_ASSIGN_OR_RETURN(std::unique_ptr<Store> spill, options_.open(create));
  absl::StatusOr<std::string> id = spill->GetMeta(kSpillIdKey);
  if (id.ok()) {
    // A spill the primary took back already, whose files could not be
    // removed then: its rows are older than the primary's. Never reuse it.
    absl::StatusOr<std::string> taken = primary().GetMeta(SpillTakenKey(*id));
    if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
    if (taken.ok()) {
      spill.reset();
      CB_RETURN_IF_ERROR(RemoveSpill());
      if (!create)
        return absl::NotFoundError("the spill was taken back already");
      CB_ASSIGN_OR_RETURN(spill, options_.open(/*create=*/true));
      id = absl::NotFoundError("a new spill");
    }
  }
  if (absl::IsNotFound(id.status())) {
    id = NewSpillId();
    CB_RETURN_IF_ERROR(spill->PutMeta(kSpillIdKey, *id));
  }
  if (!id.ok()) return id.status();
  spill_ = std::move(spill);
  spill_id_ = *std::move(id);
  return absl::OkStatus();
}

absl::Status SpillingStore::RemoveSpill() {
  return options_.remove
             ? options_.remove()
             : absl::FailedPreconditionError("the spill cannot be removed");
}

// While rows wait in the spill, the store cannot take a decision before
// them, and a credential version is never spilled.
absl::Status SpillingStore::RefuseSpilledVersion() {
  return absl::UnavailableError(
      "the store refuses writes (decisions are kept in the spill meanwhile), "
      "so new credential values cannot be stored; approve without values to "
      "use the stored credential, or free the data directory and approve "
      "again");
}

absl::Status SpillingStore::WriteFlow(const FlowWrite& write,
                                      const AuditHashFn& hash_fn) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      if (write.credential.has_value()) return RefuseSpilledVersion();
      ++spill_changes_;
      return spill_->WriteFlow(write, hash_fn);
    }
  }
  absl::Status s = primary().WriteFlow(write, hash_fn);
  if (s.ok() || !options_.open || !RefusedWrite(s)) return s;
  // A new credential version is never spilled: the store takes it with its
  // decision, or nothing is written and nothing released.
  if (write.credential.has_value()) return s;
  absl::MutexLock lock(&mu_);
  if (spill_ == nullptr) {
    absl::Status opened = OpenSpill(/*create=*/true);
    if (!opened.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat(s.message(),
                       "; the spill could not take the write either: ",
                       opened.message()));
    }
    std::cerr << "credbrokerd: the store refuses writes (" << s.message()
              << "); approvals go on, recorded in the spill until the store "
                 "can write again\n";
  }
  ++spill_changes_;
  return spill_->WriteFlow(write, hash_fn);
}

absl::StatusOr<FlowWrite> SpillingStore::ReadSpill(
    const TakeBackChecks& checks) {
  FlowWrite all;
  CB_ASSIGN_OR_RETURN(all.requests, spill_->ListRequests(/*open_only=*/false));
  ListGrantsOptions grants;
  grants.include_ended = true;
  grants.limit = kAll;
  CB_ASSIGN_OR_RETURN(all.grants, spill_->ListGrants(grants));
  CB_ASSIGN_OR_RETURN(all.standing, spill_->ListStanding());
  std::vector<AuditRecord> refused;
  if (checks.vet) refused = checks.vet(all);
  CB_ASSIGN_OR_RETURN(all.bindings, spill_->ListBindings(""));
  AuditQuery events;
  events.limit = kAll;
  CB_ASSIGN_OR_RETURN(all.audit, spill_->ListAudit(events));
  // The primary re-chains these events: check the spill's chain first, and
  // record where it was broken (edited behind the broker's back).
  std::string prev;
  for (const AuditRecord& e : all.audit) {
    if (e.prev_hash != prev || checks.hash(e) != e.hash) {
      AuditRecord broken;
      broken.time = clock_();
      broken.kind = "audit.spill_chain_broken";
      broken.outcome = "error";
      broken.detail = absl::StrCat("the spill's audit chain is broken at its ",
                                   "event ", e.sequence, " (", e.kind, ")");
      all.audit.push_back(std::move(broken));
      break;
    }
    prev = e.hash;
  }
  for (AuditRecord& e : refused) all.audit.push_back(std::move(e));
  return all;
}

absl::Status SpillingStore::TakeBack(const TakeBackChecks& checks) {
  absl::MutexLock lock(&mu_);
  if (spill_ == nullptr) return absl::OkStatus();
  const std::string marker = SpillTakenKey(spill_id_);
  absl::StatusOr<std::string> taken = primary().GetMeta(marker);
  if (!taken.ok() && !absl::IsNotFound(taken.status())) return taken.status();
  if (!taken.ok()) {
    CB_ASSIGN_OR_RETURN(FlowWrite all, ReadSpill(checks));
    all.meta.push_back({marker, absl::FormatTime(clock_())});
    CB_RETURN_IF_ERROR(primary().WriteFlow(all, checks.hash));
    std::cerr << "credbrokerd: the store takes writes again; "
              << all.requests.size() << " requests, " << all.grants.size()
              << " grants and " << all.audit.size()
              << " audit events recorded in the spill were copied into it\n";
  }
  spill_.reset();
  spill_id_.clear();
  return RemoveSpill();
}

void SpillingStore::TakeBackWhenDue(const TakeBackChecks& checks) {
  const absl::Time now = clock_();
  {
    absl::MutexLock lock(&mu_);
    if (spill_ == nullptr || now < next_take_back_) return;
  }
  // While the primary still refuses writes, each try reads the whole spill
  // under the lock: back off, from one tick up to 8 s.
  const bool taken = TakeBack(checks).ok();
  absl::MutexLock lock(&mu_);
  if (taken) {
    take_back_delay_ = absl::ZeroDuration();
  } else {
    take_back_delay_ = std::clamp(2 * take_back_delay_, absl::Milliseconds(250),
                                  absl::Seconds(8));
    next_take_back_ = now + take_back_delay_;
  }
}

template <typename Read>
auto SpillingStore::ReadFlowRow(Read read) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      auto row = read(*spill_);
      if (!absl::IsNotFound(row.status())) return row;
    }
  }
  return read(primary());
}

absl::StatusOr<RequestRecord> SpillingStore::GetRequest(
    absl::string_view request_id) {
  return ReadFlowRow([&](Store& s) { return s.GetRequest(request_id); });
}

absl::StatusOr<GrantRecord> SpillingStore::GetGrant(
    absl::string_view grant_id) {
  return ReadFlowRow([&](Store& s) { return s.GetGrant(grant_id); });
}

absl::StatusOr<BindingRecord> SpillingStore::GetBinding(
    absl::string_view provider, absl::string_view resource) {
  return ReadFlowRow(
      [&](Store& s) { return s.GetBinding(provider, resource); });
}

absl::StatusOr<std::vector<RequestRecord>> SpillingStore::ListRequests(
    bool open_only) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      // Decided ones too: a decision in the spill closes a request the
      // primary still has open.
      CB_ASSIGN_OR_RETURN(std::vector<RequestRecord> spilled,
                          spill_->ListRequests(/*open_only=*/false));
      CB_ASSIGN_OR_RETURN(std::vector<RequestRecord> rows,
                          primary().ListRequests(open_only));
      std::vector<RequestRecord> merged = Merge(
          std::move(rows), std::move(spilled), [](const RequestRecord& r) {
            return std::make_pair(r.created_at, r.request_id);
          });
      if (open_only) {
        merged.erase(std::remove_if(merged.begin(), merged.end(),
                                    [](const RequestRecord& r) {
                                      return r.decided_at !=
                                             absl::InfinitePast();
                                    }),
                     merged.end());
      }
      return merged;
    }
  }
  return primary().ListRequests(open_only);
}

absl::StatusOr<std::vector<GrantRecord>> SpillingStore::ListGrants(
    const ListGrantsOptions& options) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      // Every spilled grant, ended ones too: a grant ended in the spill
      // replaces the primary's active row of the same id.
      ListGrantsOptions all = options;
      all.include_ended = true;
      all.limit = kAll;
      CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> spilled,
                          spill_->ListGrants(all));
      // As many more from the primary as the spill may take out of its
      // page, so that a full page stays full (a short one says there is no
      // more).
      ListGrantsOptions from_primary = options;
      from_primary.limit = static_cast<int>(std::min<int64_t>(
          kAll, int64_t{options.limit} + static_cast<int64_t>(spilled.size())));
      CB_ASSIGN_OR_RETURN(std::vector<GrantRecord> rows,
                          primary().ListGrants(from_primary));
      std::vector<GrantRecord> out;
      for (GrantRecord& g :
           Merge(std::move(rows), std::move(spilled), [](const GrantRecord& g) {
             return std::make_pair(g.created_at, g.grant_id);
           })) {
        if (static_cast<int>(out.size()) == options.limit) break;
        if (GrantEnded(g, options.now) && !options.include_ended) continue;
        out.push_back(std::move(g));
      }
      return out;
    }
  }
  return primary().ListGrants(options);
}

absl::StatusOr<std::vector<StandingRecord>> SpillingStore::ListStanding() {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      CB_ASSIGN_OR_RETURN(std::vector<StandingRecord> spilled,
                          spill_->ListStanding());
      CB_ASSIGN_OR_RETURN(std::vector<StandingRecord> rows,
                          primary().ListStanding());
      return Merge(std::move(rows), std::move(spilled),
                   [](const StandingRecord& s) {
                     return std::make_pair(s.created_at, s.id);
                   });
    }
  }
  return primary().ListStanding();
}

absl::StatusOr<std::vector<BindingRecord>> SpillingStore::ListBindings(
    absl::string_view provider) {
  {
    absl::MutexLock lock(&mu_);
    if (spill_ != nullptr) {
      CB_ASSIGN_OR_RETURN(std::vector<BindingRecord> spilled,
                          spill_->ListBindings(provider));
      CB_ASSIGN_OR_RETURN(std::vector<BindingRecord> rows,
                          primary().ListBindings(provider));
      return Merge(std::move(rows), std::move(spilled),
                   [](const BindingRecord& b) {
                     return std::make_pair(b.provider, b.resource);
                   });
    }
  }
  return primary().ListBindings(provider);
}

std::optional<Store::ChangeMark> SpillingStore::CurrentChangeMark() {
  absl::MutexLock lock(&mu_);
  std::optional<ChangeMark> mark = primary().CurrentChangeMark();
  if (!mark.has_value()) return std::nullopt;
  return *mark + spill_changes_;
}

}  // namespace credbroker
