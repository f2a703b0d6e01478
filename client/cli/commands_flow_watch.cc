// credctl watch (approver token): the approval client. It shows each
// request as it comes and asks what to do with it on a terminal, or prints
// each event as a line without one.
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli/commands_flow_internal.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {
namespace {

using Kind = client::ApprovalEvent::Kind;

std::string KindText(Kind k) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(client::ApprovalEventKindName(k), "KIND_"));
}

// A credential past its rotation period was just used for a grant.
std::string RotationDueLine(const client::ApprovalEvent& e) {
  const client::CredentialSummary c =
      e.credential.value_or(client::CredentialSummary());
  return absl::StrCat("rotation_due  ", c.provider, "/", c.profile, " version ",
                      c.version, "  ", e.message);
}

// The event's request (an empty one when it has none: kSnapshotDone).
const client::ApprovalRequest& RequestOf(const client::ApprovalEvent& e) {
  static const client::ApprovalRequest* const kNone =
      new client::ApprovalRequest();
  return e.request.has_value() ? *e.request : *kNone;
}

// Asks for the approval's scope, its TTL and, for a standing approval, the
// actions it covers, into `req`. False when the input ended.
bool AskApprovalTerms(const client::ApprovalRequest& r, client::Approval* req) {
  while (true) {
    std::optional<std::string> scope =
        Prompt("Scope: once, session, standing [once]", false);
    if (!scope) return false;
    absl::StatusOr<client::Scope> parsed =
        ParseScope(std::string(absl::StripAsciiWhitespace(*scope)));
    if (parsed.ok()) {
      req->scope = *parsed;
      break;
    }
    std::cerr << "  " << parsed.status().message() << "\n";
  }
  while (true) {
    std::optional<std::string> ttl = Prompt(
        "For how long (e.g. 15m, 2h, 720h; empty: the scope's default)", false);
    if (!ttl) return false;
    absl::Status s =
        ParseTtl(std::string(absl::StripAsciiWhitespace(*ttl)), &req->ttl);
    if (s.ok()) break;
    std::cerr << "  " << s.message() << "\n";
  }
  if (req->scope == client::Scope::kStanding) {
    std::optional<std::string> pattern =
        Prompt(absl::StrCat("Actions it covers (* matches anything) [",
                            EscapeForTerminal(r.need.action), "]"),
               false);
    if (!pattern) return false;
    req->action_pattern = std::string(absl::StripAsciiWhitespace(*pattern));
  }
  return true;
}

}  // namespace

void FlowCli::PrintEventLine(const client::ApprovalEvent& e) {
  if (json()) {
    std::cout << ToJson(client::internal::AsProto<v1::ApprovalEvent>(e),
                        /*compact=*/true)
              << std::endl;
    return;
  }
  if (e.kind == Kind::kSnapshotDone) {
    std::cout << "snapshot_done" << std::endl;
    return;
  }
  if (e.kind == Kind::kRotationDue) {
    std::cout << RotationDueLine(e) << std::endl;
    return;
  }
  const client::ApprovalRequest& r = RequestOf(e);
  std::cout << KindText(e.kind) << "  " << RequestLine(r) << "  "
            << StateText(r.state);
  if (!r.missing_fields.empty()) {
    std::cout << " (missing " << absl::StrJoin(r.missing_fields, ", ") << ")";
  }
  if (!r.binding_note.empty())
    std::cout << "  note: " << EscapeForTerminal(r.binding_note);
  if (!r.decision.empty()) {
    std::cout << "  " << EscapeForTerminal(r.decision);
  } else {
    std::cout << "  expires " << Relative(r.expires_at) << ", agent "
              << (r.agent_connected ? "connected" : "disconnected");
  }
  std::cout << std::endl;
}

int FlowCli::Watch() {
  const bool interactive = StdinIsTerminal() && !json();
  while (true) {
    WatchState state;
    absl::StatusOr<std::unique_ptr<client::Watcher>> watcher = approval().Watch(
        [&state](const client::ApprovalEvent& e) {
          absl::MutexLock lock(&state.mu);
          const std::string& id = RequestOf(e).request_id;
          switch (e.kind) {
            case Kind::kSnapshot:
            case Kind::kAdded:
            case Kind::kAgentDisconnected:
            case Kind::kAgentReconnected:
              state.open[id] = RequestOf(e);
              break;
            case Kind::kResolved:
            case Kind::kCancelled:
            case Kind::kExpired:
              state.open.erase(id);
              break;
            default:
              break;
          }
          state.events.push_back(e);
        },
        [&state](const absl::Status& s) {
          absl::MutexLock lock(&state.mu);
          state.end = s;
        });
    if (!watcher.ok()) return PrintError(watcher.status());
    if (interactive) {
      std::cerr << "Watching for credential requests (Ctrl-C to stop).\n";
    }
    absl::Status end = WatchLoop(state, interactive);
    watcher->reset();
    if (absl::IsResourceExhausted(end)) {
      std::cerr << "credctl: fell behind the broker's events; watching again\n";
      continue;
    }
    if (end.ok() || absl::IsCancelled(end)) return 0;
    return PrintError(end);
  }
}

absl::Status FlowCli::WatchLoop(WatchState& state, bool interactive) {
  while (true) {
    std::optional<client::ApprovalEvent> event;
    {
      absl::MutexLock lock(&state.mu);
      auto ready = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
        return !state.events.empty() || state.end.has_value();
      };
      state.mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      if (!state.events.empty()) {
        event = std::move(state.events.front());
        state.events.pop_front();
      } else if (state.end.has_value()) {
        return *state.end;
      }
    }
    if (!event.has_value()) continue;
    if (!interactive) {
      PrintEventLine(*event);
      continue;
    }
    const client::ApprovalRequest& r = RequestOf(*event);
    switch (event->kind) {
      case Kind::kSnapshot:
      case Kind::kAdded: {
        bool open;
        {
          absl::MutexLock lock(&state.mu);
          open = state.open.count(r.request_id) > 0;
        }
        if (!open) break;  // Resolved meanwhile; that event follows.
        std::cerr << "\nCredential request:\n";
        PrintRequest(r, std::cerr);
        if (!Decide(state, r)) return absl::OkStatus();
        break;
      }
      case Kind::kSnapshotDone:
        break;
      case Kind::kResolved:
      case Kind::kCancelled:
      case Kind::kExpired:
        std::cerr << "  " << r.request_id << " " << KindText(event->kind)
                  << ": " << EscapeForTerminal(r.decision) << "\n";
        break;
      case Kind::kAgentDisconnected:
        std::cerr << "  " << r.request_id << ": the agent disconnected\n";
        break;
      case Kind::kAgentReconnected:
        std::cerr << "  " << r.request_id << ": the agent is back\n";
        break;
      case Kind::kRotationDue:
        std::cerr << "  " << RotationDueLine(*event) << "\n";
        break;
      default:
        break;
    }
  }
}

bool FlowCli::Decide(WatchState& state, const client::ApprovalRequest& r) {
  while (true) {
    std::optional<std::string> answer =
        Prompt("[a]pprove, [d]eny, [s]kip, [f]orm", false);
    if (!answer) return false;
    std::string a = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*answer));
    {
      absl::MutexLock lock(&state.mu);
      if (state.open.count(r.request_id) == 0) {
        std::cerr << "  " << r.request_id
                  << " was resolved elsewhere meanwhile.\n";
        return true;
      }
    }
    if (a == "s" || a == "skip") {
      std::cerr << "  Skipped; later: credctl approve " << r.request_id << "\n";
      return true;
    }
    if (a == "f" || a == "form") {
      client::FormQuery query;
      query.request_id = r.request_id;
      absl::StatusOr<client::CredentialForm> form = approval().GetForm(query);
      if (!form.ok()) {
        PrintError(form.status());
      } else {
        PrintForm(*form);
      }
      continue;
    }
    if (a == "d" || a == "deny") {
      std::optional<std::string> reason =
          Prompt("Reason (the agent sees it)", false);
      if (!reason) return false;
      absl::Status s = approval().Deny(r.request_id, *reason);
      if (!s.ok()) {
        PrintError(s);
      } else {
        std::cerr << "  Denied.\n";
      }
      return true;
    }
    if (a == "a" || a == "approve") {
      std::optional<bool> done = ApproveInteractively(r);
      if (!done.has_value()) return false;
      if (*done) return true;
      continue;
    }
    std::cerr << "  Answer a, d, s or f.\n";
  }
}

std::optional<bool> FlowCli::ApproveInteractively(
    const client::ApprovalRequest& r) {
  client::Approval req;
  req.request_id = r.request_id;
  bool fill = r.state == client::RequestState::kNeedsInput;
  if (!fill) {
    std::optional<std::string> update =
        Prompt("Use the stored credential? [Y/n] (n: enter new values)", false);
    if (!update) return std::nullopt;
    fill = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*update)) == "n";
  }
  if (fill) {
    client::FormQuery query;
    query.request_id = r.request_id;
    absl::StatusOr<client::CredentialForm> form = approval().GetForm(query);
    if (!form.ok()) {
      PrintError(form.status());
      return true;
    }
    absl::Status s = FillForm(*form, &req);
    if (absl::IsCancelled(s)) return std::nullopt;
    if (!s.ok()) {
      PrintError(s);
      return false;
    }
  }
  if (!AskApprovalTerms(r, &req)) return std::nullopt;
  return SendApproval(req);
}

std::optional<bool> FlowCli::SendApproval(client::Approval& req) {
  if (absl::Status s = AddPin(&req); !s.ok()) {
    PrintError(s);
    return true;
  }
  absl::StatusOr<client::ApprovalResult> result = approval().Approve(req);
  if (!result.ok()) {
    PrintError(result.status());
    // Bad values: the request stays pending; try again.
    return !absl::IsInvalidArgument(result.status());
  }
  std::cerr << "  Approved: grant " << result->grant_id;
  if (!result->standing_approval_id.empty()) {
    std::cerr << ", standing approval " << result->standing_approval_id;
  }
  std::cerr << "\n";
  return true;
}

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker
