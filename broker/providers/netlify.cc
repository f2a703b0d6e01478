// Netlify: an OAuth access token obtained through the browser flow.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

class NetlifyProvider : public BasicProvider {
 public:
  NetlifyProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "netlify";
    s.display_name = "Netlify";
    s.description =
        "Nothing to type: Netlify uses OAuth. Click Connect Netlify, "
        "authorize in the browser, and the access token is stored here.";
    s.oauth = true;
    FieldSpec token;
    token.name = "access_token";
    token.label = "OAuth access token";
    token.sensitive = true;
    token.format_hint = "Filled in by the Connect Netlify (OAuth) flow";
    token.where_to_find =
        "the Connect Netlify button (OAuth), or Netlify: User settings → "
        "Applications → Personal access tokens";
    s.fields = {token};
    s.how_to_get = {
        "Tell the agent to deploy to Netlify (e.g. \"deploy frontend to "
        "Netlify\").",
        "Click Connect Netlify when prompted.",
        "The browser opens the Netlify authorization page.",
        "Click Authorize to grant access.",
        "The browser redirects back to the IDE automatically.",
        "The credentials are stored securely; no manual token is needed.",
    };
    s.troubleshooting = {
        "Authorization revoked or expired: click Connect Netlify again to "
        "repeat the OAuth flow.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view token = ValueOf(values, "access_token");
    if (token.empty()) return;
    constexpr char kFix[] =
        "Click Connect Netlify to run the OAuth flow again, or paste a "
        "personal access token in one piece.";
    if (!CheckSingleToken("access_token", "Netlify access token", token, kFix,
                          findings)) {
      return;
    }
    // Netlify OAuth and personal access tokens are URL-safe strings of
    // letters, digits, '-' and '_' (personal tokens start "nfp_"). Source:
    // Netlify docs, "Get started with the Netlify API" → Authentication
    // (https://docs.netlify.com/api/get-started/#authentication).
    for (char c : token) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') {
        findings.push_back(ErrorFinding(
            "access_token", "bad_format",
            "The access token contains characters other than letters, "
            "digits, '-' and '_'.",
            kFix));
        return;
      }
    }
    if (token.size() < 20) {
      findings.push_back(ErrorFinding(
          "access_token", "wrong_length",
          absl::StrCat("The access token has ", token.size(),
                       " characters; Netlify tokens are much longer."),
          kFix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewNetlifyProvider() {
  return std::make_unique<NetlifyProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
