#include "client/cli/commands_flow.h"

#include <unistd.h>

#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/errors.h"
#include "broker/common/text.h"
#include "broker/common/files.h"
#include "broker/common/secret.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace cli {
namespace {

// Exit codes of `credctl request` for each refusal.
constexpr int kExitDenied = 3;
constexpr int kExitExpired = 4;
constexpr int kExitCancelled = 5;

std::string StateText(v1::RequestState s) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::RequestState_Name(s), "REQUEST_STATE_"));
}

std::string KindText(v1::ApprovalEvent::Kind k) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::ApprovalEvent::Kind_Name(k), "KIND_"));
}

std::string ScopeText(v1::Scope s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::Scope_Name(s), "SCOPE_"));
}

std::string ContextText(const v1::CredentialNeeded& need) {
  std::map<std::string, std::string> sorted(need.context().begin(),
                                            need.context().end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : sorted) {
    parts.push_back(absl::StrCat(EscapeForTerminal(k), "=", EscapeForTerminal(v)));
  }
  return absl::StrJoin(parts, " ");
}

std::string ProfileOf(const v1::CredentialNeeded& need) {
  return need.profile().empty() ? "default" : need.profile();
}

// One line for a request: id, provider/profile, action, context.
std::string RequestLine(const v1::ApprovalRequest& r) {
  std::string line =
      absl::StrCat(r.request_id(), "  ", EscapeForTerminal(r.need().provider()), "/",
                   EscapeForTerminal(ProfileOf(r.need())), "  \"",
                   EscapeForTerminal(r.need().action()), "\"");
  std::string context = ContextText(r.need());
  if (!context.empty()) absl::StrAppend(&line, "  [", context, "]");
  return line;
}

// The request in full, for a person deciding on it.
void PrintRequest(const v1::ApprovalRequest& r, std::ostream& out) {
  out << RequestLine(r) << "\n"
      << "  state " << StateText(r.state()) << ", expires "
      << Relative(r.expires_at()) << " (" << FormatTime(r.expires_at())
      << " UTC), agent "
      << (r.agent_connected() ? "connected" : "disconnected");
  if (!r.agent_peer().empty()) out << " (" << EscapeForTerminal(r.agent_peer()) << ")";
  out << "\n";
  if (!r.missing_fields().empty()) {
    out << "  missing: " << absl::StrJoin(r.missing_fields(), ", ") << "\n";
  }
  if (!r.binding_note().empty()) out << "  note: " << EscapeForTerminal(r.binding_note()) << "\n";
  if (!r.decision().empty()) out << "  decision: " << EscapeForTerminal(r.decision()) << "\n";
}

// A credential past its rotation period was just used for a grant.
std::string RotationDueLine(const v1::ApprovalEvent& e) {
  const v1::CredentialSummary& c = e.credential();
  return absl::StrCat("rotation_due  ", c.provider(), "/", c.profile(),
                      " version ", c.version(), "  ", e.message());
}

absl::StatusOr<v1::Scope> ParseScope(const std::string& text) {
  if (text.empty() || text == "once") return v1::SCOPE_ONCE;
  if (text == "session") return v1::SCOPE_SESSION;
  if (text == "standing") return v1::SCOPE_STANDING;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown scope \"", text, "\": use once, session or standing"));
}

absl::Status ParseTtl(const std::string& text,
                      google::protobuf::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad ttl \"", text,
                     "\": use a positive duration such as 15m, 2h or 720h"));
  }
  out->set_seconds(absl::ToInt64Seconds(d));
  return absl::OkStatus();
}

// Asks for the form's fields on the terminal. Empty answers keep stored
// values (sensitive fields) or the current / default value; multiline
// fields (key files) are read from a path.
absl::Status FillForm(const v1::CredentialForm& form, v1::ApproveRequest* req) {
  if (form.oauth()) {
    std::cerr
        << "  " << form.display_name()
        << " connects through its OAuth flow in the IDE; enter the values it "
           "gave you, or leave them empty to keep the stored ones.\n";
  }
  for (const std::string& step : form.how_to_get())
    std::cerr << "  - " << step << "\n";
  for (const std::string& note : form.notes())
    std::cerr << "  note: " << note << "\n";
  for (const v1::FormField& f : form.fields()) {
    const v1::FieldSpec& spec = f.spec();
    if (spec.derived()) continue;
    if (req->values().count(spec.name())) continue;
    std::string label = spec.label().empty() ? spec.name() : spec.label();
    if (!spec.format_hint().empty())
      absl::StrAppend(&label, " (", spec.format_hint(), ")");
    if (spec.sensitive() && f.is_set()) {
      absl::StrAppend(&label, " [set; empty keeps it]");
    } else if (!f.current_value().empty()) {
      absl::StrAppend(&label, " [", f.current_value(), "]");
    } else if (!spec.default_value().empty()) {
      absl::StrAppend(&label, " [", spec.default_value(), "]");
    } else if (spec.generatable()) {
      absl::StrAppend(&label, " [empty: generate one]");
    } else if (spec.optional()) {
      absl::StrAppend(&label, " [optional]");
    }
    if (spec.multiline()) {
      std::optional<std::string> path =
          Prompt(absl::StrCat(label, " — path to the file"), false);
      if (!path) return absl::CancelledError("input ended");
      if (path->empty()) continue;
      absl::StatusOr<std::string> contents = ReadFile(*path);
      if (!contents.ok()) return contents.status();
      (*req->mutable_values())[spec.name()] = std::move(*contents);
      continue;
    }
    std::optional<std::string> value = Prompt(label, spec.sensitive());
    if (!value) return absl::CancelledError("input ended");
    if (!value->empty()) {
      (*req->mutable_values())[spec.name()] = std::move(*value);
    } else if (!f.is_set() && f.current_value().empty() &&
               !spec.default_value().empty()) {
      (*req->mutable_values())[spec.name()] = spec.default_value();
    } else if (!f.is_set() && f.current_value().empty() && spec.generatable()) {
      req->add_generate(spec.name());
    }
  }
  return absl::OkStatus();
}

void PrintForm(const v1::CredentialForm& form) {
  std::cout << form.display_name() << " (" << form.provider() << "/"
            << form.profile() << ")\n";
  if (form.has_request()) {
    std::cout << "For request ";
    PrintRequest(form.request(), std::cout);
  }
  if (form.oauth())
    std::cout << "Connects through the provider's OAuth flow.\n";
  std::cout << "Fields:\n";
  for (const v1::FormField& f : form.fields()) {
    const v1::FieldSpec& s = f.spec();
    std::cout << "  " << s.name() << " — " << s.label();
    std::vector<std::string> tags;
    if (s.sensitive()) tags.push_back("secret");
    if (s.optional()) tags.push_back("optional");
    if (s.derived()) tags.push_back("derived");
    if (s.generatable()) tags.push_back("can be generated");
    if (s.multiline()) tags.push_back("file");
    if (!tags.empty()) std::cout << " [" << absl::StrJoin(tags, ", ") << "]";
    if (!s.format_hint().empty()) std::cout << "; " << s.format_hint();
    if (!s.default_value().empty())
      std::cout << "; default " << s.default_value();
    if (s.sensitive()) {
      std::cout << (f.is_set() ? "; stored" : "; not set");
    } else if (!f.current_value().empty()) {
      std::cout << "; current " << f.current_value();
    }
    std::cout << "\n";
  }
  if (!form.how_to_get().empty()) {
    std::cout << "How to get them:\n";
    int i = 1;
    for (const auto& step : form.how_to_get())
      std::cout << "  " << i++ << ". " << step << "\n";
  }
  if (!form.required_permissions().empty()) {
    std::cout << "Required permissions: "
              << absl::StrJoin(form.required_permissions(), "; ") << "\n";
  }
  for (const auto& n : form.notes()) std::cout << "Note: " << n << "\n";
}

class FlowCli {
 public:
  FlowCli(const Args& args, const Context& ctx) : args_(args), ctx_(ctx) {}

  int Run() {
    const std::string& c = args_.command;
    if (c == "request") return Request();
    approval_ = client::ApprovalClient::Connect(ctx_.approver);
    if (!approval_.ok()) return PrintError(approval_.status());
    credentials_ = client::CredentialClient::Connect(ctx_.approver);
    if (!credentials_.ok()) return PrintError(credentials_.status());
    if (c == "watch") return Watch();
    if (c == "pending") return Pending();
    if (c == "form") return Form();
    if (c == "approve") return Approve();
    if (c == "deny") return Deny();
    if (c == "grants") return Grants();
    if (c == "revoke") return Revoke();
    if (c == "standing") return Standing();
    return UsageError(absl::StrCat("unknown command \"", c, "\""));
  }

 private:
  bool json() const { return args_.Switch("json"); }
  client::ApprovalClient& approval() { return **approval_; }
  client::CredentialClient& credentials() { return **credentials_; }

  int Pending() {
    absl::StatusOr<std::vector<v1::ApprovalRequest>> pending =
        approval().ListPending();
    if (!pending.ok()) return PrintError(pending.status());
    if (json()) {
      std::vector<std::string> items;
      for (const auto& r : *pending)
        items.push_back(ToJson(r, /*compact=*/true));
      std::cout << "{\"requests\": [" << absl::StrJoin(items, ",\n  ")
                << "]}\n";
      return 0;
    }
    if (pending->empty()) {
      std::cout << "No pending requests.\n";
      return 0;
    }
    for (const auto& r : *pending) PrintRequest(r, std::cout);
    return 0;
  }

  int Form() {
    v1::GetCredentialFormRequest req;
    req.set_request_id(args_.Flag("request"));
    if (!args_.positional.empty()) req.set_provider(args_.positional[0]);
    req.set_profile(args_.Flag("profile"));
    if (req.request_id().empty() == req.provider().empty()) {
      return UsageError("form takes a PROVIDER or --request ID");
    }
    absl::StatusOr<v1::CredentialForm> form = approval().GetForm(req);
    if (!form.ok()) return PrintError(form.status());
    if (json()) {
      std::cout << ToJson(*form) << "\n";
      return 0;
    }
    PrintForm(*form);
    return 0;
  }

  // Values from --field NAME=VALUE, --field NAME (prompted, hidden when the
  // form says sensitive) and --generate NAME.
  absl::Status CollectValues(const std::string& request_id,
                             v1::ApproveRequest* req) {
    std::vector<std::string> prompt_for;
    for (const std::string& f : args_.All("field")) {
      size_t eq = f.find('=');
      if (eq == 0)
        return absl::InvalidArgumentError("--field takes NAME=VALUE or NAME");
      if (eq == std::string::npos) {
        prompt_for.push_back(f);
      } else {
        (*req->mutable_values())[f.substr(0, eq)] = f.substr(eq + 1);
      }
    }
    for (const std::string& g : args_.All("generate")) req->add_generate(g);
    const bool tty = StdinIsTerminal();
    if (prompt_for.empty() &&
        !(tty && req->values().empty() && req->generate().empty())) {
      return absl::OkStatus();
    }
    v1::GetCredentialFormRequest form_req;
    form_req.set_request_id(request_id);
    absl::StatusOr<v1::CredentialForm> form = approval().GetForm(form_req);
    if (!form.ok()) return form.status();
    for (const std::string& name : prompt_for) {
      bool hidden = true;
      std::string label = name;
      for (const auto& f : form->fields()) {
        if (f.spec().name() == name) {
          hidden = f.spec().sensitive();
          label = f.spec().label();
        }
      }
      std::optional<std::string> v = Prompt(label, hidden && tty);
      if (!v)
        return absl::InvalidArgumentError(absl::StrCat("no value for ", name));
      (*req->mutable_values())[name] = *v;
    }
    // On a terminal, a request that needs input gets the whole form.
    if (tty && req->values().empty() && req->generate().empty() &&
        form->request().state() == v1::REQUEST_STATE_NEEDS_INPUT) {
      std::cerr << "Request " << request_id << " needs values for "
                << absl::StrJoin(form->request().missing_fields(), ", ")
                << ".\n";
      return FillForm(*form, req);
    }
    return absl::OkStatus();
  }

  // Asks for the approval PIN (--pin_fd, or the terminal) and puts it in
  // `req`. At first use, when none is set yet, has the person choose one.
  // Without a terminal nothing is asked: the broker then refuses the
  // approval and says what is missing.
  absl::Status AddPin(v1::ApproveRequest* req) {
    absl::StatusOr<v1::ApprovalPinStatus> status = credentials().GetApprovalPinStatus();
    if (!status.ok()) return status.status();
    if (!status->pin_set()) {
      if (!status->required()) return absl::OkStatus();
      std::cerr << "No approval PIN is set yet. Choose one now: every approval needs it, "
                   "so an agent that can run commands as you cannot approve itself.\n";
      v1::SetApprovalPinRequest set;
      absl::Status chosen = ChooseApprovalPin(args_, *status, &set);
      if (chosen.ok()) chosen = credentials().SetApprovalPin(set).status();
      WipeString(*set.mutable_store_passphrase());
      if (!chosen.ok()) {
        WipeString(*set.mutable_new_pin());
        return chosen;
      }
      req->set_pin(*set.mutable_new_pin());
      WipeString(*set.mutable_new_pin());
      return absl::OkStatus();
    }
    if (status->has_window_until()) return absl::OkStatus();
    std::optional<std::string> pin = ReadSecret(args_, "Approval PIN");
    if (pin) {
      req->set_pin(*pin);
      WipeString(*pin);
    }
    return absl::OkStatus();
  }

  int Approve() {
    if (args_.positional.size() != 1)
      return UsageError("approve takes one REQUEST_ID");
    v1::ApproveRequest req;
    req.set_request_id(args_.positional[0]);
    absl::StatusOr<v1::Scope> scope = ParseScope(args_.Flag("scope"));
    if (!scope.ok()) return UsageError(std::string(scope.status().message()));
    req.set_scope(*scope);
    if (absl::Status s = ParseTtl(args_.Flag("ttl"), req.mutable_ttl());
        !s.ok()) {
      return UsageError(std::string(s.message()));
    }
    if (!args_.Has("ttl")) req.clear_ttl();
    if (args_.Has("pattern")) {
      if (*scope != v1::SCOPE_STANDING)
        return UsageError("--pattern needs --scope standing");
      req.set_action_pattern(args_.Flag("pattern"));
    }
    if (absl::Status s = CollectValues(req.request_id(), &req); !s.ok()) {
      return PrintError(s);
    }
    if (absl::Status s = AddPin(&req); !s.ok()) return PrintError(s);
    absl::StatusOr<v1::ApproveResponse> r = approval().Approve(req);
    WipeString(*req.mutable_pin());
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    std::cout << "Approved " << req.request_id() << " ("
              << ScopeText(req.scope()) << "): grant " << r->grant_id();
    if (!r->standing_approval_id().empty()) {
      std::cout << ", standing approval " << r->standing_approval_id();
    }
    std::cout << "\n";
    return 0;
  }

  int Deny() {
    if (args_.positional.size() != 1)
      return UsageError("deny takes one REQUEST_ID");
    std::string reason = args_.Flag("reason");
    if (reason.empty())
      return UsageError("deny needs --reason TEXT (the agent sees it)");
    absl::Status s = approval().Deny(args_.positional[0], reason);
    if (!s.ok()) return PrintError(s);
    if (json()) {
      std::cout << "{\"request_id\": \"" << args_.positional[0]
                << "\", \"denied\": true}\n";
      return 0;
    }
    std::cout << "Denied " << args_.positional[0] << "\n";
    return 0;
  }

  int Grants() {
    v1::ListGrantsRequest req;
    req.set_include_ended(args_.Switch("all"));
    v1::ListGrantsResponse all;
    while (true) {
      absl::StatusOr<v1::ListGrantsResponse> r = credentials().ListGrants(req);
      if (!r.ok()) return PrintError(r.status());
      for (auto& g : *r->mutable_grants()) *all.add_grants() = std::move(g);
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    if (json()) {
      std::cout << ToJson(all) << "\n";
      return 0;
    }
    if (all.grants().empty()) {
      std::cout << (req.include_ended() ? "No grants.\n"
                                        : "No active grants.\n");
      return 0;
    }
    std::printf("%-22s %-22s %3s  %-8s %-16s %-14s %s\n", "GRANT",
                "PROVIDER/PROFILE", "VER", "SCOPE", "EXPIRES (UTC)", "STATUS",
                "ACTION");
    for (const auto& g : all.grants()) {
      std::string status = g.end_reason().empty() ? "active" : g.end_reason();
      std::printf(
          "%-22s %-22s %3lld  %-8s %-16s %-14s %s\n", g.grant_id().c_str(),
          absl::StrCat(g.provider(), "/", g.profile()).c_str(),
          static_cast<long long>(g.credential_version()),
          ScopeText(g.scope()).c_str(), FormatTime(g.expires_at()).c_str(),
          EscapeForTerminal(status).c_str(), EscapeForTerminal(g.action()).c_str());
    }
    return 0;
  }

  int Revoke() {
    if (args_.positional.size() != 1)
      return UsageError("revoke takes one GRANT_ID");
    v1::RevokeGrantRequest req;
    req.set_grant_id(args_.positional[0]);
    req.set_reason(args_.Flag("reason"));
    absl::StatusOr<v1::RevokeGrantResponse> r = credentials().RevokeGrant(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    std::cout << "Revoked " << req.grant_id()
              << "; the agent was told to stop using it\n";
    return 0;
  }

  int Standing() {
    if (!args_.positional.empty() && args_.positional[0] == "revoke") {
      if (args_.positional.size() != 2)
        return UsageError("standing revoke takes one ID");
      v1::RevokeStandingApprovalRequest req;
      req.set_id(args_.positional[1]);
      absl::StatusOr<v1::RevokeStandingApprovalResponse> r =
          credentials().RevokeStandingApproval(req);
      if (!r.ok()) return PrintError(r.status());
      if (json()) {
        std::cout << ToJson(*r) << "\n";
        return 0;
      }
      std::cout << "Revoked standing approval " << req.id() << "\n";
      return 0;
    }
    if (!args_.positional.empty()) {
      return UsageError("standing takes no argument, or `revoke ID`");
    }
    v1::ListStandingApprovalsRequest req;
    req.set_include_ended(args_.Switch("all"));
    absl::StatusOr<v1::ListStandingApprovalsResponse> r =
        credentials().ListStandingApprovals(req);
    if (!r.ok()) return PrintError(r.status());
    if (json()) {
      std::cout << ToJson(*r) << "\n";
      return 0;
    }
    if (r->approvals().empty()) {
      std::cout << "No standing approvals.\n";
      return 0;
    }
    for (const auto& s : r->approvals()) {
      std::cout << s.id() << "  " << s.provider() << "/" << s.profile()
                << "  \"" << s.action_pattern() << "\"  until "
                << FormatTime(s.expires_at()) << " UTC"
                << (s.revoked() ? "  (revoked)" : "") << "\n";
    }
    return 0;
  }

  // --- watch ---

  // Events from the watcher's reader thread, consumed by the main thread.
  struct WatchState {
    absl::Mutex mu;
    std::deque<v1::ApprovalEvent> events ABSL_GUARDED_BY(mu);
    std::optional<absl::Status> end ABSL_GUARDED_BY(mu);
    // Requests still open, as last seen.
    std::map<std::string, v1::ApprovalRequest> open ABSL_GUARDED_BY(mu);
  };

  void PrintEventLine(const v1::ApprovalEvent& e) {
    if (json()) {
      std::cout << ToJson(e, /*compact=*/true) << std::endl;
      return;
    }
    if (e.kind() == v1::ApprovalEvent::KIND_SNAPSHOT_DONE) {
      std::cout << "snapshot_done" << std::endl;
      return;
    }
    if (e.kind() == v1::ApprovalEvent::KIND_ROTATION_DUE) {
      std::cout << RotationDueLine(e) << std::endl;
      return;
    }
    const v1::ApprovalRequest& r = e.request();
    std::cout << KindText(e.kind()) << "  " << RequestLine(r) << "  "
              << StateText(r.state());
    if (!r.missing_fields().empty()) {
      std::cout << " (missing " << absl::StrJoin(r.missing_fields(), ", ")
                << ")";
    }
    if (!r.binding_note().empty()) std::cout << "  note: " << EscapeForTerminal(r.binding_note());
    if (!r.decision().empty()) {
      std::cout << "  " << EscapeForTerminal(r.decision());
    } else {
      std::cout << "  expires " << Relative(r.expires_at()) << ", agent "
                << (r.agent_connected() ? "connected" : "disconnected");
    }
    std::cout << std::endl;
  }

  int Watch() {
    const bool interactive = StdinIsTerminal() && !json();
    while (true) {
      WatchState state;
      absl::StatusOr<std::unique_ptr<client::Watcher>> watcher =
          approval().Watch(
              [&state](const v1::ApprovalEvent& e) {
                absl::MutexLock lock(&state.mu);
                const std::string& id = e.request().request_id();
                switch (e.kind()) {
                  case v1::ApprovalEvent::KIND_SNAPSHOT:
                  case v1::ApprovalEvent::KIND_ADDED:
                  case v1::ApprovalEvent::KIND_AGENT_DISCONNECTED:
                  case v1::ApprovalEvent::KIND_AGENT_RECONNECTED:
                    state.open[id] = e.request();
                    break;
                  case v1::ApprovalEvent::KIND_RESOLVED:
                  case v1::ApprovalEvent::KIND_CANCELLED:
                  case v1::ApprovalEvent::KIND_EXPIRED:
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
        std::cerr
            << "credctl: fell behind the broker's events; watching again\n";
        continue;
      }
      if (end.ok() || absl::IsCancelled(end)) return 0;
      return PrintError(end);
    }
  }

  // Consumes events until the stream ends (its status) or, interactively,
  // the input ends (OK).
  absl::Status WatchLoop(WatchState& state, bool interactive) {
    while (true) {
      std::optional<v1::ApprovalEvent> event;
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
      const v1::ApprovalRequest& r = event->request();
      switch (event->kind()) {
        case v1::ApprovalEvent::KIND_SNAPSHOT:
        case v1::ApprovalEvent::KIND_ADDED: {
          bool open;
          {
            absl::MutexLock lock(&state.mu);
            open = state.open.count(r.request_id()) > 0;
          }
          if (!open) break;  // Resolved meanwhile; that event follows.
          std::cerr << "\nCredential request:\n";
          PrintRequest(r, std::cerr);
          if (!Decide(state, r)) return absl::OkStatus();
          break;
        }
        case v1::ApprovalEvent::KIND_SNAPSHOT_DONE:
          break;
        case v1::ApprovalEvent::KIND_RESOLVED:
        case v1::ApprovalEvent::KIND_CANCELLED:
        case v1::ApprovalEvent::KIND_EXPIRED:
          std::cerr << "  " << r.request_id() << " " << KindText(event->kind())
                    << ": " << EscapeForTerminal(r.decision()) << "\n";
          break;
        case v1::ApprovalEvent::KIND_AGENT_DISCONNECTED:
          std::cerr << "  " << r.request_id() << ": the agent disconnected\n";
          break;
        case v1::ApprovalEvent::KIND_AGENT_RECONNECTED:
          std::cerr << "  " << r.request_id() << ": the agent is back\n";
          break;
        case v1::ApprovalEvent::KIND_ROTATION_DUE:
          std::cerr << "  " << RotationDueLine(*event) << "\n";
          break;
        default:
          break;
      }
    }
  }

  // Asks what to do with one request. False when the input ended.
  bool Decide(WatchState& state, const v1::ApprovalRequest& r) {
    while (true) {
      std::optional<std::string> answer =
          Prompt("[a]pprove, [d]eny, [s]kip, [f]orm", false);
      if (!answer) return false;
      std::string a =
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(*answer));
      {
        absl::MutexLock lock(&state.mu);
        if (state.open.count(r.request_id()) == 0) {
          std::cerr << "  " << r.request_id()
                    << " was resolved elsewhere meanwhile.\n";
          return true;
        }
      }
      if (a == "s" || a == "skip") {
        std::cerr << "  Skipped; later: credctl approve " << r.request_id()
                  << "\n";
        return true;
      }
      if (a == "f" || a == "form") {
        v1::GetCredentialFormRequest fr;
        fr.set_request_id(r.request_id());
        absl::StatusOr<v1::CredentialForm> form = approval().GetForm(fr);
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
        absl::Status s = approval().Deny(r.request_id(), *reason);
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

  // nullopt: input ended; true: decided (or failed for good); false: ask again.
  std::optional<bool> ApproveInteractively(const v1::ApprovalRequest& r) {
    v1::ApproveRequest req;
    req.set_request_id(r.request_id());
    bool fill = r.state() == v1::REQUEST_STATE_NEEDS_INPUT;
    if (!fill) {
      std::optional<std::string> update = Prompt(
          "Use the stored credential? [Y/n] (n: enter new values)", false);
      if (!update) return std::nullopt;
      fill = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*update)) == "n";
    }
    if (fill) {
      v1::GetCredentialFormRequest fr;
      fr.set_request_id(r.request_id());
      absl::StatusOr<v1::CredentialForm> form = approval().GetForm(fr);
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
    while (true) {
      std::optional<std::string> scope =
          Prompt("Scope: once, session, standing [once]", false);
      if (!scope) return std::nullopt;
      absl::StatusOr<v1::Scope> parsed =
          ParseScope(std::string(absl::StripAsciiWhitespace(*scope)));
      if (parsed.ok()) {
        req.set_scope(*parsed);
        break;
      }
      std::cerr << "  " << parsed.status().message() << "\n";
    }
    while (true) {
      std::optional<std::string> ttl = Prompt(
          "For how long (e.g. 15m, 2h, 720h; empty: the scope's default)",
          false);
      if (!ttl) return std::nullopt;
      absl::Status s = ParseTtl(std::string(absl::StripAsciiWhitespace(*ttl)),
                                req.mutable_ttl());
      if (s.ok()) {
        if (absl::StripAsciiWhitespace(*ttl).empty()) req.clear_ttl();
        break;
      }
      std::cerr << "  " << s.message() << "\n";
    }
    if (req.scope() == v1::SCOPE_STANDING) {
      std::optional<std::string> pattern =
          Prompt(absl::StrCat("Actions it covers (* matches anything) [",
                              EscapeForTerminal(r.need().action()), "]"),
                 false);
      if (!pattern) return std::nullopt;
      req.set_action_pattern(std::string(absl::StripAsciiWhitespace(*pattern)));
    }
    if (absl::Status s = AddPin(&req); !s.ok()) {
      PrintError(s);
      return true;
    }
    absl::StatusOr<v1::ApproveResponse> result = approval().Approve(req);
    WipeString(*req.mutable_pin());
    if (!result.ok()) {
      PrintError(result.status());
      // Bad values: the request stays pending; try again.
      return !absl::IsInvalidArgument(result.status());
    }
    std::cerr << "  Approved: grant " << result->grant_id();
    if (!result->standing_approval_id().empty()) {
      std::cerr << ", standing approval " << result->standing_approval_id();
    }
    std::cerr << "\n";
    return true;
  }

  // --- request (as the agent) ---

  int Request() {
    if (args_.positional.size() != 1)
      return UsageError("request takes one PROVIDER");
    std::string action = args_.Flag("action");
    if (action.empty()) return UsageError("request needs --action TEXT");
    v1::RequestCredentialRequest req;
    v1::CredentialNeeded* need = req.mutable_need();
    need->set_provider(args_.positional[0]);
    need->set_profile(args_.Flag("profile"));
    need->set_action(action);
    need->set_need_id(
        args_.Flag("need_id", absl::StrCat("credctl-", getpid(), "-",
                                           absl::ToUnixMillis(absl::Now()))));
    for (const std::string& kv : args_.All("context")) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        return UsageError("--context takes KEY=VALUE");
      (*need->mutable_context())[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    if (args_.Has("ttl")) {
      if (absl::Status s =
              ParseTtl(args_.Flag("ttl"), need->mutable_requested_ttl());
          !s.ok()) {
        return UsageError(std::string(s.message()));
      }
    }
    req.set_session_key(args_.Flag("session_key"));
    int seconds = 900;
    if (args_.Has("timeout") &&
        (!absl::SimpleAtoi(args_.Flag("timeout"), &seconds) || seconds <= 0)) {
      return UsageError("--timeout takes a positive number of seconds");
    }
    absl::StatusOr<v1::NeedUpdate> final_update = client::RequestCredential(
        ctx_.agent, req, absl::Seconds(seconds), [](const v1::NeedUpdate& u) {
          switch (u.state()) {
            case v1::REQUEST_STATE_PENDING_APPROVAL:
              if (u.request_id().empty()) {  // A locked broker recorded nothing yet.
                std::cerr << "need " << u.need_id() << ": " << u.message() << std::endl;
                break;
              }
              std::cerr << "request " << u.request_id()
                        << ": pending approval (approve with `credctl approve "
                        << u.request_id() << "` or in `credctl watch`)"
                        << std::endl;
              break;
            case v1::REQUEST_STATE_NEEDS_INPUT:
              std::cerr << "request " << u.request_id()
                        << ": needs input, missing "
                        << absl::StrJoin(u.missing_fields(), ", ")
                        << " (the approver fills them in)" << std::endl;
              break;
            default:
              std::cerr << "request " << u.request_id() << ": "
                        << StateText(u.state());
              if (!u.message().empty()) std::cerr << " — " << u.message();
              std::cerr << std::endl;
          }
        });
    if (!final_update.ok()) {
      if (absl::IsDeadlineExceeded(final_update.status())) {
        std::cerr << "credctl: no decision within " << seconds << " s\n";
        return 1;
      }
      return PrintError(final_update.status());
    }
    const v1::NeedUpdate& u = *final_update;
    switch (u.state()) {
      case v1::REQUEST_STATE_GRANTED:
        std::cout << ToJson(u.grant()) << std::endl;
        return 0;
      case v1::REQUEST_STATE_DENIED:
        std::cerr << "credctl: request " << u.request_id()
                  << " was denied: " << u.reason() << "\n";
        return kExitDenied;
      case v1::REQUEST_STATE_EXPIRED:
        std::cerr << "credctl: request " << u.request_id()
                  << " expired: " << u.reason() << "\n";
        return kExitExpired;
      default:
        std::cerr << "credctl: request " << u.request_id() << " "
                  << StateText(u.state()) << ": " << u.reason() << "\n";
        return kExitCancelled;
    }
  }

  const Args& args_;
  const Context& ctx_;
  absl::StatusOr<std::unique_ptr<client::ApprovalClient>> approval_;
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> credentials_;
};

}  // namespace

bool IsFlowCommand(const std::string& c) {
  return c == "watch" || c == "pending" || c == "form" || c == "approve" ||
         c == "deny" || c == "grants" || c == "revoke" || c == "standing" ||
         c == "request";
}

bool IsAgentCommand(const std::string& c) { return c == "request"; }

int RunFlowCommand(const Args& args, const Context& ctx) {
  return FlowCli(args, ctx).Run();
}

}  // namespace cli
}  // namespace credbroker
