// GitHub: a fine-grained personal access token for CI/CD.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kTokenSteps[] =
    "GitHub: Settings → Developer settings → Personal access tokens → "
    "Fine-grained tokens → Generate new token";

// Token prefixes: github_pat_ fine-grained personal access tokens, ghp_
// classic personal access tokens, gho_ OAuth app tokens, ghu_ GitHub App
// user-to-server tokens, ghs_ GitHub App installation (server-to-server)
// tokens, ghr_ refresh tokens. Source: GitHub Docs, "About authentication to
// GitHub" → "GitHub's token formats"
// (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-authentication-to-github#githubs-token-formats).
// Fine-grained tokens are currently 93 characters (github_pat_, 22
// characters, '_', 59 characters); GitHub does not promise the length.
constexpr absl::string_view kFineGrainedPrefix = "github_pat_";
constexpr size_t kFineGrainedLength = 93;

struct RefusedPrefix {
  absl::string_view prefix;
  absl::string_view code;
  absl::string_view what;
};
constexpr RefusedPrefix kRefused[] = {
    {"ghp_", "classic_token",
     "This is a classic personal access token (ghp_…). The guide asks for a "
     "fine-grained token: it is limited to the repositories you select and "
     "to the five permissions listed, while a classic token reaches every "
     "repository you can access."},
    {"gho_", "oauth_token",
     "This is an OAuth app token (gho_…) issued to another application; it "
     "carries that app's scopes and can be revoked by it."},
    {"ghu_", "app_token",
     "This is a GitHub App user-to-server token (ghu_…); it expires after "
     "hours and belongs to that app."},
    {"ghs_", "app_token",
     "This is a GitHub App installation token (ghs_…); it expires within an "
     "hour."},
    {"ghr_", "refresh_token",
     "This is a GitHub App refresh token (ghr_…); it cannot call the API."},
};

class GithubProvider : public BasicProvider {
 public:
  GithubProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "github";
    s.display_name = "GitHub";
    s.description =
        "A fine-grained personal access token limited to selected "
        "repositories, used to set up CI/CD with GitHub Actions.";
    FieldSpec token;
    token.name = "token";
    token.label = "Fine-Grained Personal Access Token";
    token.sensitive = true;
    token.format_hint = "Starts with github_pat_";
    token.where_to_find = kTokenSteps;
    // Fine-grained tokens have an expiration chosen at creation, shown on
    // the token's page. Source: GitHub Docs, "Managing your personal access
    // tokens" → "Creating a fine-grained personal access token"
    // (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens).
    s.fields = {token,
                ExpiryField("Token expires",
                            "GitHub: Settings → Developer settings → Personal "
                            "access tokens → Fine-grained tokens → your token "
                            "(\"Expires on …\")")};
    s.how_to_get = {
        "Log into GitHub.",
        "Go to Settings → Developer settings.",
        "Click Personal access tokens → Fine-grained tokens.",
        "Click Generate new token.",
        "Name: \"Monk CI/CD\".",
        "Expiration: choose based on your security needs.",
        "Repository access: select the repositories the agent should access.",
        "Permissions (on the selected repositories): Actions: Read and "
        "write; Secrets: Read and write; Environments: Read and write; "
        "Contents: Read; Metadata: Read.",
        "Click Generate token and copy it.",
    };
    s.required_permissions = {
        "Actions: Read and write",
        "Secrets: Read and write",
        "Environments: Read and write",
        "Contents: Read",
        "Metadata: Read",
    };
    s.troubleshooting = {
        "Token expired: generate a new fine-grained token.",
        "Repository not found: add the repository under the token's "
        "Repository access.",
        "Permission denied: grant the five repository permissions listed "
        "above.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view token = ValueOf(values, "token");
    if (token.empty()) return;
    std::string fix =
        absl::StrCat("Create a fine-grained token in ", kTokenSteps,
                     ", limited to the repositories the agent needs.");
    if (!CheckSingleToken("token", "GitHub token", token, fix, findings)) {
      return;
    }
    for (const RefusedPrefix& r : kRefused) {
      if (absl::StartsWith(token, r.prefix)) {
        findings.push_back(
            ErrorFinding("token", r.code, std::string(r.what), fix));
        return;
      }
    }
    absl::string_view rest = token;
    if (!absl::ConsumePrefix(&rest, kFineGrainedPrefix)) {
      // Before 2021, classic tokens were 40 hex digits without a prefix.
      bool legacy_classic = token.size() == 40 && IsLowerHexString(token);
      findings.push_back(ErrorFinding(
          "token", legacy_classic ? "classic_token" : "bad_prefix",
          legacy_classic
              ? "This is an old-format classic personal access token (40 "
                "hexadecimal digits). The guide asks for a fine-grained "
                "token limited to selected repositories."
              : "The token does not start with github_pat_, the prefix of "
                "fine-grained personal access tokens.",
          fix));
      return;
    }
    for (char c : rest) {
      if (!absl::ascii_isalnum(c) && c != '_') {
        findings.push_back(ErrorFinding(
            "token", "bad_format",
            "The token contains characters other than letters, digits and "
            "'_'.",
            fix));
        return;
      }
    }
    if (token.size() != kFineGrainedLength) {
      findings.push_back(WarningFinding(
          "token", "unusual_length",
          absl::StrCat("The token has ", token.size(),
                       " characters; fine-grained tokens currently have ",
                       kFineGrainedLength, ". It may be cut short."),
          "Copy the token again in full; it is shown only once, so generate "
          "a new one if it is lost."));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewGithubProvider() {
  return std::make_unique<GithubProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
