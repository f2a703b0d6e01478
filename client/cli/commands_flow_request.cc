// credctl request (agent token): asks for a credential as an agent and
// waits for the decision, printing the grant as JSON.
#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/commands_flow_internal.h"
#include "client/credbroker/agent.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {
namespace {

// Exit codes of `credctl request` for each refusal.
constexpr int kExitDenied = 3;
constexpr int kExitExpired = 4;
constexpr int kExitCancelled = 5;

// The need that `credctl request` sends, its session key, and in *seconds
// how long to wait for the decision, from its arguments; INVALID_ARGUMENT with
// the usage error's message.
absl::Status RequestFromArgs(const Args& args, client::CredentialNeeded* need,
                             std::string* session_key, int* seconds) {
  if (args.positional.size() != 1)
    return absl::InvalidArgumentError("request takes one PROVIDER");
  std::string action = args.Flag("action");
  if (action.empty())
    return absl::InvalidArgumentError("request needs --action TEXT");
  need->provider = args.positional[0];
  need->profile = args.Flag("profile");
  need->action = action;
  need->need_id = args.Flag(
      "need_id",
      absl::StrCat("credctl-", getpid(), "-", absl::ToUnixMillis(absl::Now())));
  for (const std::string& kv : args.All("context")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return absl::InvalidArgumentError("--context takes KEY=VALUE");
    need->context[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (args.Has("ttl")) {
    if (absl::Status s = ParseTtl(args.Flag("ttl"), &need->requested_ttl);
        !s.ok()) {
      return absl::InvalidArgumentError(s.message());
    }
  }
  *session_key = args.Flag("session_key");
  if (args.Has("timeout") &&
      (!absl::SimpleAtoi(args.Flag("timeout"), seconds) || *seconds <= 0)) {
    return absl::InvalidArgumentError(
        "--timeout takes a positive number of seconds");
  }
  return absl::OkStatus();
}

// Each update of the request while it waits, on standard error.
void PrintProgress(const client::NeedUpdate& u) {
  switch (u.state) {
    case client::RequestState::kPendingApproval:
      if (u.request_id.empty()) {  // A locked broker recorded nothing yet.
        std::cerr << "need " << u.need_id << ": " << u.message << std::endl;
        break;
      }
      std::cerr << "request " << u.request_id
                << ": pending approval (approve with `credctl approve "
                << u.request_id << "` or in `credctl watch`)" << std::endl;
      break;
    case client::RequestState::kNeedsInput:
      std::cerr << "request " << u.request_id << ": needs input, missing "
                << absl::StrJoin(u.missing_fields, ", ")
                << " (the approver fills them in)" << std::endl;
      break;
    default:
      std::cerr << "request " << u.request_id << ": " << StateText(u.state);
      if (!u.message.empty()) std::cerr << " — " << u.message;
      std::cerr << std::endl;
  }
}

// The decision: the grant as JSON on standard output, or the refusal on
// standard error; the exit code.
int PrintDecision(const client::NeedUpdate& u) {
  switch (u.state) {
    case client::RequestState::kGranted: {
      v1::Grant grant;
      if (u.grant.has_value()) client::internal::ToProto(*u.grant, &grant);
      std::cout << ToJson(grant) << std::endl;
      client::internal::WipeSecrets(grant);
      return 0;
    }
    case client::RequestState::kDenied:
      std::cerr << "credctl: request " << u.request_id
                << " was denied: " << u.reason << "\n";
      return kExitDenied;
    case client::RequestState::kExpired:
      std::cerr << "credctl: request " << u.request_id
                << " expired: " << u.reason << "\n";
      return kExitExpired;
    default:
      std::cerr << "credctl: request " << u.request_id << " "
                << StateText(u.state) << ": " << u.reason << "\n";
      return kExitCancelled;
  }
}

}  // namespace

int FlowCli::Request() {
  client::CredentialNeeded need;
  std::string session_key;
  int seconds = 900;
  if (absl::Status s = RequestFromArgs(args_, &need, &session_key, &seconds);
      !s.ok()) {
    return UsageError(std::string(s.message()));
  }
  absl::StatusOr<client::NeedUpdate> final_update = client::RequestCredential(
      ctx_.agent, need, session_key, absl::Seconds(seconds), PrintProgress);
  if (!final_update.ok()) {
    if (absl::IsDeadlineExceeded(final_update.status())) {
      std::cerr << "credctl: no decision within " << seconds << " s\n";
      return 1;
    }
    return PrintError(final_update.status());
  }
  return PrintDecision(*final_update);
}

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker
