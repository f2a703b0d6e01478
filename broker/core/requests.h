// RequestManager is the approval flow: agents' credential needs, approvers'
// decisions, the grants that release credential values, session and
// standing approvals, expiry and the agent's grace period. It knows nothing
// of gRPC: agents and watchers are listeners it calls with updates.
//
// Thread-safe. Every method may block on the store (SQLite) and must not be
// called from a gRPC reactor. Listeners are called in event order: an
// agent's with the manager's lock held, watchers' after it is released
// (WatcherRegistry). Either must return quickly, must not block and must
// not call back into the manager.
#ifndef CREDBROKER_BROKER_CORE_REQUESTS_H_
#define CREDBROKER_BROKER_CORE_REQUESTS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/core/agent_sessions.h"
#include "broker/core/audit.h"
#include "broker/core/caller.h"
#include "broker/core/credentials.h"
#include "broker/core/row_mac.h"
#include "broker/core/watchers.h"
#include "broker/store/store.h"

namespace credbroker {

// Numbered as credbroker.v1.RequestState.
enum class RequestState {
  kUnspecified = 0,
  kPendingApproval = 1,
  kNeedsInput = 2,
  kGranted = 3,
  kDenied = 4,
  kExpired = 5,
  kCancelled = 6,
  kRevoked = 7,
};
absl::string_view RequestStateName(RequestState s);
bool IsTerminal(RequestState s);

// Numbered as credbroker.v1.Scope.
enum class Scope { kUnspecified = 0, kOnce = 1, kSession = 2, kStanding = 3 };
absl::string_view ScopeName(Scope s);

struct Need {
  std::string need_id;
  std::string provider;
  std::string profile;  // Empty: the default profile.
  std::string action;
  std::vector<std::pair<std::string, std::string>> context;
  absl::Duration requested_ttl = absl::ZeroDuration();
};

// Tells whether process `pid` is `ancestor` or one of its descendants
// (walking parent links); injected so tests need no real process tree.
using AncestryFn = std::function<bool(int64_t pid, const Caller& ancestor)>;

struct Grant {
  GrantRecord record;
  FieldValues values;
};

// What an agent hears about one need.
struct NeedUpdate {
  std::string need_id;
  std::string request_id;
  RequestState state = RequestState::kUnspecified;
  std::vector<std::string> missing_fields;
  std::optional<Grant> grant;  // With kGranted.
  std::string reason;          // With kDenied, kExpired, kCancelled, kRevoked.
  std::string message;
};

// A request as approvers see it.
struct RequestView {
  RequestRecord record;
  bool agent_connected = false;
  // The stored credential's readiness, read outside the manager's lock when
  // the view is handed out; none when no credential is stored for the
  // request's provider and profile.
  std::optional<Readiness> credential_readiness;
};

enum class WatchEventKind {
  kSnapshot = 1,
  kSnapshotDone = 2,
  kAdded = 3,
  kResolved = 4,
  kCancelled = 5,
  kExpired = 6,
  kAgentDisconnected = 7,
  kAgentReconnected = 8,
  // A grant was issued from a credential past its rotation period; sent
  // once per credential version.
  kRotationDue = 9,
};

struct WatchEvent {
  WatchEventKind kind = WatchEventKind::kSnapshot;
  RequestView request;
  std::optional<CredentialSummary> credential;  // kRotationDue: which one.
  std::string message;
};

// The context keys that name the resource a need acts on, in precedence
// order: the first present (and non-empty) one is the resource.
inline constexpr const char* kResourceContextKeys[] = {"resource", "cluster",
                                                       "cluster_id"};
// The resource `context` names, or "" when it names none.
std::string ResourceFromContext(
    const std::vector<std::pair<std::string, std::string>>& context);

struct FormField {
  FieldSpec spec;
  std::string current_value;  // Non-sensitive fields only.
  bool is_set = false;
};

struct Form {
  const ProviderSpec* provider = nullptr;
  std::string profile;
  std::vector<FormField> fields;
  std::optional<RequestView> request;
  std::vector<std::string> notes;
};

struct ApproveInput {
  std::string request_id;
  FieldValues values;  // Empty: use the stored credential.
  std::vector<std::string> generate;
  Scope scope = Scope::kOnce;
  absl::Duration ttl = absl::ZeroDuration();  // Zero: the scope's default.
  std::string action_pattern;                 // STANDING; empty: the action.
};

struct ApproveResult {
  std::string grant_id;
  std::string standing_id;
};

struct RequestOptions {
  absl::Duration pending_timeout = absl::Minutes(10);
  absl::Duration grace_period = absl::Seconds(60);
  absl::Duration once_ttl = absl::Minutes(15);
  absl::Duration session_ttl = absl::Hours(8);
  absl::Duration standing_ttl = absl::Hours(24 * 30);
  absl::Duration max_standing_ttl = absl::Hours(24 * 90);
  absl::Duration max_grant_ttl = absl::Hours(24);
  int max_open_per_session = 64;
  // Refuses an Approve or Deny from the requesting agent's process or its
  // descendants (an agent that runs commands must not approve itself).
  // Unset: no check.
  AncestryFn is_same_or_descendant;
};

class RequestManager {
 public:
  using AgentListener = std::function<void(const NeedUpdate&)>;
  using WatchListener = std::function<void(const WatchEvent&)>;

  // All pointers must outlive the manager. `sealer` signs every request,
  // grant and standing approval written (RowMacs).
  RequestManager(Store* store, CredentialManager* credentials, AuditLog* audit,
                 const Sealer* sealer, Clock clock, RequestOptions options);

  // Loads open requests, active grants and standing approvals from the
  // store. The agents of open requests count as disconnected from now: they
  // have the grace period to come back. A row whose MAC does not verify
  // (planted or edited in the database) is left out, never acted on: it is
  // named on stderr and in a DATA_LOSS audit event (row.refused).
  absl::Status Recover();

  // --- Agents ---
  // Attaches a live stream to `session_key` (replacing an older stream of
  // the same process). Returns the attachment id for DetachSession.
  // ALREADY_EXISTS (audited) while another process's stream is attached: a
  // session is not a bearer capability. A process other than the one that
  // left re-attaching drops the session's SESSION-scope approvals (they need
  // a new decision) and is shown to approvers.
  absl::StatusOr<int64_t> AttachSession(const std::string& session_key,
                                        const Caller& caller,
                                        AgentListener listener);
  // The stream ended. Open needs wait the grace period, then are cancelled.
  void DetachSession(const std::string& session_key, int64_t attachment);

  // The profile is the need's, else the one its resource (see
  // kResourceContextKeys) is bound to, else the provider's default; when
  // the bound credential changed, the request carries a binding note for
  // the approver. A grant for a need naming a resource binds the resource
  // to the granted profile (unless it is bound to another profile already)
  // and refreshes the binding's fingerprint.
  // Idempotent per (session_key, need_id): a repeated need returns the
  // state of the request it made (and the decision, if one was made). The
  // returned update is also given to the session's listener, if attached,
  // in order with every later update.
  // INVALID_ARGUMENT for a malformed need; RESOURCE_EXHAUSTED past the
  // per-session limit of open needs.
  absl::StatusOr<NeedUpdate> SubmitNeed(const std::string& session_key,
                                        const Caller& caller, Need need);
  // NOT_FOUND when the need is not open.
  absl::Status CancelNeed(const std::string& session_key,
                          const std::string& need_id, const Caller& caller);
  // Ends a grant early. NOT_FOUND, or FAILED_PRECONDITION when it already
  // ended; PERMISSION_DENIED when the grant was released to another process.
  absl::Status ReleaseGrant(const std::string& grant_id, const Caller& caller);

  // --- Approvers ---
  // Registers a watcher. The snapshot of pending requests is delivered to
  // `listener` (kSnapshot..., kSnapshotDone) before any live event.
  int64_t Watch(WatchListener listener);
  // The watcher's listener is never called again once Unwatch returns.
  void Unwatch(int64_t watcher);

  // The form for a request (request_id set) or for a stored credential.
  absl::StatusOr<Form> GetForm(const std::string& request_id,
                               const std::string& provider,
                               const std::string& profile);

  // The first decision wins: a decided request is FAILED_PRECONDITION naming
  // the decision. A decision from the requesting agent's own process tree is
  // PERMISSION_DENIED. Invalid values: INVALID_ARGUMENT with field violations,
  // the request stays pending. Values are stored as a new version in the
  // decision's transaction. When the decision cannot be recorded (with its
  // version and audit events), nothing is stored or released and the
  // request stays pending: UNAVAILABLE, or ABORTED when another version
  // of the credential was stored meanwhile (approve again).
  absl::StatusOr<ApproveResult> Approve(ApproveInput input,
                                        const Caller& caller);
  absl::Status Deny(const std::string& request_id, const std::string& reason,
                    const Caller& caller);
  // PERMISSION_DENIED when `caller` may not decide the open request
  // `request_id` (the self-approval check Approve makes); OK otherwise, and
  // for a request that is not open (Approve says why). Called before the
  // approval factor is checked, so that the agent's own processes cannot
  // spend the person's PIN attempts.
  absl::Status CheckMayDecide(const std::string& request_id,
                              const Caller& caller);

  absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const ListGrantsOptions& options);
  absl::Status RevokeGrant(const std::string& grant_id,
                           const std::string& reason, const Caller& caller);
  absl::StatusOr<std::vector<StandingRecord>> ListStanding();
  absl::Status RevokeStanding(const std::string& id, const Caller& caller);

  // Expires pending requests, cancels the needs of agents gone past the
  // grace period, drops expired grants. The daemon calls it periodically;
  // tests call it after moving the clock.
  void Tick();

  // Requests still open (pending approval or needing input).
  std::vector<RequestView> PendingRequests();

 private:
  // A change to apply: store writes plus the notifications they cause.
  struct Effects {
    FlowWrite write;
    std::vector<std::pair<std::string, NeedUpdate>> agent_updates;  // session
    std::vector<WatchEvent> watch_events;
  };

  // The readiness of stored credentials by (provider, profile); nullopt
  // when none is stored.
  using Readinesses =
      std::map<std::pair<std::string, std::string>, std::optional<Readiness>>;

  // Signs effects.write and writes it to the store in one transaction.
  absl::Status Commit(Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives effects.agent_updates to the agents' streams.
  void TellAgents(const Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without the lock: fills in the readiness of the credential each view
  // names (`known`: read by the caller already), then gives `events` to the
  // watchers at `ticket`'s turn (reserved under the lock, with the change).
  void Publish(WatcherRegistry::Ticket ticket, std::vector<WatchEvent> events,
               Readinesses known = {}) ABSL_LOCKS_EXCLUDED(mu_);
  // Sets view.credential_readiness from `read`, or reads it into `read`.
  void AddReadiness(RequestView& view, Readinesses& read)
      ABSL_LOCKS_EXCLUDED(mu_);
  // AttachSession's refusal (audited) while `holder` is attached.
  absl::Status RefuseAttach(const std::string& session_key,
                            const Caller& holder, const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  AuditRecord Event(absl::string_view kind, const Caller& caller,
                    const RequestRecord* request, const GrantRecord* grant,
                    absl::string_view outcome, std::string detail) const;
  // `r` as approvers see it, but for the credential's readiness (read
  // outside the lock: AddReadiness).
  RequestView ViewOf(const RequestRecord& r) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  NeedUpdate UpdateOf(const RequestRecord& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the current credential of request.provider/profile (or takes
  // `entered`, the version this decision writes) into a new grant; adds to
  // `effects` the resource binding it records and, when the credential is
  // due for rotation and watchers were not told about this version yet, a
  // kRotationDue event (`rotation_key` is then the meta key to mark it told
  // after the commit).
  absl::StatusOr<Grant> IssueGrant(
      const RequestRecord& request, Scope scope, absl::Duration ttl,
      absl::Time now, const Caller& caller, Effects& effects,
      std::string& rotation_key,
      std::optional<CredentialManager::StoredValues> entered = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a committed grant: remembers that watchers were told.
  void MarkRotationNotified(const std::string& rotation_key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const StandingRecord* MatchStanding(const RequestRecord& r,
                                      absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PERMISSION_DENIED (audited) when `caller` is the agent of `request_id`
  // or runs under it.
  // Why `caller` counts as the agent of `r` ("" when it does not): the
  // process that asked, or any process recorded for its session, is the
  // caller or an ancestor of it, or shares its process group or session.
  std::string SelfApprovalReason(const RequestRecord& r,
                                 const Caller& caller) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckNotSelfApproval(const RequestRecord& r,
                                    const Caller& caller,
                                    absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The open requests of one agent session, in need-id order.
  std::vector<const RequestRecord*> OpenInSession(
      const std::string& session_key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds to, and removes from, open_ and open_by_expiry_ together.
  void AddOpen(RequestRecord r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseOpen(const std::string& request_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A need resent after its grant was issued: `u` keeps the values only for
  // the process they were handed to (or the first to ask, when nobody got
  // them); anyone else gets a refusal (audited).
  void HandOver(const std::pair<const std::pair<std::string, std::string>,
                                RequestRecord>& decided,
                const Caller& caller, NeedUpdate& u)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recover's steps (requests_recover.cc): the rows read from the store
  // (those whose MAC does not verify left out, with an audit event each in
  // `refused`), and putting them in place.
  struct Loaded;
  absl::Status LoadRows(absl::Time now, Loaded& loaded, Effects& refused)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Install(Loaded& loaded, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SubmitNeed's steps (requests_submit.cc): the scope a need is granted
  // under without asking (kUnspecified when it must be asked), granting it,
  // or opening a request for the user to decide.
  Scope AutoScope(const RequestRecord& r, absl::Time now, std::string& detail)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<NeedUpdate> GrantWithoutAsking(RequestRecord r, Scope scope,
                                                const std::string& detail,
                                                absl::Time now,
                                                const Caller& caller,
                                                Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<NeedUpdate> OpenRequest(
      RequestRecord r, bool usable,
      const absl::StatusOr<CredentialSummary>& stored, const ProviderSpec& spec,
      const Caller& caller, Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The answer to a need sent again (see SubmitNeed); nullopt for a new one.
  std::optional<NeedUpdate> Resent(const std::string& session_key,
                                   const std::string& need_id,
                                   const Caller& caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when the session has its limit of open needs.
  absl::Status CheckRoom(const std::string& session_key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Approve's steps (requests_decide.cc). The open request `request_id`,
  // not past its expiry: NOT_FOUND or FAILED_PRECONDITION otherwise.
  absl::StatusOr<RequestRecord> OpenToDecide(
      const std::string& request_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<absl::Duration> ApproveTtl(ApproveInput& input) const;
  absl::Status PutOrCheckValues(
      ApproveInput& input, const RequestRecord& r, const Caller& caller,
      Effects& effects, std::optional<CredentialManager::StoredValues>& entered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<ApproveResult> GrantApproved(
      RequestRecord r, Scope scope, absl::Duration ttl,
      const std::string& pattern, const Caller& caller, Effects& effects,
      std::optional<CredentialManager::StoredValues> entered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a standing approval to `effects`; returns its id.
  std::string AddStanding(const RequestRecord& r, const std::string& pattern,
                          absl::Time now, absl::Duration ttl,
                          const Caller& caller, Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a committed approval: the in-memory state, and the agent's
  // update added to `effects`.
  void RecordApproval(const RequestRecord& r, Grant grant, Scope scope,
                      const std::string& decision, Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // IssueGrant's rotation-due event (see IssueGrant).
  void NoteRotationDue(const RequestRecord& request, const GrantRecord& g,
                       const CredentialManager::StoredValues& values,
                       const Caller& caller, Effects& effects,
                       std::string& rotation_key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tick's steps (requests_grants.cc). CloseDue closes the requests past
  // their timeout or whose agent is gone; false when that cannot be
  // recorded (nothing changed).
  bool CloseDue(absl::Time now, Effects& effects)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetAwaySessions(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(RequestRecord& r, RequestState state, std::string decision,
             absl::string_view audit_kind, const Caller& caller,
             Effects& effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  CredentialManager* const credentials_;
  AuditLog* const audit_;
  const RowMacs rows_;
  const Clock clock_;
  const RequestOptions options_;

  // Guards the requests, grants and approvals below and sessions_; taken
  // before watchers_'s own lock (see WatcherRegistry).
  absl::Mutex mu_;
  // Open requests by id, and their (session_key, need_id) index.
  std::map<std::string, RequestRecord> open_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, std::string> by_need_
      ABSL_GUARDED_BY(mu_);
  // What Tick looks at, so that a tick costs what is due rather than every
  // open request: open requests by (expires_at, request_id). (Sessions whose
  // agent is away: sessions_.GoneAt.)
  std::set<std::pair<absl::Time, std::string>> open_by_expiry_
      ABSL_GUARDED_BY(mu_);
  // Decided requests of live sessions, by (session_key, need_id), so that a
  // re-sent need gets its decision.
  std::map<std::pair<std::string, std::string>, RequestRecord> decided_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, GrantRecord> active_grants_ ABSL_GUARDED_BY(mu_);
  std::vector<StandingRecord> standing_ ABSL_GUARDED_BY(mu_);
  // Keys "rotation_notified/<provider>/<profile>/<version>" of credential
  // versions watchers were told are due (also kept in the store's meta).
  std::set<std::string> rotation_notified_ ABSL_GUARDED_BY(mu_);
  // The agents: their streams, processes, absences, SESSION approvals.
  AgentSessions sessions_ ABSL_GUARDED_BY(mu_);
  // The approvers' watchers; thread-safe on its own.
  WatcherRegistry watchers_;
};

// Case-insensitive glob: '*' any run, '?' one character.
bool ActionMatches(absl::string_view pattern, absl::string_view action);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_REQUESTS_H_
