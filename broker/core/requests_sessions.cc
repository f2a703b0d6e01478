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
  auto holder = grant_agents_.find(grant_id);
  if (holder == grant_agents_.end()) {
    grant_agents_[grant_id] = caller;  // Not handed to anyone yet.
    return;
  }
  if (holder->second.SameProcess(caller)) return;
  u.grant.reset();
  u.state = RequestState::kCancelled;
  u.reason = absl::StrCat(
      "grant ", grant_id, " was handed to another process (",
      holder->second.peer, "); send a new need to be asked for your own");
  Effects refused;
  refused.write.audit.push_back(Event("grant.handover_refused", caller,
                                      &decided.second, nullptr,
                                      "PERMISSION_DENIED", u.reason));
  Commit(refused).IgnoreError();
}

void RequestManager::NotifyAgent(const std::string& session_key,
                                 const NeedUpdate& update) {
  auto it = sessions_.find(session_key);
  if (it != sessions_.end() && it->second.listener) it->second.listener(update);
}

void RequestManager::Notify(const Effects& effects) {
  for (const auto& [session_key, update] : effects.agent_updates) {
    auto it = sessions_.find(session_key);
    if (it != sessions_.end() && it->second.listener)
      it->second.listener(update);
  }
  for (const WatchEvent& event : effects.watch_events) {
    for (const auto& [id, listener] : watchers_) listener(event);
  }
}

RequestView RequestManager::ViewOf(const RequestRecord& r) const {
  return ViewOf(r, credentials_->Get(r.provider, r.profile, 0));
}

RequestView RequestManager::ViewOf(
    const RequestRecord& r,
    const absl::StatusOr<CredentialSummary>& stored) const {
  RequestView v;
  v.record = r;
  auto it = sessions_.find(r.session_key);
  v.agent_connected =
      it != sessions_.end() && static_cast<bool>(it->second.listener);
  if (stored.ok()) v.credential_readiness = stored->readiness;
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

void RequestManager::Session::Record(const Caller& c) {
  if (!c.identified()) return;
  for (const Caller& known : processes) {
    if (known.SameProcess(c)) return;
  }
  if (processes.size() >= kMaxSessionProcesses)
    processes.erase(processes.begin());
  processes.push_back(c);
}

absl::StatusOr<int64_t> RequestManager::AttachSession(
    const std::string& session_key, const Caller& caller,
    AgentListener listener) {
  absl::MutexLock lock(&mu_);
  Session& session = sessions_[session_key];
  if (session.listener && !session.caller.SameProcess(caller)) {
    Effects refused;
    refused.write.audit.push_back(Event(
        "session.attach_refused", caller, nullptr, nullptr, "ALREADY_EXISTS",
        absl::StrCat("session ", session_key, " is attached by ",
                     session.caller.peer)));
    Commit(refused).IgnoreError();
    return absl::AlreadyExistsError(absl::StrCat(
        "session ", session_key, " is attached by another live stream (",
        session.caller.peer,
        "); a session belongs to one agent process. Use a session key of your "
        "own (or, if "
        "that agent just exited, try again in a moment)"));
  }
  bool was_away =
      !session.listener && session.disconnected_at != absl::InfiniteFuture();
  // Known before: another process taking the session over (not the first
  // attach, and not the same process coming back).
  const bool other_process =
      !session.caller.peer.empty() && !session.caller.SameProcess(caller);
  away_.erase({session.disconnected_at, session_key});
  if (other_process) {
    // SESSION-scope approvals were given to the process that asked: a new
    // process of the session is asked again.
    session.approvals.clear();
  }
  session.caller = caller;
  session.Record(caller);
  session.listener = std::move(listener);
  session.attachment = next_id_++;
  session.disconnected_at = absl::InfiniteFuture();
  if (was_away) {
    Effects effects;
    for (const RequestRecord* r : OpenInSession(session_key)) {
      WatchEvent e = MakeEvent(WatchEventKind::kAgentReconnected, ViewOf(*r));
      if (other_process) {
        e.message =
            absl::StrCat("re-attached from another process: ", caller.peer);
      }
      effects.watch_events.push_back(std::move(e));
    }
    if (other_process) {
      effects.write.audit.push_back(
          Event("session.reattached", caller, nullptr, nullptr, "ok",
                "by another process; session approvals dropped"));
      Commit(effects).IgnoreError();
    }
    Notify(effects);
  }
  return session.attachment;
}

void RequestManager::DetachSession(const std::string& session_key,
                                   int64_t attachment) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_key);
  if (it == sessions_.end() || it->second.attachment != attachment) return;
  it->second.listener = nullptr;
  it->second.disconnected_at = clock_();
  away_.insert({it->second.disconnected_at, session_key});
  Effects effects;
  for (const RequestRecord* r : OpenInSession(session_key)) {
    effects.watch_events.push_back(
        MakeEvent(WatchEventKind::kAgentDisconnected, ViewOf(*r)));
  }
  Notify(effects);
}

int64_t RequestManager::Watch(WatchListener listener) {
  absl::MutexLock lock(&mu_);
  int64_t id = next_id_++;
  for (const auto& [rid, r] : open_)
    listener(MakeEvent(WatchEventKind::kSnapshot, ViewOf(r)));
  listener(MakeEvent(WatchEventKind::kSnapshotDone, RequestView()));
  watchers_[id] = std::move(listener);
  return id;
}

void RequestManager::Unwatch(int64_t watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

std::vector<RequestView> RequestManager::PendingRequests() {
  absl::MutexLock lock(&mu_);
  std::vector<RequestView> out;
  for (const auto& [id, r] : open_) out.push_back(ViewOf(r));
  return out;
}

}  // namespace credbroker
