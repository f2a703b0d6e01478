#include "client/cli/commands_passkey.h"

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"
#include "client/internal/convert.h"
#include "common/secret.h"

namespace credbroker {
namespace cli {
namespace {

std::string AlgorithmName(int64_t alg) {
  if (alg == -7) return "ES256";
  if (alg == -8) return "EdDSA";
  return absl::StrCat("COSE ", alg);
}

int List(client::CredentialClient& c, const Args& args) {
  absl::StatusOr<client::PasskeyList> r = c.ListPasskeys();
  if (!r.ok()) return PrintError(r.status());
  if (args.Switch("json")) {
    std::cout << ToJson(client::internal::AsProto<v1::ListPasskeysResponse>(*r))
              << "\n";
    return 0;
  }
  if (r->passkeys.empty()) std::cout << "No passkey is registered.\n";
  for (const client::Passkey& p : r->passkeys) {
    const bool used = p.last_used != absl::InfinitePast();
    std::cout << p.id << "  " << p.name << "  " << AlgorithmName(p.algorithm)
              << "  registered " << TimeText(p.created) << " UTC, last used "
              << TimeText(p.last_used) << (used ? " UTC" : "") << ", counter "
              << p.sign_count << "\n";
  }
  std::cout << (r->required
                    ? "Approvals need a passkey (--require_passkey).\n"
                    : "Approvals take a passkey or the approval PIN.\n");
  return 0;
}

int Remove(client::CredentialClient& c, const Args& args) {
  client::PasskeyRemoval removal;
  if (args.Switch("all")) {
    if (args.positional.size() != 1)
      return UsageError("passkey remove --all takes no id");
    removal.all = true;
  } else if (args.positional.size() == 2) {
    removal.id = args.positional[1];
  } else {
    return UsageError(
        "passkey remove takes the passkey's id (credctl passkey list), or "
        "--all");
  }
  std::optional<SecretBytes> pin = ReadSecret(args, "Approval PIN");
  if (!pin) return UsageError("no approval PIN given");
  removal.pin = *std::move(pin);
  absl::Status removed = c.RemovePasskey(removal);
  if (!removed.ok()) return PrintError(removed);
  std::cout << (removal.all ? "Every passkey removed.\n"
                            : "Passkey removed.\n");
  return 0;
}

}  // namespace

bool IsPasskeyCommand(const std::string& command) {
  return command == "passkey";
}

int RunPasskeyCommand(const Args& args, const Context& ctx) {
  const std::string sub = args.positional.empty() ? "" : args.positional[0];
  if (sub != "list" && sub != "remove") {
    return UsageError("passkey takes one of: list, remove ID, remove --all");
  }
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(ctx.approver);
  if (!c.ok()) return PrintError(c.status());
  return sub == "list" ? List(**c, args) : Remove(**c, args);
}

}  // namespace cli
}  // namespace credbroker
