#include "client/cli/commands_passkey.h"

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/credbroker/client.h"
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
  absl::StatusOr<v1::ListPasskeysResponse> r = c.ListPasskeys();
  if (!r.ok()) return PrintError(r.status());
  if (args.Switch("json")) {
    std::cout << ToJson(*r) << "\n";
    return 0;
  }
  if (r->passkeys().empty()) std::cout << "No passkey is registered.\n";
  for (const v1::Passkey& p : r->passkeys()) {
    std::cout << p.id() << "  " << p.name() << "  "
              << AlgorithmName(p.algorithm()) << "  registered "
              << FormatTime(p.created()) << " UTC, last used "
              << FormatTime(p.last_used()) << (p.has_last_used() ? " UTC" : "")
              << ", counter " << p.sign_count() << "\n";
  }
  std::cout << (r->required()
                    ? "Approvals need a passkey (--require_passkey).\n"
                    : "Approvals take a passkey or the approval PIN.\n");
  return 0;
}

int Remove(client::CredentialClient& c, const Args& args) {
  v1::RemovePasskeyRequest req;
  if (args.Switch("all")) {
    if (args.positional.size() != 1)
      return UsageError("passkey remove --all takes no id");
    req.set_all(true);
  } else if (args.positional.size() == 2) {
    req.set_id(args.positional[1]);
  } else {
    return UsageError(
        "passkey remove takes the passkey's id (credctl passkey list), or "
        "--all");
  }
  std::optional<std::string> pin = ReadSecret(args, "Approval PIN");
  if (!pin) return UsageError("no approval PIN given");
  req.set_pin(*pin);
  WipeString(*pin);
  absl::StatusOr<v1::RemovePasskeyResponse> r = c.RemovePasskey(req);
  WipeString(*req.mutable_pin());
  if (!r.ok()) return PrintError(r.status());
  std::cout << (req.all() ? "Every passkey removed.\n" : "Passkey removed.\n");
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
