#include <algorithm>
#include <iostream>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "broker/common/status_macros.h"
#include "broker/core/requests.h"
#include "broker/core/requests_internal.h"
#include "broker/crypto/crypto.h"
#include "common/errors.h"
#include "common/text.h"

namespace credbroker {

using requests_internal::CheckReason;
using requests_internal::GrantEnded;

namespace {

// NOT_FOUND for an unknown grant; FAILED_PRECONDITION saying how one that is
// no longer active ended.
absl::Status EndedGrantError(const absl::StatusOr<GrantRecord>& stored,
                             const std::string& grant_id) {
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(
      absl::StrCat("grant ", grant_id, " has already ended",
                   stored->end_reason.empty()
                       ? " (expired)"
                       : absl::StrCat(" (", stored->end_reason, ")")));
}

// The binding of `resource` a grant of `request` records, given the stored
// one (`existing`); nullopt when it has nothing to change.
absl::StatusOr<std::optional<BindingRecord>> BindingToWrite(
    absl::StatusOr<BindingRecord> existing, const RequestRecord& request,
    const std::string& resource, const CredentialManager::StoredValues& values,
    absl::Time now) {
  if (existing.ok()) {
    // A resource stays bound to the profile that created it; a grant of
    // that profile refreshes the fingerprint (the approver saw the note).
    if (existing->profile == request.profile &&
        (existing->fingerprint != values.fingerprint ||
         existing->credential_version != values.version)) {
      return std::optional<BindingRecord>(*std::move(existing));
    }
    return std::optional<BindingRecord>();
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  BindingRecord binding;
  binding.provider = request.provider;
  binding.resource = resource;
  binding.profile = request.profile;
  binding.created_at = now;
  return std::optional<BindingRecord>(std::move(binding));
}

}  // namespace

absl::StatusOr<Grant> RequestManager::IssueGrant(
    const RequestRecord& request, Scope scope, absl::Duration ttl,
    absl::Time now, const Caller& caller, Effects& effects,
    std::string& rotation_key,
    std::optional<CredentialManager::StoredValues> entered) {
  if (!entered.has_value()) {
    CB_ASSIGN_OR_RETURN(
        entered, credentials_->GetValues(request.provider, request.profile, 0));
  }
  CredentialManager::StoredValues& values = *entered;
  const std::string resource = ResourceFromContext(request.context);
  std::optional<BindingRecord> binding;
  if (!resource.empty()) {
    CB_ASSIGN_OR_RETURN(
        binding, BindingToWrite(store_->GetBinding(request.provider, resource),
                                request, resource, values, now));
  }
  if (request.requested_ttl > absl::ZeroDuration()) {
    ttl = std::min(ttl, request.requested_ttl);
  }
  Grant grant;
  GrantRecord& g = grant.record;
  g.grant_id = absl::StrCat("g-", RandomHex(10));
  g.request_id = request.request_id;
  g.session_key = request.session_key;
  g.provider = request.provider;
  g.profile = request.profile;
  g.action = request.action;
  g.credential_version = values.version;
  g.scope = static_cast<int>(scope);
  g.created_at = now;
  g.expires_at = now + std::min(ttl, options_.max_grant_ttl);
  grant.values = std::move(values.values);
  if (binding.has_value()) {
    const bool created = binding->fingerprint.empty();
    binding->fingerprint = values.fingerprint;
    binding->credential_version = values.version;
    binding->grant_id = g.grant_id;
    binding->updated_at = now;
    effects.write.bindings.push_back(*binding);
    effects.write.audit.push_back(
        Event(created ? "binding.created" : "binding.updated", caller, &request,
              &g, "ok",
              absl::StrCat("resource \"", resource, "\" -> ", g.provider, "/",
                           g.profile, " version ", values.version,
                           ", fingerprint ", values.fingerprint)));
  }
  if (values.readiness == Readiness::kRotationDue) {
    NoteRotationDue(request, g, values, caller, effects, rotation_key);
  }
  return grant;
}

void RequestManager::NoteRotationDue(
    const RequestRecord& request, const GrantRecord& g,
    const CredentialManager::StoredValues& values, const Caller& caller,
    Effects& effects, std::string& rotation_key) {
  std::string key = absl::StrCat("rotation_notified/", g.provider, "/",
                                 g.profile, "/", values.version);
  bool told = rotation_notified_.count(key) > 0;
  if (!told) {
    absl::StatusOr<std::string> meta = store_->GetMeta(key);
    told = meta.ok();
    if (told) rotation_notified_.insert(key);
  }
  if (!told) {
    absl::StatusOr<CredentialSummary> summary =
        credentials_->Get(g.provider, g.profile, values.version);
    if (summary.ok()) {
      WatchEvent event;
      event.kind = WatchEventKind::kRotationDue;
      event.request = ViewOf(request);
      event.message =
          absl::StrCat(g.provider, "/", g.profile, " version ", values.version,
                       " is past its rotation period (due ",
                       absl::FormatTime("%Y-%m-%d", summary->rotation_due_at,
                                        absl::UTCTimeZone()),
                       ") and was just granted for \"", request.action,
                       "\": create a new key in the provider's console and "
                       "update the credential.");
      event.credential = *std::move(summary);
      effects.watch_events.push_back(std::move(event));
      effects.write.audit.push_back(
          Event("credential.rotation_due", caller, &request, &g, "ok",
                absl::StrCat("version ", values.version)));
      rotation_key = std::move(key);
    }
  }
}

void RequestManager::MarkRotationNotified(const std::string& rotation_key) {
  if (rotation_key.empty()) return;
  rotation_notified_.insert(rotation_key);
  // Best effort: without it, watchers may be told once more after a restart.
  store_->PutMeta(rotation_key, "1").IgnoreError();
}

absl::Status RequestManager::ReleaseGrant(const std::string& grant_id,
                                          const Caller& caller) {
  absl::MutexLock lock(&mu_);
  auto it = active_grants_.find(grant_id);
  if (it == active_grants_.end()) {
    return EndedGrantError(store_->GetGrant(grant_id), grant_id);
  }
  const Caller* holder = sessions_.HolderOf(grant_id);
  std::string refusal;
  if (!caller.identified() && !caller.client_certificate) {
    refusal = absl::StrCat(
        "the broker cannot tell which process is calling (", caller.peer,
        "); release it over the Unix socket, or over TCP with a client "
        "certificate");
  } else if (holder != nullptr && holder->identified() &&
             !holder->SameProcess(caller)) {
    refusal =
        absl::StrCat("grant ", grant_id, " was handed to another process (",
                     holder->peer, "); only that process may release it");
  }
  if (!refusal.empty()) {
    Effects refused;
    refused.write.audit.push_back(Event("grant.release_refused", caller,
                                        nullptr, &it->second,
                                        "PERMISSION_DENIED", refusal));
    Commit(refused).IgnoreError();
    return absl::PermissionDeniedError(refusal);
  }
  GrantRecord g = it->second;
  g.ended_at = clock_();
  g.end_reason = "released";
  Effects effects;
  effects.write.grants.push_back(g);
  effects.write.audit.push_back(
      Event("grant.released", caller, nullptr, &g, "ok", ""));
  CB_RETURN_IF_ERROR(Commit(effects));
  active_grants_.erase(it);
  sessions_.ForgetGrant(grant_id);
  if (g.scope == static_cast<int>(Scope::kSession))
    sessions_.DropApproval(g.session_key, g.provider, g.profile);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GrantRecord>> RequestManager::ListGrants(
    const ListGrantsOptions& options) {
  return store_->ListGrants(options);
}

absl::Status RequestManager::RevokeGrant(const std::string& grant_id,
                                         const std::string& reason,
                                         const Caller& caller) {
  CB_RETURN_IF_ERROR(CheckReason(reason));
  absl::MutexLock lock(&mu_);
  auto it = active_grants_.find(grant_id);
  if (it == active_grants_.end()) {
    return EndedGrantError(store_->GetGrant(grant_id), grant_id);
  }
  GrantRecord g = it->second;
  g.ended_at = clock_();
  g.end_reason = reason.empty() ? "revoked" : absl::StrCat("revoked: ", reason);
  Effects effects;
  effects.write.grants.push_back(g);
  effects.write.audit.push_back(
      Event("grant.revoked", caller, nullptr, &g, "ok", reason));
  CB_RETURN_IF_ERROR(Commit(effects));
  active_grants_.erase(it);
  sessions_.ForgetGrant(grant_id);
  sessions_.DropApproval(g.session_key, g.provider, g.profile);
  // Tell the agent to stop using the values.
  std::string need_id;
  for (const auto& [key, r] : decided_) {
    if (r.request_id == g.request_id) need_id = r.need_id;
  }
  NeedUpdate u;
  u.need_id = need_id;
  u.request_id = g.request_id;
  u.state = RequestState::kRevoked;
  u.reason = g.end_reason;
  u.message =
      absl::StrCat("grant ", g.grant_id, " was revoked: stop using its values");
  effects.agent_updates.push_back({g.session_key, std::move(u)});
  TellAgents(effects);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StandingRecord>> RequestManager::ListStanding() {
  absl::MutexLock lock(&mu_);
  return standing_;
}

absl::Status RequestManager::RevokeStanding(const std::string& id,
                                            const Caller& caller) {
  absl::MutexLock lock(&mu_);
  for (StandingRecord& s : standing_) {
    if (s.id != id) continue;
    if (s.revoked) {
      return absl::FailedPreconditionError(
          absl::StrCat("standing approval ", id, " was already revoked"));
    }
    StandingRecord revoked = s;
    revoked.revoked = true;
    Effects effects;
    effects.write.standing.push_back(revoked);
    AuditRecord e =
        Event("standing.revoked", caller, nullptr, nullptr, "ok", id);
    e.provider = s.provider;
    e.profile = s.profile;
    e.action = s.action_pattern;
    effects.write.audit.push_back(std::move(e));
    CB_RETURN_IF_ERROR(Commit(effects));
    s.revoked = true;
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no standing approval ", id));
}

void RequestManager::Tick() {
  Effects effects;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_();
    if (!CloseDue(now, effects)) return;  // Retried on the next tick.
    std::vector<std::string> expired_grants;
    for (const auto& [id, g] : active_grants_) {
      if (g.expires_at <= now) expired_grants.push_back(id);
    }
    for (const std::string& id : expired_grants) {
      active_grants_.erase(id);
      sessions_.ForgetGrant(id);
    }
    ForgetAwaySessions(now);
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(effects.watch_events));
}

bool RequestManager::CloseDue(absl::Time now, Effects& effects) {
  // The due requests, in request-id order: true when past its timeout,
  // false when its agent has been away past the grace period.
  std::map<std::string, bool> due;
  for (auto it = open_by_expiry_.begin();
       it != open_by_expiry_.end() && it->first <= now; ++it) {
    due[it->second] = true;
  }
  for (const std::string& session_key : sessions_.GoneAt(now)) {
    for (const RequestRecord* r : OpenInSession(session_key))
      due.emplace(r->request_id, false);
  }
  if (due.empty()) return true;
  std::vector<RequestRecord> closed;
  const Caller broker;
  for (const auto& [id, expired] : due) {
    RequestRecord c = open_.at(id);
    if (expired) {
      Close(c, RequestState::kExpired,
            "expired: no decision before the timeout", "request.expired",
            broker, effects);
    } else {
      Close(c, RequestState::kCancelled,
            "cancelled: the agent disconnected and did not come back",
            "request.cancelled", broker, effects);
    }
    closed.push_back(std::move(c));
  }
  if (!Commit(effects).ok()) return false;
  for (RequestRecord& c : closed) {
    EraseOpen(c.request_id);
    sessions_.ForgetRequest(c.request_id);
    by_need_.erase({c.session_key, c.need_id});
    effects.agent_updates.push_back({c.session_key, UpdateOf(c)});
    decided_[{c.session_key, c.need_id}] = std::move(c);
  }
  TellAgents(effects);
  return true;
}

// Forgets sessions gone past the grace period with nothing open.
void RequestManager::ForgetAwaySessions(absl::Time now) {
  for (const std::string& key : sessions_.GoneAt(now)) {
    // Both maps are ordered by session key first: look at this session's
    // entries only.
    const std::pair<std::string, std::string> first{key, std::string()};
    auto open = by_need_.lower_bound(first);
    if (open != by_need_.end() && open->first.first == key) continue;
    auto d = decided_.lower_bound(first);
    while (d != decided_.end() && d->first.first == key) d = decided_.erase(d);
    sessions_.Forget(key);
  }
}

}  // namespace credbroker
