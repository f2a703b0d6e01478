// Slack: an Incoming Webhook URL for watcher alerts.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kField[] = "webhook_url";

constexpr char kFix[] =
    "Copy the Webhook URL again from the Incoming Webhooks integration "
    "(Slack: Apps → Incoming Webhooks → your channel's configuration); it "
    "starts with https://hooks.slack.com/services/.";

// Incoming webhook URLs are
// https://hooks.slack.com/services/T<workspace>/B<webhook>/<24-char secret>;
// Workflow Builder webhooks are https://hooks.slack.com/workflows/...; GovSlack
// uses hooks.slack-gov.com. Source: Slack API docs, "Sending messages using
// incoming webhooks" (https://api.slack.com/messaging/webhooks) and
// "Workflow Builder: webhook triggers".
bool IsSlackId(absl::string_view s, char first) {
  if (s.size() < 2 || s[0] != first) return false;
  for (char c : s.substr(1)) {
    if (!absl::ascii_isupper(c) && !absl::ascii_isdigit(c)) return false;
  }
  return true;
}

class SlackProvider : public BasicProvider {
 public:
  SlackProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "slack";
    s.display_name = "Slack";
    s.description =
        "An Incoming Webhook URL, used by the Watcher to post alerts to a "
        "channel.";
    FieldSpec url;
    url.name = "webhook_url";
    url.label = "Incoming Webhook URL";
    url.sensitive = true;
    url.format_hint = "https://hooks.slack.com/services/T…/B…/…";
    url.where_to_find =
        "Slack: Apps → Incoming Webhooks → Add to Slack → Webhook URL";
    s.fields = {url};
    s.how_to_get = {
        "Go to your Slack workspace settings.",
        "Navigate to Apps → Add apps.",
        "Search for \"Incoming Webhooks\" and add it.",
        "Click Add to Slack.",
        "Choose a channel for alerts (e.g. #monk-alerts).",
        "Click Add Incoming WebHooks integration.",
        "Copy the Webhook URL (it starts with https://hooks.slack.com/...).",
    };
    s.troubleshooting = {
        "Webhook removed or channel archived: add a new Incoming Webhooks "
        "integration and update the URL.",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    absl::string_view url = ValueOf(values, "webhook_url");
    if (url.empty()) return;
    if (!CheckSingleToken(kField, "Webhook URL", url, kFix, findings)) return;
    if (!CheckOrigin(url, findings)) return;
    CheckPath(url, findings);
  }

  // True when the URL starts with https://hooks.slack.com (or GovSlack's
  // host); otherwise an error finding.
  static bool CheckOrigin(absl::string_view url,
                          std::vector<Finding>& findings) {
    if (absl::StartsWithIgnoreCase(url, "http://")) {
      findings.push_back(ErrorFinding(
          kField, "insecure_scheme",
          "The webhook URL uses http://; the URL is a secret and must only "
          "be sent over https://.",
          kFix));
      return false;
    }
    if (!absl::StartsWithIgnoreCase(url, "https://")) {
      findings.push_back(
          ErrorFinding(kField, "bad_format",
                       "The webhook URL does not start with https://.", kFix));
      return false;
    }
    absl::string_view rest = url.substr(8);
    std::string host = absl::AsciiStrToLower(rest.substr(0, rest.find('/')));
    if (host != "hooks.slack.com" && host != "hooks.slack-gov.com") {
      findings.push_back(ErrorFinding(
          kField, "wrong_host",
          "The webhook URL is not on hooks.slack.com; alerts would be sent "
          "to another server.",
          kFix));
      return false;
    }
    return true;
  }

  // The path of a URL on Slack's webhook host: /services/T…/B…/<secret>.
  static void CheckPath(absl::string_view url, std::vector<Finding>& findings) {
    absl::string_view rest = url.substr(8);  // After "https://".
    size_t slash = rest.find('/');
    if (slash == absl::string_view::npos ||
        rest.find_first_of("?#") != absl::string_view::npos) {
      findings.push_back(ErrorFinding(
          kField, "bad_format",
          "The webhook URL has no path, or has a query or fragment; webhook "
          "URLs are https://hooks.slack.com/services/T…/B…/….",
          kFix));
      return;
    }
    std::vector<absl::string_view> parts =
        absl::StrSplit(rest.substr(slash + 1), '/');
    if (!parts.empty() && parts[0] == "workflows") {
      findings.push_back(InfoFinding(
          kField, "workflow_webhook",
          "This is a Workflow Builder webhook, not an Incoming Webhook; it "
          "works only if the workflow defines the variables the alerts "
          "send.",
          "For plain alerts, use an Incoming Webhooks URL "
          "(https://hooks.slack.com/services/…)."));
      return;
    }
    bool ok = parts.size() == 4 && parts[0] == "services" &&
              IsSlackId(parts[1], 'T') && IsSlackId(parts[2], 'B') &&
              IsAlnumString(parts[3]);
    if (!ok) {
      findings.push_back(ErrorFinding(
          kField, "bad_format",
          "The webhook URL's path is not /services/T…/B…/<secret>; it may be "
          "cut short or be another Slack link.",
          kFix));
      return;
    }
    if (parts[3].size() != 24) {
      findings.push_back(WarningFinding(
          kField, "unusual_length",
          absl::StrCat("The last part of the webhook URL has ", parts[3].size(),
                       " characters; Slack's have 24. It may be cut short."),
          kFix));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewSlackProvider() {
  return std::make_unique<SlackProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
