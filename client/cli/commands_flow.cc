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
#include "client/internal/convert.h"
#include "common/files.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {
namespace {

std::string ContextText(const client::CredentialNeeded& need) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : need.context) {
    parts.push_back(
        absl::StrCat(EscapeForTerminal(k), "=", EscapeForTerminal(v)));
  }
  return absl::StrJoin(parts, " ");
}

std::string ProfileOf(const client::CredentialNeeded& need) {
  return need.profile.empty() ? "default" : need.profile;
}

}  // namespace

std::string StateText(client::RequestState s) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(client::RequestStateName(s), "REQUEST_STATE_"));
}

std::string ScopeText(client::Scope s) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(client::ScopeName(s), "SCOPE_"));
}

// One line for a request: id, provider/profile, action, context.
std::string RequestLine(const client::ApprovalRequest& r) {
  std::string line =
      absl::StrCat(r.request_id, "  ", EscapeForTerminal(r.need.provider), "/",
                   EscapeForTerminal(ProfileOf(r.need)), "  \"",
                   EscapeForTerminal(r.need.action), "\"");
  std::string context = ContextText(r.need);
  if (!context.empty()) absl::StrAppend(&line, "  [", context, "]");
  return line;
}

// The request in full, for a person deciding on it.
void PrintRequest(const client::ApprovalRequest& r, std::ostream& out) {
  out << RequestLine(r) << "\n"
      << "  state " << StateText(r.state) << ", expires "
      << Relative(r.expires_at) << " (" << TimeText(r.expires_at)
      << " UTC), agent " << (r.agent_connected ? "connected" : "disconnected");
  if (!r.agent_peer.empty())
    out << " (" << EscapeForTerminal(r.agent_peer) << ")";
  out << "\n";
  if (!r.missing_fields.empty()) {
    out << "  missing: " << absl::StrJoin(r.missing_fields, ", ") << "\n";
  }
  if (!r.binding_note.empty())
    out << "  note: " << EscapeForTerminal(r.binding_note) << "\n";
  if (!r.decision.empty())
    out << "  decision: " << EscapeForTerminal(r.decision) << "\n";
}

absl::StatusOr<client::Scope> ParseScope(const std::string& text) {
  if (text.empty() || text == "once") return client::Scope::kOnce;
  if (text == "session") return client::Scope::kSession;
  if (text == "standing") return client::Scope::kStanding;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown scope \"", text, "\": use once, session or standing"));
}

absl::Status ParseTtl(const std::string& text, absl::Duration* out) {
  if (text.empty()) return absl::OkStatus();
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad ttl \"", text,
                     "\": use a positive duration such as 15m, 2h or 720h"));
  }
  *out = absl::Seconds(absl::ToInt64Seconds(d));
  return absl::OkStatus();
}
// Asks for the form's fields on the terminal. Empty answers keep stored
// values (sensitive fields) or the current / default value; multiline
// fields (key files) are read from a path.
absl::Status FillForm(const client::CredentialForm& form,
                      client::Approval* req) {
  if (form.oauth) {
    std::cerr
        << "  " << form.display_name
        << " connects through its OAuth flow in the IDE; enter the values it "
           "gave you, or leave them empty to keep the stored ones.\n";
  }
  for (const std::string& step : form.how_to_get)
    std::cerr << "  - " << step << "\n";
  for (const std::string& note : form.notes)
    std::cerr << "  note: " << note << "\n";
  for (const client::FormField& f : form.fields) {
    const client::FieldSpec& spec = f.spec;
    if (spec.derived) continue;
    if (req->values.count(spec.name)) continue;
    std::string label = spec.label.empty() ? spec.name : spec.label;
    if (!spec.format_hint.empty())
      absl::StrAppend(&label, " (", spec.format_hint, ")");
    if (spec.sensitive && f.is_set) {
      absl::StrAppend(&label, " [set; empty keeps it]");
    } else if (!f.current_value.empty()) {
      absl::StrAppend(&label, " [", f.current_value, "]");
    } else if (!spec.default_value.empty()) {
      absl::StrAppend(&label, " [", spec.default_value, "]");
    } else if (spec.generatable) {
      absl::StrAppend(&label, " [empty: generate one]");
    } else if (spec.optional) {
      absl::StrAppend(&label, " [optional]");
    }
    if (spec.multiline) {
      std::optional<std::string> path =
          Prompt(absl::StrCat(label, " — path to the file"), false);
      if (!path) return absl::CancelledError("input ended");
      if (path->empty()) continue;
      absl::StatusOr<std::string> contents = ReadFile(*path);
      if (!contents.ok()) return contents.status();
      req->values[spec.name] = SecretBytes(*contents);
      WipeString(*contents);
      continue;
    }
    std::optional<std::string> value = Prompt(label, spec.sensitive);
    if (!value) return absl::CancelledError("input ended");
    if (!value->empty()) {
      req->values[spec.name] = SecretBytes(*value);
      WipeString(*value);
    } else if (!f.is_set && f.current_value.empty() &&
               !spec.default_value.empty()) {
      req->values[spec.name] = SecretBytes(spec.default_value);
    } else if (!f.is_set && f.current_value.empty() && spec.generatable) {
      req->generate.push_back(spec.name);
    }
  }
  return absl::OkStatus();
}

void PrintForm(const client::CredentialForm& form) {
  std::cout << form.display_name << " (" << form.provider << "/" << form.profile
            << ")\n";
  if (form.request.has_value()) {
    std::cout << "For request ";
    PrintRequest(*form.request, std::cout);
  }
  if (form.oauth) std::cout << "Connects through the provider's OAuth flow.\n";
  std::cout << "Fields:\n";
  for (const client::FormField& f : form.fields) {
    const client::FieldSpec& s = f.spec;
    std::cout << "  " << s.name << " — " << s.label;
    std::vector<std::string> tags;
    if (s.sensitive) tags.push_back("secret");
    if (s.optional) tags.push_back("optional");
    if (s.derived) tags.push_back("derived");
    if (s.generatable) tags.push_back("can be generated");
    if (s.multiline) tags.push_back("file");
    if (!tags.empty()) std::cout << " [" << absl::StrJoin(tags, ", ") << "]";
    if (!s.format_hint.empty()) std::cout << "; " << s.format_hint;
    if (!s.default_value.empty()) std::cout << "; default " << s.default_value;
    if (s.sensitive) {
      std::cout << (f.is_set ? "; stored" : "; not set");
    } else if (!f.current_value.empty()) {
      std::cout << "; current " << f.current_value;
    }
    std::cout << "\n";
  }
  if (!form.how_to_get.empty()) {
    std::cout << "How to get them:\n";
    int i = 1;
    for (const auto& step : form.how_to_get)
      std::cout << "  " << i++ << ". " << step << "\n";
  }
  if (!form.required_permissions.empty()) {
    std::cout << "Required permissions: "
              << absl::StrJoin(form.required_permissions, "; ") << "\n";
  }
  for (const auto& n : form.notes) std::cout << "Note: " << n << "\n";
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
