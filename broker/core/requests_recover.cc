#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/status_macros.h"
#include "broker/core/requests.h"
#include "broker/core/requests_internal.h"
#include "common/errors.h"
#include "common/text.h"

namespace credbroker {

using requests_internal::GrantEnded;
using requests_internal::kAll;

// What Recover reads from the store, in the form Install puts in place.
struct RequestManager::Loaded {
  std::map<std::string, RequestRecord> open;
  std::map<std::string, GrantRecord> grants;
  std::map<std::string, StandingRecord> standing;
  std::map<std::pair<std::string, std::string>, RequestRecord> decided;
};

absl::Status RequestManager::Recover() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  Loaded loaded;
  Effects refused;
  CB_RETURN_IF_ERROR(LoadRows(now, loaded, refused));
  // Refused either way; a store that cannot take the events must not stop the
  // start.
  if (!refused.write.audit.empty()) Commit(refused).IgnoreError();
  Install(loaded, now);
  return absl::OkStatus();
}

absl::Status RequestManager::LoadRows(absl::Time now, Loaded& loaded,
                                      Effects& refused) {
  // Every row that can still be acted on: open requests, and the recent
  // decisions an agent may ask about again.
  FlowWrite rows;
  CB_ASSIGN_OR_RETURN(rows.requests, store_->ListRequests(/*open_only=*/false));
  const absl::Time recent = now - options_.max_grant_ttl;
  rows.requests.erase(std::remove_if(rows.requests.begin(), rows.requests.end(),
                                     [recent](const RequestRecord& r) {
                                       return r.decided_at !=
                                                  absl::InfinitePast() &&
                                              r.decided_at < recent;
                                     }),
                      rows.requests.end());
  ListGrantsOptions grant_options;
  grant_options.now = now;
  grant_options.limit = kAll;
  CB_ASSIGN_OR_RETURN(rows.grants, store_->ListGrants(grant_options));
  CB_ASSIGN_OR_RETURN(rows.standing, store_->ListStanding());
  for (AuditRecord& e : rows_.DropUnverified(rows, "the store", now))
    refused.write.audit.push_back(std::move(e));
  for (RequestRecord& r : rows.requests) {
    if (r.decided_at != absl::InfinitePast()) {
      loaded.decided[{r.session_key, r.need_id}] = std::move(r);
    } else {
      loaded.open[r.request_id] = std::move(r);
    }
  }
  for (GrantRecord& g : rows.grants) {
    if (!GrantEnded(g, now)) loaded.grants[g.grant_id] = std::move(g);
  }
  for (StandingRecord& a : rows.standing) loaded.standing[a.id] = std::move(a);
  return absl::OkStatus();
}

void RequestManager::Install(Loaded& loaded, absl::Time now) {
  for (auto& [id, r] : loaded.open) {
    sessions_.RestoreAway(r.session_key, r.agent_peer, now);
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

}  // namespace credbroker
