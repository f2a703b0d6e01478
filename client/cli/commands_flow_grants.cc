// credctl's grant commands (approver token): grants, revoke and
// standing (list or revoke standing approvals).
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands_flow_internal.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {

int FlowCli::Grants() {
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
    std::cout << (req.include_ended() ? "No grants.\n" : "No active grants.\n");
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
        EscapeForTerminal(status).c_str(),
        EscapeForTerminal(g.action()).c_str());
  }
  return 0;
}

int FlowCli::Revoke() {
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

int FlowCli::Standing() {
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
    std::cout << s.id() << "  " << s.provider() << "/" << s.profile() << "  \""
              << s.action_pattern() << "\"  until "
              << FormatTime(s.expires_at()) << " UTC"
              << (s.revoked() ? "  (revoked)" : "") << "\n";
  }
  return 0;
}

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker
