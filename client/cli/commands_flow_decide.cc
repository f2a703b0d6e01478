// credctl's one-shot decisions on agents' requests (approver token):
// pending, form, approve (with its values and the approval PIN) and deny.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands_flow_internal.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {

int FlowCli::Pending() {
  absl::StatusOr<std::vector<client::ApprovalRequest>> pending =
      approval().ListPending();
  if (!pending.ok()) return PrintError(pending.status());
  if (json()) {
    std::vector<std::string> items;
    for (const auto& r : *pending) {
      items.push_back(
          ToJson(client::internal::AsProto<v1::ApprovalRequest>(r), true));
    }
    std::cout << "{\"requests\": [" << absl::StrJoin(items, ",\n  ") << "]}\n";
    return 0;
  }
  if (pending->empty()) {
    std::cout << "No pending requests.\n";
    return 0;
  }
  for (const auto& r : *pending) PrintRequest(r, std::cout);
  return 0;
}

int FlowCli::Form() {
  client::FormQuery query;
  query.request_id = args_.Flag("request");
  if (!args_.positional.empty()) query.provider = args_.positional[0];
  query.profile = args_.Flag("profile");
  if (query.request_id.empty() == query.provider.empty()) {
    return UsageError("form takes a PROVIDER or --request ID");
  }
  absl::StatusOr<client::CredentialForm> form = approval().GetForm(query);
  if (!form.ok()) return PrintError(form.status());
  if (json()) {
    std::cout << ToJson(client::internal::AsProto<v1::CredentialForm>(*form))
              << "\n";
    return 0;
  }
  PrintForm(*form);
  return 0;
}

absl::Status FlowCli::CollectValues(const std::string& request_id,
                                    client::Approval* req) {
  std::vector<std::string> prompt_for;
  for (const std::string& f : args_.All("field")) {
    size_t eq = f.find('=');
    if (eq == 0)
      return absl::InvalidArgumentError("--field takes NAME=VALUE or NAME");
    if (eq == std::string::npos) {
      prompt_for.push_back(f);
    } else {
      req->values[f.substr(0, eq)] = SecretBytes(f.substr(eq + 1));
    }
  }
  for (const std::string& g : args_.All("generate")) req->generate.push_back(g);
  const bool tty = StdinIsTerminal();
  if (prompt_for.empty() &&
      !(tty && req->values.empty() && req->generate.empty())) {
    return absl::OkStatus();
  }
  client::FormQuery query;
  query.request_id = request_id;
  absl::StatusOr<client::CredentialForm> form = approval().GetForm(query);
  if (!form.ok()) return form.status();
  for (const std::string& name : prompt_for) {
    bool hidden = true;
    std::string label = name;
    for (const auto& f : form->fields) {
      if (f.spec.name == name) {
        hidden = f.spec.sensitive;
        label = f.spec.label;
      }
    }
    std::optional<std::string> v = Prompt(label, hidden && tty);
    if (!v)
      return absl::InvalidArgumentError(absl::StrCat("no value for ", name));
    req->values[name] = SecretBytes(*v);
    WipeString(*v);
  }
  // On a terminal, a request that needs input gets the whole form.
  if (tty && req->values.empty() && req->generate.empty() &&
      form->request.has_value() &&
      form->request->state == client::RequestState::kNeedsInput) {
    std::cerr << "Request " << request_id << " needs values for "
              << absl::StrJoin(form->request->missing_fields, ", ") << ".\n";
    return FillForm(*form, req);
  }
  return absl::OkStatus();
}

absl::Status FlowCli::AddPin(client::Approval* req) {
  absl::StatusOr<client::ApprovalPinStatus> status =
      credentials().GetApprovalPinStatus();
  if (!status.ok()) return status.status();
  if (!status->pin_set) {
    if (!status->required) return absl::OkStatus();
    std::cerr << "No approval PIN is set yet. Choose one now: every approval "
                 "needs it, so an agent that can run commands as you cannot "
                 "approve itself.\n";
    client::PinChange set;
    absl::Status chosen = ChooseApprovalPin(args_, *status, &set);
    if (chosen.ok()) chosen = credentials().SetApprovalPin(set).status();
    if (!chosen.ok()) return chosen;
    req->pin = set.new_pin;
    return absl::OkStatus();
  }
  if (status->window_until != absl::InfinitePast()) return absl::OkStatus();
  std::optional<SecretBytes> pin = ReadSecret(args_, "Approval PIN");
  if (pin) req->pin = *std::move(pin);
  return absl::OkStatus();
}

int FlowCli::Approve() {
  if (args_.positional.size() != 1)
    return UsageError("approve takes one REQUEST_ID");
  client::Approval req;
  req.request_id = args_.positional[0];
  absl::StatusOr<client::Scope> scope = ParseScope(args_.Flag("scope"));
  if (!scope.ok()) return UsageError(std::string(scope.status().message()));
  req.scope = *scope;
  if (absl::Status s = ParseTtl(args_.Flag("ttl"), &req.ttl); !s.ok()) {
    return UsageError(std::string(s.message()));
  }
  if (args_.Has("pattern")) {
    if (*scope != client::Scope::kStanding)
      return UsageError("--pattern needs --scope standing");
    req.action_pattern = args_.Flag("pattern");
  }
  if (absl::Status s = CollectValues(req.request_id, &req); !s.ok()) {
    return PrintError(s);
  }
  if (absl::Status s = AddPin(&req); !s.ok()) return PrintError(s);
  absl::StatusOr<client::ApprovalResult> r = approval().Approve(req);
  if (!r.ok()) return PrintError(r.status());
  if (json()) {
    std::cout << ToJson(client::internal::AsProto<v1::ApproveResponse>(*r))
              << "\n";
    return 0;
  }
  std::cout << "Approved " << req.request_id << " (" << ScopeText(req.scope)
            << "): grant " << r->grant_id;
  if (!r->standing_approval_id.empty()) {
    std::cout << ", standing approval " << r->standing_approval_id;
  }
  std::cout << "\n";
  return 0;
}

int FlowCli::Deny() {
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

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker
