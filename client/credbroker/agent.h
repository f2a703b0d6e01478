// The agent's side of credbroker: a long-lived CredentialBroker.Session on
// which an agent announces credential needs and receives, for each, updates
// up to a decision (GRANTED, DENIED, EXPIRED, CANCELLED) and later a
// REVOKED when the approver ends a grant. Needs the agent token. No gRPC
// type appears here; errors are absl::Status with the broker's code and
// message.
//
// An AgentSession is safe for concurrent use from several threads. Updates
// are read by one dedicated thread per session, which calls the update
// callback (in stream order, with no lock held) and wakes WaitFor callers.
// The callback may call SendNeed, Cancel and ReleaseGrant, but not Close or
// the destructor.
//
// When the broker restarts its listeners (an unlock, a lock, a rekey: the
// stream ends UNAVAILABLE "... reconnect now ..."), the session opens a new
// stream and sends its undecided needs again: with a session key the broker
// re-attaches them; without one, only needs a locked broker answered
// (PENDING_APPROVAL with no request id: nothing was recorded) are sent.
#ifndef CREDBROKER_CLIENT_CREDBROKER_AGENT_H_
#define CREDBROKER_CLIENT_CREDBROKER_AGENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"
#include "client/credbroker/types.h"

namespace credbroker {
namespace client {

// Where one of the agent's needs stands, as the broker tells it.
struct NeedUpdate {
  std::string need_id;     // The agent's id of the need.
  std::string request_id;  // The broker's id of the request it made.
  RequestState state = RequestState::kUnspecified;
  // With kNeedsInput: the fields the approver must enter.
  std::vector<std::string> missing_fields;
  std::optional<Grant> grant;  // With kGranted; its values are secrets.
  // With kDenied, kCancelled, kExpired, kRevoked, kRejected.
  std::string reason;
  std::string message;  // The state in words, for the agent's logs.
  std::string error_code;
  std::vector<Finding> field_errors;
};

// Whether an agent can stop waiting on a need in this state: GRANTED,
// DENIED, EXPIRED, CANCELLED or REVOKED.
bool IsDecided(RequestState state);

class AgentSession {
 public:
  using UpdateCallback = std::function<void(const NeedUpdate&)>;
  // Called once, on the reader thread, when the stream has ended: OK after
  // Close, otherwise why the broker or the transport ended it.
  using EndCallback = std::function<void(const absl::Status&)>;

  struct SessionOptions {
    // Reusing a session key within the broker's grace period re-attaches to
    // the session's open needs. Empty: the broker picks one.
    std::string session_key;
    std::string agent_name;
    UpdateCallback on_update;  // May be empty.
    EndCallback on_end;        // May be empty.
  };

  // Opens the stream and sends the hello. `options.timeout` bounds the
  // connection and each unary call; the stream itself has no deadline.
  // UNAVAILABLE when the broker cannot be reached, UNAUTHENTICATED /
  // PERMISSION_DENIED for a wrong token.
  static absl::StatusOr<std::unique_ptr<AgentSession>> Connect(
      const Options& options, SessionOptions session);
  // Convenience: no callbacks.
  static absl::StatusOr<std::unique_ptr<AgentSession>> Connect(
      const Options& options, const std::string& session_key);

  // Cancels the stream if still open and waits for the reader thread.
  ~AgentSession();
  AgentSession(const AgentSession&) = delete;
  AgentSession& operator=(const AgentSession&) = delete;

  // Announces a need. The broker answers with updates for need.need_id.
  // Re-sending a need_id returns the state of the request it made.
  // FAILED_PRECONDITION when the stream has ended (with its status).
  absl::Status SendNeed(const CredentialNeeded& need);
  // The agent no longer needs `need_id`.
  absl::Status Cancel(const std::string& need_id);
  // Ends a grant early (unary call, with the options' deadline).
  absl::Status ReleaseGrant(const std::string& grant_id);

  // Blocks until `need_id` has a decided update (IsDecided) and returns the
  // first one not yet returned by WaitFor for this need (so a second call
  // after GRANTED waits for a REVOKED). DEADLINE_EXCEEDED after `timeout`;
  // the stream's end status when it ends first.
  absl::StatusOr<NeedUpdate> WaitFor(const std::string& need_id,
                                     absl::Duration timeout);
  // Blocks until `need_id` has an update in `state` (any state, e.g.
  // PENDING_APPROVAL) and returns the latest such update.
  absl::StatusOr<NeedUpdate> WaitForState(const std::string& need_id,
                                          RequestState state,
                                          absl::Duration timeout);
  // Every update received so far for `need_id`, in order.
  std::vector<NeedUpdate> Updates(const std::string& need_id) const;

  // Half-closes the stream (the broker then ends it; open needs start their
  // grace period) and waits, bounded by the options' timeout, for the end.
  // Returns the stream's final status.
  absl::Status Close();
  // Ends the stream abruptly, as a crashed agent would.
  void Abort();
  // The stream's end status, once it has ended.
  std::optional<absl::Status> EndStatus() const;

 private:
  struct Impl;
  explicit AgentSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One need over CredentialBroker.RequestCredential (a server stream ended by
// the broker after the decision), under `session_key` (empty: the broker
// picks one). Calls `on_update` (may be empty) with
// every update, on the calling thread, and returns the decided update.
// `timeout` is the deadline of the whole call (DEADLINE_EXCEEDED). A locked
// broker answers PENDING_APPROVAL with no request id and ends the stream
// UNAVAILABLE at the unlock: the need is then sent again, on a new
// connection, to the unlocked broker.
absl::StatusOr<NeedUpdate> RequestCredential(
    const Options& options, const CredentialNeeded& need,
    const std::string& session_key, absl::Duration timeout,
    const std::function<void(const NeedUpdate&)>& on_update = nullptr);

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_AGENT_H_
