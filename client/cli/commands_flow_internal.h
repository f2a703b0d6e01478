// Helpers shared by the files that define credctl's approval-flow
// commands (commands_flow*.cc): the text of requests and forms, scope and
// TTL parsing, and FlowCli, the class whose methods run each command. Not
// part of credctl's other command groups.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_INTERNAL_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_INTERNAL_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli/cli_util.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace cli {
namespace flow_internal {

// "pending_approval", "granted", ...; "once", "session", "standing".
std::string StateText(client::RequestState s);
std::string ScopeText(client::Scope s);
// One line for a request: id, provider/profile, action, context.
std::string RequestLine(const client::ApprovalRequest& r);
// The request in full, for a person deciding on it.
void PrintRequest(const client::ApprovalRequest& r, std::ostream& out);
absl::StatusOr<client::Scope> ParseScope(const std::string& text);
// A positive duration in whole seconds into *out; empty text leaves it.
absl::Status ParseTtl(const std::string& text, absl::Duration* out);
// Asks for the form's fields on the terminal. Empty answers keep stored
// values (sensitive fields) or the current / default value; multiline
// fields (key files) are read from a path.
absl::Status FillForm(const client::CredentialForm& form,
                      client::Approval* req);
void PrintForm(const client::CredentialForm& form);

// Runs one approval-flow command: Run in commands_flow.cc; pending, form,
// approve and deny in commands_flow_decide.cc; grants, revoke and standing
// in commands_flow_grants.cc; watch in commands_flow_watch.cc; request in
// commands_flow_request.cc.
class FlowCli {
 public:
  FlowCli(const Args& args, const Context& ctx) : args_(args), ctx_(ctx) {}

  int Run();

 private:
  bool json() const { return args_.Switch("json"); }
  client::ApprovalClient& approval() { return **approval_; }
  client::CredentialClient& credentials() { return **credentials_; }

  int Pending();
  int Form();
  // Values from --field NAME=VALUE, --field NAME (prompted, hidden when the
  // form says sensitive) and --generate NAME.
  absl::Status CollectValues(const std::string& request_id,
                             client::Approval* req);
  // Asks for the approval PIN (--pin_fd, or the terminal) and puts it in
  // `req`. At first use, when none is set yet, has the person choose one.
  // Without a terminal nothing is asked: the broker then refuses the
  // approval and says what is missing.
  absl::Status AddPin(client::Approval* req);
  int Approve();
  int Deny();

  int Grants();
  int Revoke();
  int Standing();

  // --- watch ---

  // Events from the watcher's reader thread, consumed by the main thread.
  struct WatchState {
    absl::Mutex mu;
    std::deque<client::ApprovalEvent> events ABSL_GUARDED_BY(mu);
    std::optional<absl::Status> end ABSL_GUARDED_BY(mu);
    // Requests still open, as last seen.
    std::map<std::string, client::ApprovalRequest> open ABSL_GUARDED_BY(mu);
  };

  void PrintEventLine(const client::ApprovalEvent& e);
  int Watch();
  // Consumes events until the stream ends (its status) or, interactively,
  // the input ends (OK).
  absl::Status WatchLoop(WatchState& state, bool interactive);
  // Asks what to do with one request. False when the input ended.
  bool Decide(WatchState& state, const client::ApprovalRequest& r);
  // nullopt: input ended; true: decided (or failed for good); false: ask again.
  std::optional<bool> ApproveInteractively(const client::ApprovalRequest& r);
  // Adds the PIN to `req` and sends the approval (ApproveInteractively's
  // last step); the same answers.
  std::optional<bool> SendApproval(client::Approval& req);

  // --- request (as the agent) ---

  int Request();

  const Args& args_;
  const Context& ctx_;
  absl::StatusOr<std::unique_ptr<client::ApprovalClient>> approval_;
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> credentials_;
};

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_INTERNAL_H_
