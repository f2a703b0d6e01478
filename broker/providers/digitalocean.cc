// DigitalOcean: a personal access token with read and write scopes.
#include <algorithm>
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
    "DigitalOcean: API → Tokens/Keys → Generate New Token (Read and Write "
    "scopes)";

// Token prefixes: dop_v1_ personal access tokens, doo_v1_ OAuth access
// tokens, dor_v1_ OAuth refresh tokens, each followed by 64 hex digits;
// tokens created before the prefixes were introduced are 64 hex digits.
// Source: DigitalOcean docs, "How to Create a Personal Access Token"
// (https://docs.digitalocean.com/reference/api/create-personal-access-token/)
// and DigitalOcean's token-prefix announcement (April 2021).
constexpr size_t kTokenHexLength = 64;

// Datacenter region slugs. Source: DigitalOcean docs, "Regional
// Availability"
// (https://docs.digitalocean.com/platform/regional-availability/).
constexpr absl::string_view kRegions[] = {
    "nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1",
    "lon1", "fra1", "tor1", "blr1", "syd1", "atl1",
};

// Three lowercase letters and a digit: nyc1.
bool IsWellFormedRegion(absl::string_view r) {
  return r.size() == 4 &&
         std::all_of(r.begin(), r.begin() + 3, absl::ascii_islower) &&
         absl::ascii_isdigit(r[3]);
}

const RegionNaming kRegionNaming = {
    nullptr,
    IsWellFormedRegion,
    kRegions,
    "",
    "",
    "The region is not a DigitalOcean region slug (three lowercase letters and "
    "a digit, e.g. "
    "nyc1).",
    "Use a slug such as nyc1, nyc3, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1 "
    "or syd1, not the "
    "region's display name.",
    "The region slug is not one the broker knows; it may be new, retired, or "
    "mistyped.",
    "Known slugs: nyc1, nyc3, sfo2, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1, "
    "syd1, atl1.",
};

class DigitalOceanProvider : public BasicProvider {
 public:
  DigitalOceanProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "digitalocean";
    s.display_name = "DigitalOcean";
    s.description =
        "A personal access token with Read and Write scopes, used to create "
        "Droplets and networking on your DigitalOcean account.";
    s.default_region = "nyc1";
    FieldSpec token;
    token.name = "token";
    token.label = "Personal Access Token";
    token.sensitive = true;
    token.format_hint = "dop_v1_ followed by 64 hexadecimal characters";
    token.where_to_find = absl::StrCat(kTokenSteps, "; it is shown only once");
    FieldSpec region;
    region.name = "region";
    region.label = "Default region";
    region.optional = true;
    region.default_value = "nyc1";
    region.format_hint = "A region slug, e.g. nyc1, sfo3, ams3";
    region.where_to_find = "the region list when creating a Droplet";
    s.fields = {token, region};
    s.how_to_get = {
        "Log into DigitalOcean.",
        "Click API in the left sidebar.",
        "Go to the Tokens/Keys tab.",
        "Click Generate New Token.",
        "Name it (e.g. \"Monk Deployment\").",
        "Check both Read and Write scopes.",
        "Click Generate Token.",
        "Copy the token immediately (it is shown only once).",
    };
    s.required_permissions = {"Read scope", "Write scope"};
    s.troubleshooting = {
        "Token revoked: generate a new token under API → Tokens/Keys.",
        "Insufficient scopes (need Read + Write): generate a new token with "
        "both scopes checked.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view token = ValueOf(values, "token");
    if (!token.empty()) CheckToken(token, findings);
    absl::string_view region = ValueOf(values, "region");
    if (!region.empty()) CheckRegion(region, kRegionNaming, findings);
  }

  void CheckToken(absl::string_view token,
                  std::vector<Finding>& findings) const {
    std::string fix =
        absl::StrCat("Generate a new token in ", kTokenSteps,
                     " and copy it immediately; it is shown only once.");
    if (!CheckSingleToken("token", "Personal Access Token", token, fix,
                          findings)) {
      return;
    }
    absl::string_view rest = token;
    if (absl::ConsumePrefix(&rest, "dor_v1_")) {
      findings.push_back(ErrorFinding(
          "token", "refresh_token",
          "This is an OAuth refresh token (dor_v1_…); it cannot call the API.",
          fix));
      return;
    }
    bool oauth = absl::ConsumePrefix(&rest, "doo_v1_");
    bool personal = !oauth && absl::ConsumePrefix(&rest, "dop_v1_");
    if (!oauth && !personal &&
        !(rest.size() == kTokenHexLength && IsHexString(rest))) {
      findings.push_back(ErrorFinding(
          "token", "bad_format",
          "The token is not a DigitalOcean personal access token (dop_v1_ "
          "followed by 64 hexadecimal characters).",
          fix));
      return;
    }
    if (rest.size() != kTokenHexLength) {
      findings.push_back(ErrorFinding(
          "token", "wrong_length",
          absl::StrCat("The part after the prefix has ", rest.size(),
                       " characters; DigitalOcean tokens have ",
                       kTokenHexLength, "."),
          fix));
      return;
    }
    if (!IsHexString(rest)) {
      findings.push_back(ErrorFinding(
          "token", "bad_format",
          "The token contains characters other than hexadecimal digits "
          "after its prefix.",
          fix));
      return;
    }
    if (oauth) {
      findings.push_back(WarningFinding(
          "token", "oauth_token",
          "This is an OAuth access token (doo_v1_…) issued to an app; it "
          "expires and its scopes are the app's.",
          absl::StrCat("Use a personal access token from ", kTokenSteps, ".")));
    } else if (!personal) {
      findings.push_back(WarningFinding(
          "token", "legacy_token",
          "This token has the old format without the dop_v1_ prefix; "
          "DigitalOcean has issued prefixed tokens since 2021 and may have "
          "revoked old ones.",
          absl::StrCat("If the token is rejected, generate a new one in ",
                       kTokenSteps, ".")));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewDigitalOceanProvider() {
  return std::make_unique<DigitalOceanProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
