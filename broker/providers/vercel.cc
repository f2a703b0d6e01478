// Vercel: a personal access token, optionally scoped to a team.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kTokenSteps[] = "Vercel: Settings → Tokens → Create Token";

class VercelProvider : public BasicProvider {
 public:
  VercelProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "vercel";
    s.display_name = "Vercel";
    s.description =
        "A personal access token for deploying frontends, and the team ID "
        "for team deployments.";
    FieldSpec token;
    token.name = "token";
    token.label = "Personal Access Token";
    token.sensitive = true;
    token.format_hint = "From Settings → Tokens";
    token.where_to_find = kTokenSteps;
    FieldSpec team;
    team.name = "team_id";
    team.label = "Team ID";
    team.optional = true;
    team.format_hint = "Only for team deployments; starts with team_";
    team.where_to_find = "Vercel: your team → Settings → General → Team ID";
    // The guide's step 6: "Expiration: Set based on your security policy";
    // Vercel lists each token's expiry under Settings → Tokens. Source: Vercel
    // docs, "Account tokens"
    // (https://vercel.com/docs/rest-api#creating-an-access-token).
    s.fields = {token, team,
                ExpiryField("Token expires",
                            "Vercel: Settings → Tokens → your token's "
                            "expiration")};
    s.how_to_get = {
        "Log into Vercel.",
        "Go to Settings → Tokens.",
        "Click Create Token.",
        "Name: \"Monk Deployment\".",
        "Scope: choose Full Account or minimal (deploy, project read).",
        "Expiration: set based on your security policy.",
        "Click Create and copy the token.",
        "For team deployments: go to the team settings to find the Team ID.",
    };
    s.required_permissions = {
        "Token scope: Full Account, or minimal (deploy, project read)",
    };
    s.troubleshooting = {
        "Token expired: create a new token under Settings → Tokens.",
        "Team deployments fail: check the Team ID in the team's settings.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view token = ValueOf(values, "token");
    if (!token.empty()) {
      CheckSingleToken("token", "Vercel token", token,
                       absl::StrCat("Create a new token in ", kTokenSteps,
                                    " and copy it in one piece."),
                       findings);
    }
    // Team IDs are "team_" followed by letters and digits. Source: Vercel
    // docs, "Finding your team ID"
    // (https://vercel.com/docs/accounts/create-a-team#find-your-team-id).
    absl::string_view team = ValueOf(values, "team_id");
    if (team.empty()) return;
    constexpr char kFix[] =
        "Copy the Team ID from your team's Settings → General (it starts "
        "with team_); the team's name or URL slug is not its ID. Leave it "
        "empty for personal deployments.";
    absl::string_view rest = team;
    if (!absl::ConsumePrefix(&rest, "team_")) {
      findings.push_back(ErrorFinding(
          "team_id", "bad_prefix",
          "The team ID does not start with team_; it may be the team's name "
          "or slug.",
          kFix));
      return;
    }
    if (!IsAlnumString(rest)) {
      findings.push_back(ErrorFinding(
          "team_id", "bad_format",
          "After team_, a team ID has only letters and digits.", kFix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewVercelProvider() {
  return std::make_unique<VercelProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
