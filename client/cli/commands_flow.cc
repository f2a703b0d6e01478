// credctl's approval-flow commands (commands_flow.h): the entry points,
// FlowCli::Run's dispatch, and the text of requests and forms that more
// than one command prints. The commands themselves are in
// commands_flow_decide.cc, commands_flow_grants.cc, commands_flow_watch.cc
// and commands_flow_request.cc.
#include "client/cli/commands_flow.h"

#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/cli/commands_flow_internal.h"
#include "common/files.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {
namespace {

std::string ContextText(const v1::CredentialNeeded& need) {
  std::map<std::string, std::string> sorted(need.context().begin(),
                                            need.context().end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : sorted) {
    parts.push_back(
        absl::StrCat(EscapeForTerminal(k), "=", EscapeForTerminal(v)));
  }
  return absl::StrJoin(parts, " ");
}

std::string ProfileOf(const v1::CredentialNeeded& need) {
  return need.profile().empty() ? "default" : need.profile();
}

}  // namespace

std::string StateText(v1::RequestState s) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::RequestState_Name(s), "REQUEST_STATE_"));
}

std::string ScopeText(v1::Scope s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::Scope_Name(s), "SCOPE_"));
}

// One line for a request: id, provider/profile, action, context.
std::string RequestLine(const v1::ApprovalRequest& r) {
  std::string line =
      absl::StrCat(r.request_id(), "  ", EscapeForTerminal(r.need().provider()),
                   "/", EscapeForTerminal(ProfileOf(r.need())), "  \"",
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
  if (!r.agent_peer().empty())
    out << " (" << EscapeForTerminal(r.agent_peer()) << ")";
  out << "\n";
  if (!r.missing_fields().empty()) {
    out << "  missing: " << absl::StrJoin(r.missing_fields(), ", ") << "\n";
  }
  if (!r.binding_note().empty())
    out << "  note: " << EscapeForTerminal(r.binding_note()) << "\n";
  if (!r.decision().empty())
    out << "  decision: " << EscapeForTerminal(r.decision()) << "\n";
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

int FlowCli::Run() {
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

}  // namespace flow_internal

bool IsFlowCommand(const std::string& c) {
  return c == "watch" || c == "pending" || c == "form" || c == "approve" ||
         c == "deny" || c == "grants" || c == "revoke" || c == "standing" ||
         c == "request";
}

bool IsAgentCommand(const std::string& c) { return c == "request"; }

int RunFlowCommand(const Args& args, const Context& ctx) {
  return flow_internal::FlowCli(args, ctx).Run();
}

}  // namespace cli
}  // namespace credbroker
