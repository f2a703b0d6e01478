#include <algorithm>
#include <iostream>
#include <limits>
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

using requests_internal::MakeEvent;

void RequestManager::HandOver(
    const std::pair<const std::pair<std::string, std::string>, RequestRecord>&
        decided,
    const Caller& caller, NeedUpdate& u) {
  const std::string grant_id = u.grant->record.grant_id;
  const Caller* holder = sessions_.HolderOf(grant_id);
  if (holder == nullptr) {
    sessions_.SetHolder(grant_id, caller);  // Not handed to anyone yet.
    return;
  }
  if (holder->SameProcess(caller)) return;
  u.grant.reset();
  u.state = RequestState::kCancelled;
  u.reason =
      absl::StrCat("grant ", grant_id, " was handed to another process (",
                   holder->peer, "); send a new need to be asked for your own");
  Effects refused;
  refused.write.audit.push_back(Event("grant.handover_refused", caller,
                                      &decided.second, nullptr,
                                      "PERMISSION_DENIED", u.reason));
  Commit(refused).IgnoreError();
}

void RequestManager::TellAgents(const Effects& effects) {
  for (const auto& [session_key, update] : effects.agent_updates)
    sessions_.Tell(session_key, update);
}

void RequestManager::Publish(WatcherRegistry::Ticket ticket,
                             std::vector<WatchEvent> events,
                             Readinesses known) {
  for (WatchEvent& event : events) AddReadiness(event.request, known);
  watchers_.Deliver(ticket, events);
}

void RequestManager::AddReadiness(RequestView& view, Readinesses& read) {
  const RequestRecord& r = view.record;
  if (r.provider.empty()) return;  // Not a request (kSnapshotDone).
  auto [it, added] = read.try_emplace({r.provider, r.profile});
  if (added) {
    absl::StatusOr<CredentialSummary> stored =
        credentials_->Get(r.provider, r.profile, 0);
    if (stored.ok()) it->second = stored->readiness;
  }
  view.credential_readiness = it->second;
}

RequestView RequestManager::ViewOf(const RequestRecord& r) const {
  RequestView v;
  v.record = r;
  v.agent_connected = sessions_.Connected(r.session_key);
  return v;
}

std::vector<const RequestRecord*> RequestManager::OpenInSession(
    const std::string& session_key) const {
  // by_need_ is ordered by (session key, need id): one session's open needs
  // are adjacent, so this costs the session's needs, not every open one.
  std::vector<const RequestRecord*> out;
  for (auto it = by_need_.lower_bound({session_key, std::string()});
       it != by_need_.end() && it->first.first == session_key; ++it) {
    out.push_back(&open_.at(it->second));
  }
  return out;
}

absl::StatusOr<int64_t> RequestManager::AttachSession(
    const std::string& session_key, const Caller& caller,
    AgentListener listener) {
  Effects effects;
  AgentSessions::Attached attached;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    if (const Caller* holder = sessions_.HeldByAnother(session_key, caller)) {
      return RefuseAttach(session_key, *holder, caller);
    }
    attached = sessions_.Attach(session_key, caller, std::move(listener));
    if (!attached.was_away) return attached.attachment;
    for (const RequestRecord* r : OpenInSession(session_key)) {
      WatchEvent e = MakeEvent(WatchEventKind::kAgentReconnected, ViewOf(*r));
      if (attached.other_process) {
        e.message =
            absl::StrCat("re-attached from another process: ", caller.peer);
      }
      effects.watch_events.push_back(std::move(e));
    }
    if (attached.other_process) {
      effects.write.audit.push_back(
          Event("session.reattached", caller, nullptr, nullptr, "ok",
                "by another process; session approvals dropped"));
      Commit(effects).IgnoreError();
    }
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(effects.watch_events));
  return attached.attachment;
}

absl::Status RequestManager::RefuseAttach(const std::string& session_key,
                                          const Caller& holder,
                                          const Caller& caller) {
  Effects refused;
  refused.write.audit.push_back(Event(
      "session.attach_refused", caller, nullptr, nullptr, "ALREADY_EXISTS",
      absl::StrCat("session ", session_key, " is attached by ", holder.peer)));
  Commit(refused).IgnoreError();
  return absl::AlreadyExistsError(absl::StrCat(
      "session ", session_key, " is attached by another live stream (",
      holder.peer,
      "); a session belongs to one agent process. Use a session key of your "
      "own (or, if that agent just exited, try again in a moment)"));
}

void RequestManager::DetachSession(const std::string& session_key,
                                   int64_t attachment) {
  std::vector<WatchEvent> events;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    if (!sessions_.Detach(session_key, attachment, clock_())) return;
    for (const RequestRecord* r : OpenInSession(session_key)) {
      events.push_back(
          MakeEvent(WatchEventKind::kAgentDisconnected, ViewOf(*r)));
    }
    ticket = watchers_.Reserve();
  }
  Publish(ticket, std::move(events));
}

int64_t RequestManager::Watch(WatchListener listener) {
  std::vector<WatchEvent> snapshot;
  WatcherRegistry::Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : open_)
      snapshot.push_back(MakeEvent(WatchEventKind::kSnapshot, ViewOf(r)));
    ticket = watchers_.Reserve();
  }
  Readinesses read;
  for (WatchEvent& event : snapshot) AddReadiness(event.request, read);
  snapshot.push_back(MakeEvent(WatchEventKind::kSnapshotDone, RequestView()));
  return watchers_.Add(ticket, std::move(listener), snapshot);
}

void RequestManager::Unwatch(int64_t watcher) { watchers_.Remove(watcher); }

std::vector<RequestView> RequestManager::PendingRequests() {
  std::vector<RequestView> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : open_) out.push_back(ViewOf(r));
  }
  Readinesses read;
  for (RequestView& view : out) AddReadiness(view, read);
  return out;
}

}  // namespace credbroker
