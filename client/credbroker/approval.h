// The approver's side of the credential-needed flow: watch pending
// requests, get a request's form, approve or deny. Needs the approver token.
// Grants and standing approvals are managed with CredentialClient. No gRPC
// type appears here; errors are absl::Status with the broker's code and
// message (field violations readable with credbroker::GetFieldViolations).
//
// An ApprovalClient is safe for concurrent use from several threads. Each
// Watcher reads its stream on one dedicated thread, which calls its
// callbacks in stream order.
#ifndef CREDBROKER_CLIENT_CREDBROKER_APPROVAL_H_
#define CREDBROKER_CLIENT_CREDBROKER_APPROVAL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"
#include "client/credbroker/types.h"
#include "common/secret.h"

namespace credbroker {
namespace client {

// One event of a watch (see Watcher).
struct ApprovalEvent {
  enum class Kind {
    kUnspecified = 0,
    kSnapshot = 1,      // One per request pending when the watch began.
    kSnapshotDone = 2,  // The snapshot is complete.
    kAdded = 3,         // A new request waits for a decision.
    kResolved = 4,
    kCancelled = 5,
    kExpired = 6,  // No decision before the pending timeout.
    kAgentDisconnected = 7,
    kAgentReconnected = 8,  // The asking agent is back.
    kRotationDue = 9,
  };
  Kind kind = Kind::kUnspecified;
  // The request concerned; unset with kSnapshotDone.
  std::optional<ApprovalRequest> request;
  std::optional<CredentialSummary> credential;  // kRotationDue: masked.
  std::string message;  // kRotationDue: what to do, in words.
};

// The wire's name ("KIND_ADDED", ...), for printing.
absl::string_view ApprovalEventKindName(ApprovalEvent::Kind kind);

// Which form GetForm returns: a pending request's (request_id), or a
// provider's (provider, profile; empty profile: the provider's default).
struct FormQuery {
  std::string request_id;
  std::string provider;
  std::string profile;
};

// One field of a credential form.
struct FormField {
  FieldSpec spec;             // The field as the provider defines it.
  std::string current_value;  // Non-sensitive fields only.
  bool is_set = false;  // A value is stored (the only sign of a sensitive one).
};

// What an approver fills in for a provider/profile.
struct CredentialForm {
  std::string provider;           // ProviderInfo.id.
  std::string profile;            // The profile the values are for (resolved).
  std::string display_name;       // The provider's, e.g. "Amazon Web Services".
  std::vector<FormField> fields;  // In form order.
  std::vector<std::string> how_to_get;
  std::vector<std::string> required_permissions;
  // Set when the form was asked for a request.
  std::optional<ApprovalRequest> request;
  bool oauth = false;
  std::vector<std::string> notes;
};

// An approval of one pending request (ApprovalService.Approve).
struct Approval {
  std::string request_id;  // ApprovalRequest.request_id.
  FieldValues values;      // Values to store first (the missing fields...).
  Scope scope = Scope::kUnspecified;          // Unspecified: kOnce.
  absl::Duration ttl = absl::ZeroDuration();  // Zero: the broker's default.
  std::string action_pattern;                 // kStanding: actions covered.
  SecretBytes pin;                            // The approval PIN, if set.
  std::vector<std::string> generate;          // Fields the broker generates.
  std::optional<PasskeyAssertion> passkey;    // Instead of the PIN.
};

// What an approval made.
struct ApprovalResult {
  std::string grant_id;              // The grant sent to the agent.
  std::string standing_approval_id;  // With kStanding.
};

// One ApprovalService.WatchRequests stream: a snapshot of the pending
// requests (KIND_SNAPSHOT..., KIND_SNAPSHOT_DONE), then live events, until
// cancelled or ended by the broker (RESOURCE_EXHAUSTED when it fell too far
// behind: watch again for a fresh snapshot).
class Watcher {
 public:
  using EventCallback = std::function<void(const ApprovalEvent&)>;
  using EndCallback = std::function<void(const absl::Status&)>;

  // Cancels the stream and waits for the reader thread. Must not be called
  // from a callback.
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Ends the stream; the end callback then sees CANCELLED.
  void Cancel();
  // Blocks until the stream has ended, at most `timeout`; its end status,
  // or nullopt when it is still open.
  std::optional<absl::Status> WaitForEnd(absl::Duration timeout);

 private:
  friend class ApprovalClient;
  struct Impl;
  explicit Watcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ApprovalClient {
 public:
  // Creates the channel; nothing is sent until the first call.
  static absl::StatusOr<std::unique_ptr<ApprovalClient>> Connect(
      const Options& options);
  ~ApprovalClient();

  // Starts watching. `on_event` is called for every event, `on_end` (may be
  // empty) once when the stream ends. The stream has no deadline; the
  // connection is bounded by the options' timeout (UNAVAILABLE).
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(
      Watcher::EventCallback on_event, Watcher::EndCallback on_end = nullptr);

  // The requests pending now: the snapshot of a watch that is then ended.
  absl::StatusOr<std::vector<ApprovalRequest>> ListPending();

  // Unary calls, each with the options' deadline.
  absl::StatusOr<CredentialForm> GetForm(const FormQuery& query);
  // FAILED_PRECONDITION naming the decision when the request was already
  // decided; INVALID_ARGUMENT with field violations for bad values (the
  // request stays pending).
  absl::StatusOr<ApprovalResult> Approve(const Approval& approval);
  absl::Status Deny(const std::string& request_id, const std::string& reason);
  // A challenge for approving `request_id` with a passkey
  // (Approval.passkey).
  absl::StatusOr<PasskeyChallenge> BeginPasskeyAssertion(
      const std::string& request_id);

 private:
  struct Impl;
  explicit ApprovalClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_APPROVAL_H_
