#include "broker/passkey_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/common/status_macros.h"

ABSL_FLAG(std::string, passkey_origins, "",
          "Comma-separated origins a passkey ceremony may come from, exactly "
          "as the browser "
          "reports them (e.g. http://localhost:47913, the IDE's passkey page). "
          "Empty: passkeys "
          "cannot be registered or used.");
ABSL_FLAG(std::string, passkey_rp_id, "localhost",
          "The WebAuthn relying party ID: a domain the origins belong to, "
          "never an IP address.");
ABSL_FLAG(
    bool, require_passkey, false,
    "Approvals need a registered passkey; the approval PIN alone is refused.");
ABSL_FLAG(bool, passkey_require_uv, false,
          "Passkey assertions must carry user verification (the "
          "authenticator's PIN or "
          "biometric), not only presence.");

namespace credbroker {

bool IsPasskeyFlagFile(absl::string_view filename) {
  absl::string_view self = __FILE__;
  while (absl::ConsumePrefix(&self, "/")) {
  }
  return filename == self;
}

absl::StatusOr<std::unique_ptr<Passkeys>> PasskeysFromFlags(
    Store* store, const Sealer* sealer, AuditLog* audit, ApprovalPin* pin) {
  PasskeyPolicy policy;
  policy.rp.id = absl::GetFlag(FLAGS_passkey_rp_id);
  for (absl::string_view o : absl::StrSplit(
           absl::GetFlag(FLAGS_passkey_origins), ',', absl::SkipWhitespace())) {
    policy.rp.origins.emplace_back(absl::StripAsciiWhitespace(o));
  }
  policy.rp.require_user_verification = absl::GetFlag(FLAGS_passkey_require_uv);
  policy.required = absl::GetFlag(FLAGS_require_passkey);
  const std::string& id = policy.rp.id;
  if (id.empty() || absl::StrContains(id, ":") || absl::StrContains(id, "/") ||
      absl::ascii_isdigit(static_cast<unsigned char>(id.back()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--passkey_rp_id must be a domain such as localhost, not "
                     "an IP address or URL: \"",
                     id, "\""));
  }
  if (policy.required && policy.rp.origins.empty()) {
    return absl::InvalidArgumentError(
        "--require_passkey needs --passkey_origins: the origins a passkey "
        "ceremony comes from");
  }
  auto passkeys = std::make_unique<Passkeys>(
      store, sealer, audit, pin, [] { return absl::Now(); }, policy);
  CB_RETURN_IF_ERROR(passkeys->Load());
  return passkeys;
}

}  // namespace credbroker
