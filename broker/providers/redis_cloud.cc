// Redis Cloud: the account's API keys and a database password.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

constexpr char kKeySteps[] =
    "the Redis Cloud console: Account Settings → API Keys";

// Redis's password complexity rules require at least 8 characters with
// upper- and lowercase letters, digits and a special character. Source:
// Redis docs, "Configure password complexity rules"
// (https://redis.io/docs/latest/operate/rs/security/access-control/manage-passwords/password-complexity-rules/).
// Shorter than 8 is refused; the broker recommends 12 or more.
constexpr size_t kMinPassword = 8;
constexpr size_t kRecommendedPassword = 12;

class RedisCloudProvider : public BasicProvider {
 public:
  RedisCloudProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "redis-cloud";
    s.display_name = "Redis Cloud";
    s.description =
        "The Redis Cloud API account key and user key, used to create "
        "databases, and the password for the databases created.";
    FieldSpec account;
    account.name = "account_key";
    account.label = "Account Key";
    account.sensitive = true;
    account.format_hint = "From Account Settings → API Keys";
    account.where_to_find = absl::StrCat(kKeySteps, " → Account key");
    FieldSpec user;
    user.name = "user_key";
    user.label = "User Key";
    user.sensitive = true;
    user.format_hint = "From Account Settings → API Keys";
    user.where_to_find = absl::StrCat(kKeySteps, " → User keys");
    FieldSpec password;
    password.name = "database_password";
    password.label = "Database Password";
    password.sensitive = true;
    password.generatable = true;
    password.format_hint =
        "At least 12 characters, mixing letters, digits and symbols; or let "
        "the broker generate one";
    password.where_to_find =
        "a password manager, or let the broker generate one";
    s.fields = {account, user, password};
    s.how_to_get = {
        "Log into the Redis Cloud console.",
        "Navigate to Account Settings → API Keys.",
        "Find your Account Key and User Key.",
        "Copy both values.",
        "Choose a strong database password (or let the broker generate one).",
    };
    return s;
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    std::string fix = absl::StrCat("Copy the key again from ", kKeySteps, ".");
    absl::string_view account = ValueOf(values, "account_key");
    absl::string_view user = ValueOf(values, "user_key");
    if (!account.empty()) {
      CheckSingleToken("account_key", "Account Key", account, fix, findings);
    }
    if (!user.empty()) {
      CheckSingleToken("user_key", "User Key", user, fix, findings);
    }
    if (!account.empty() && account == user) {
      findings.push_back(ErrorFinding(
          "user_key", "same_value",
          "The account key and the user key are the same; they are two "
          "different keys.",
          absl::StrCat("Copy the Account Key and a User Key from ", kKeySteps,
                       ".")));
    }

    absl::string_view password = ValueOf(values, "database_password");
    if (password.empty()) return;
    size_t chars = CharCount(password);
    constexpr char kGenerate[] =
        "Choose a longer password mixing letters, digits and symbols, or let "
        "the broker generate one.";
    if (chars < kMinPassword) {
      findings.push_back(
          ErrorFinding("database_password", "weak_password",
                       absl::StrCat("The database password has ", chars,
                                    " characters; at least ", kMinPassword,
                                    " are required."),
                       kGenerate));
      return;
    }
    bool lower = false, upper = false, digit = false, other = false;
    for (char c : password) {
      if (absl::ascii_islower(c)) {
        lower = true;
      } else if (absl::ascii_isupper(c)) {
        upper = true;
      } else if (absl::ascii_isdigit(c)) {
        digit = true;
      } else {
        other = true;
      }
    }
    int classes = lower + upper + digit + other;
    if (chars < kRecommendedPassword || classes < 3) {
      findings.push_back(WarningFinding(
          "database_password", "weak_password",
          absl::StrCat("The database password is weak: use at least ",
                       kRecommendedPassword,
                       " characters from at least three of lowercase, "
                       "uppercase, digits and symbols."),
          kGenerate));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewRedisCloudProvider() {
  return std::make_unique<RedisCloudProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
