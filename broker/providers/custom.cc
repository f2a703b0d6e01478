// Custom: the application's own secrets, under names the user chooses.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "broker/providers/checks.h"

namespace credbroker {
namespace providers_internal {
namespace {

// [A-Za-z_][A-Za-z0-9_.-]{0,63}
bool IsCustomFieldName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

class CustomProvider : public BasicProvider {
 public:
  CustomProvider() : BasicProvider(MakeSpec()) {}

 private:
  static ProviderSpec MakeSpec() {
    ProviderSpec s;
    s.id = "custom";
    s.display_name = "Application secrets";
    s.description =
        "Custom secrets your application needs (API keys, tokens), under "
        "names you choose. Every value is treated as sensitive.";
    s.arbitrary_fields = true;
    s.how_to_get = {
        "Get each secret from the service that issues it.",
        "Give each a name of letters, digits, '_', '.' and '-', starting "
        "with a letter or '_' (e.g. STRIPE_API_KEY), at most 64 characters.",
        "Enter each value; values are stored encrypted and never shown "
        "back.",
    };
    return s;
  }

  bool AcceptsFieldName(absl::string_view name) const override {
    return IsCustomFieldName(name);
  }

  std::string UnknownFieldDescription(absl::string_view) const override {
    return "secret names are 1 to 64 letters, digits, '_', '.' and '-', "
           "starting with a letter or '_' (e.g. STRIPE_API_KEY)";
  }

  void CheckFields(const FieldValues& values,
                   std::vector<Finding>& findings) const override {
    bool any = false;
    for (const auto& entry : values) any = any || !entry.second.empty();
    if (!any) {
      findings.push_back(
          ErrorFinding("", "missing_field", "No secrets were given.",
                       "Add at least one named secret, e.g. STRIPE_API_KEY."));
    }
  }
};

}  // namespace

std::unique_ptr<Provider> NewCustomProvider() {
  return std::make_unique<CustomProvider>();
}

}  // namespace providers_internal
}  // namespace credbroker
