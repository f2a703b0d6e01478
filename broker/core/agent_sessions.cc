#include "broker/core/agent_sessions.h"

#include <utility>

#include "broker/core/requests.h"

namespace credbroker {

AgentSessions::AgentSessions(absl::Duration grace_period)
    : grace_period_(grace_period) {}

void AgentSessions::RecordProcess(Session& s, const Caller& c) {
  if (!c.identified()) return;
  for (const Caller& known : s.processes) {
    if (known.SameProcess(c)) return;
  }
  if (s.processes.size() >= kMaxProcesses)
    s.processes.erase(s.processes.begin());
  s.processes.push_back(c);
}

const Caller* AgentSessions::HeldByAnother(const std::string& key,
                                           const Caller& caller) const {
  auto it = sessions_.find(key);
  if (it == sessions_.end() || !it->second.listener ||
      it->second.caller.SameProcess(caller)) {
    return nullptr;
  }
  return &it->second.caller;
}

AgentSessions::Attached AgentSessions::Attach(const std::string& key,
                                              const Caller& caller,
                                              Listener listener) {
  Session& session = sessions_[key];
  Attached out;
  out.was_away =
      !session.listener && session.disconnected_at != absl::InfiniteFuture();
  // Known before: another process taking the session over (not the first
  // attach, and not the same process coming back).
  out.other_process =
      !session.caller.peer.empty() && !session.caller.SameProcess(caller);
  away_.erase({session.disconnected_at, key});
  if (out.other_process) {
    // SESSION-scope approvals were given to the process that asked: a new
    // process of the session is asked again.
    session.approvals.clear();
  }
  session.caller = caller;
  RecordProcess(session, caller);
  session.listener = std::move(listener);
  session.attachment = next_attachment_++;
  session.disconnected_at = absl::InfiniteFuture();
  out.attachment = session.attachment;
  return out;
}

bool AgentSessions::Detach(const std::string& key, int64_t attachment,
                           absl::Time now) {
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second.attachment != attachment) {
    return false;
  }
  it->second.listener = nullptr;
  it->second.disconnected_at = now;
  away_.insert({now, key});
  return true;
}

bool AgentSessions::Connected(const std::string& key) const {
  auto it = sessions_.find(key);
  return it != sessions_.end() && static_cast<bool>(it->second.listener);
}

void AgentSessions::Tell(const std::string& key,
                         const NeedUpdate& update) const {
  auto it = sessions_.find(key);
  if (it != sessions_.end() && it->second.listener) it->second.listener(update);
}

void AgentSessions::RecordAsker(const std::string& key,
                                const std::string& request_id,
                                const Caller& caller) {
  request_agents_[request_id] = caller;
  Session& session = sessions_[key];
  if (session.caller.peer.empty()) session.caller = caller;
  RecordProcess(session, caller);
}

void AgentSessions::ForgetRequest(const std::string& request_id) {
  request_agents_.erase(request_id);
}

std::vector<const Caller*> AgentSessions::AgentsOf(
    const std::string& key, const std::string& request_id) const {
  std::vector<const Caller*> agents;
  if (auto a = request_agents_.find(request_id); a != request_agents_.end()) {
    agents.push_back(&a->second);
  }
  if (auto s = sessions_.find(key); s != sessions_.end()) {
    agents.push_back(&s->second.caller);
    for (const Caller& c : s->second.processes) agents.push_back(&c);
  }
  return agents;
}

const Caller* AgentSessions::HolderOf(const std::string& grant_id) const {
  auto it = grant_agents_.find(grant_id);
  return it == grant_agents_.end() ? nullptr : &it->second;
}

void AgentSessions::SetHolder(const std::string& grant_id,
                              const Caller& caller) {
  grant_agents_[grant_id] = caller;
}

void AgentSessions::HandToAttached(const std::string& grant_id,
                                   const std::string& key) {
  auto it = sessions_.find(key);
  if (it != sessions_.end() && it->second.listener) {
    grant_agents_[grant_id] = it->second.caller;
  }
}

void AgentSessions::ForgetGrant(const std::string& grant_id) {
  grant_agents_.erase(grant_id);
}

std::optional<absl::Time> AgentSessions::ApprovedUntil(
    const std::string& key, const std::string& provider,
    const std::string& profile) const {
  auto s = sessions_.find(key);
  if (s == sessions_.end()) return std::nullopt;
  auto a = s->second.approvals.find({provider, profile});
  if (a == s->second.approvals.end()) return std::nullopt;
  return a->second;
}

void AgentSessions::Approve(const std::string& key, const std::string& provider,
                            const std::string& profile, absl::Time until) {
  sessions_[key].approvals[{provider, profile}] = until;
}

void AgentSessions::DropApproval(const std::string& key,
                                 const std::string& provider,
                                 const std::string& profile) {
  auto s = sessions_.find(key);
  if (s != sessions_.end()) s->second.approvals.erase({provider, profile});
}

void AgentSessions::RestoreAway(const std::string& key, const std::string& peer,
                                absl::Time now) {
  Session& session = sessions_[key];
  away_.erase({session.disconnected_at, key});
  session.disconnected_at = now;
  session.caller.peer = peer;
  away_.insert({now, key});
}

std::vector<std::string> AgentSessions::GoneAt(absl::Time now) const {
  std::vector<std::string> gone;
  for (auto it = away_.begin();
       it != away_.end() && it->first + grace_period_ <= now; ++it) {
    gone.push_back(it->second);
  }
  return gone;
}

void AgentSessions::Forget(const std::string& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  away_.erase({it->second.disconnected_at, key});
  sessions_.erase(it);
}

}  // namespace credbroker
