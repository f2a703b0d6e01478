// credctl's grant commands (approver token): grants, revoke and
// standing (list or revoke standing approvals).
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/cli/commands_flow_internal.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "common/text.h"

namespace credbroker {
namespace cli {
namespace flow_internal {
int FlowCli::Grants() {
  client::GrantQuery query;
  query.include_ended = args_.Switch("all");
  client::GrantPage all;
  while (true) {
    absl::StatusOr<client::GrantPage> r = credentials().ListGrants(query);
    if (!r.ok()) return PrintError(r.status());
    for (auto& g : r->grants) all.grants.push_back(std::move(g));
    if (r->next_page_token.empty()) break;
    query.page_token = r->next_page_token;
  }
  if (json()) {
    std::cout << ToJson(client::internal::AsProto<v1::ListGrantsResponse>(all))
              << "\n";
    return 0;
  }
  if (all.grants.empty()) {
    std::cout << (query.include_ended ? "No grants.\n" : "No active grants.\n");
    return 0;
  }
  std::printf("%-22s %-22s %3s  %-8s %-16s %-14s %s\n", "GRANT",
              "PROVIDER/PROFILE", "VER", "SCOPE", "EXPIRES (UTC)", "STATUS",
              "ACTION");
  for (const auto& g : all.grants) {
    std::string status = g.end_reason.empty() ? "active" : g.end_reason;
    std::printf("%-22s %-22s %3lld  %-8s %-16s %-14s %s\n", g.grant_id.c_str(),
                absl::StrCat(g.provider, "/", g.profile).c_str(),
                static_cast<long long>(g.credential_version),
                ScopeText(g.scope).c_str(), TimeText(g.expires_at).c_str(),
                EscapeForTerminal(status).c_str(),
                EscapeForTerminal(g.action).c_str());
  }
  return 0;
}

int FlowCli::Revoke() {
  if (args_.positional.size() != 1)
    return UsageError("revoke takes one GRANT_ID");
  const std::string& grant_id = args_.positional[0];
  absl::Status revoked =
      credentials().RevokeGrant(grant_id, args_.Flag("reason"));
  if (!revoked.ok()) return PrintError(revoked);
  if (json()) {
    std::cout << ToJson(v1::RevokeGrantResponse()) << "\n";
    return 0;
  }
  std::cout << "Revoked " << grant_id
            << "; the agent was told to stop using it\n";
  return 0;
}

int FlowCli::Standing() {
  if (!args_.positional.empty() && args_.positional[0] == "revoke") {
    if (args_.positional.size() != 2)
      return UsageError("standing revoke takes one ID");
    const std::string& id = args_.positional[1];
    absl::Status revoked = credentials().RevokeStandingApproval(id);
    if (!revoked.ok()) return PrintError(revoked);
    if (json()) {
      std::cout << ToJson(v1::RevokeStandingApprovalResponse()) << "\n";
      return 0;
    }
    std::cout << "Revoked standing approval " << id << "\n";
    return 0;
  }
  if (!args_.positional.empty()) {
    return UsageError("standing takes no argument, or `revoke ID`");
  }
  absl::StatusOr<std::vector<client::StandingApproval>> r =
      credentials().ListStandingApprovals(args_.Switch("all"));
  if (!r.ok()) return PrintError(r.status());
  if (json()) {
    std::cout
        << ToJson(
               client::internal::AsProto<v1::ListStandingApprovalsResponse>(*r))
        << "\n";
    return 0;
  }
  if (r->empty()) {
    std::cout << "No standing approvals.\n";
    return 0;
  }
  for (const client::StandingApproval& s : *r) {
    std::cout << s.id << "  " << s.provider << "/" << s.profile << "  \""
              << s.action_pattern << "\"  until " << TimeText(s.expires_at)
              << " UTC" << (s.revoked ? "  (revoked)" : "") << "\n";
  }
  return 0;
}

}  // namespace flow_internal
}  // namespace cli
}  // namespace credbroker
