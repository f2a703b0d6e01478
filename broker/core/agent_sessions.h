// AgentSessions is who the agents are: for each agent session, the stream
// attached to it (its listener), the processes seen in it, when its agent
// went away, and its SESSION-scope approvals; and which process asked for
// each open request and holds each grant. The self-approval check and the
// grant hand-over read it.
//
// Not thread-safe: it is a member of RequestManager, used only under the
// manager's lock, so that sessions, requests and grants change together.
// Tell calls the listener under that lock.
#ifndef CREDBROKER_BROKER_CORE_AGENT_SESSIONS_H_
#define CREDBROKER_BROKER_CORE_AGENT_SESSIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "broker/core/caller.h"

namespace credbroker {

struct NeedUpdate;

class AgentSessions {
 public:
  using Listener = std::function<void(const NeedUpdate&)>;

  // A session whose agent has been away `grace_period` is gone (GoneAt).
  explicit AgentSessions(absl::Duration grace_period);

  // --- Streams ---
  // The caller of the live stream attached to `key` when it is a process
  // other than `caller`; nullptr otherwise.
  const Caller* HeldByAnother(const std::string& key,
                              const Caller& caller) const;
  struct Attached {
    int64_t attachment = 0;      // For Detach.
    bool was_away = false;       // The agent came back within the grace.
    bool other_process = false;  // Another process than the known one: the
                                 // session's SESSION approvals were dropped.
  };
  // Attaches `listener` as `caller`'s stream to `key`, replacing any older
  // one, and ends the session's absence.
  Attached Attach(const std::string& key, const Caller& caller,
                  Listener listener);
  // The stream `attachment` ended at `now`: the grace period starts. False,
  // and nothing changes, when a newer stream replaced it.
  bool Detach(const std::string& key, int64_t attachment, absl::Time now);
  bool Connected(const std::string& key) const;
  // Gives `update` to the stream attached to `key`, if any.
  void Tell(const std::string& key, const NeedUpdate& update) const;

  // --- Who the agent is ---
  // `caller` asked for `request_id` in `key` (the session's agent, when it
  // has none yet).
  void RecordAsker(const std::string& key, const std::string& request_id,
                   const Caller& caller);
  void ForgetRequest(const std::string& request_id);
  // The processes that count as the agent of `request_id` of `key`: the one
  // that asked, the one attached now and every one recorded for the session.
  std::vector<const Caller*> AgentsOf(const std::string& key,
                                      const std::string& request_id) const;
  // The process a grant's values were handed to; nullptr when none yet.
  const Caller* HolderOf(const std::string& grant_id) const;
  void SetHolder(const std::string& grant_id, const Caller& caller);
  // The process attached to `key` now, if any, holds `grant_id`.
  void HandToAttached(const std::string& grant_id, const std::string& key);
  void ForgetGrant(const std::string& grant_id);

  // --- SESSION-scope approvals, by (provider, profile) ---
  // Until when `key` may be granted `provider`/`profile` without asking.
  std::optional<absl::Time> ApprovedUntil(const std::string& key,
                                          const std::string& provider,
                                          const std::string& profile) const;
  void Approve(const std::string& key, const std::string& provider,
               const std::string& profile, absl::Time until);
  void DropApproval(const std::string& key, const std::string& provider,
                    const std::string& profile);

  // --- Absence ---
  // After a restart: the agent of `key` (last seen as `peer`) is away from
  // `now`.
  void RestoreAway(const std::string& key, const std::string& peer,
                   absl::Time now);
  // Sessions whose agent has been away the grace period at `now`, the
  // longest away first.
  std::vector<std::string> GoneAt(absl::Time now) const;
  // Drops everything known of `key` (its requests' and grants' agents are
  // kept: they go with the request or grant).
  void Forget(const std::string& key);

 private:
  struct Session {
    Caller caller;
    // Every process that asked or attached in this session (the newest
    // kMaxProcesses): an approver running under any of them, or in the
    // terminal session or process group of one, is the agent.
    std::vector<Caller> processes;
    Listener listener;  // Empty while disconnected.
    int64_t attachment = 0;
    absl::Time disconnected_at = absl::InfiniteFuture();
    std::map<std::pair<std::string, std::string>, absl::Time> approvals;
  };
  static constexpr size_t kMaxProcesses = 32;
  // Adds `c` to `s.processes` unless it is there already or unidentified.
  static void RecordProcess(Session& s, const Caller& c);

  const absl::Duration grace_period_;
  std::map<std::string, Session> sessions_;
  // Sessions whose agent is away, by (disconnected_at, key).
  std::set<std::pair<absl::Time, std::string>> away_;
  // The kernel's view of the agent behind each open request and each active
  // grant (kept in memory: after a restart they are unknown).
  std::map<std::string, Caller> request_agents_;
  std::map<std::string, Caller> grant_agents_;
  int64_t next_attachment_ = 1;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_AGENT_SESSIONS_H_
