// credctl's pin command (commands_pin.h): pin status shows the approval
// PIN's state, pin set and pin clear change it (asking the current PIN
// first when one is set).
#include "client/cli/commands_pin.h"

#include <iostream>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "client/internal/convert.h"
#include "common/secret.h"

namespace credbroker {
namespace cli {
namespace {

class PinCli {
 public:
  PinCli(const Args& args, client::CredentialClient* client)
      : args_(args), client_(client) {}

  int Run() { return Pin(); }

 private:
  bool json() const { return args_.Switch("json"); }

  // pin status: what the broker says of the approval PIN.
  int PrintStatus(const client::ApprovalPinStatus& status) {
    if (json()) {
      std::cout << ToJson(
                       client::internal::AsProto<v1::ApprovalPinStatus>(status))
                << "\n";
      return 0;
    }
    std::cout
        << (status.pin_set
                ? "An approval PIN is set: every approval must carry it.\n"
            : status.required ? "No approval PIN is set: approvals are "
                                "refused until one is (credctl pin set).\n"
                              : "No approval PIN is set.\n");
    if (!status.required) {
      std::cout << "  WARNING: the broker runs with --approval_factor=none: "
                   "approvals need only the approver token, which an agent "
                   "running as you can read.\n";
    }
    if (status.window_until != absl::InfinitePast()) {
      std::cout << "  this process may approve without it until "
                << TimeText(status.window_until) << " UTC\n";
    }
    if (status.failed_attempts > 0) {
      std::cout << "  wrong attempts since the last right one: "
                << status.failed_attempts << "\n";
    }
    if (status.locked_until != absl::InfinitePast()) {
      std::cout << "  approvals locked until " << TimeText(status.locked_until)
                << " UTC\n";
    }
    return 0;
  }

  // pin set | clear | status.
  int Pin() {
    const std::string sub = args_.positional.empty() ? "" : args_.positional[0];
    if (args_.positional.size() != 1 ||
        (sub != "set" && sub != "clear" && sub != "status")) {
      return UsageError("pin takes one of: set, clear, status");
    }
    absl::StatusOr<client::ApprovalPinStatus> status =
        client_->GetApprovalPinStatus();
    if (!status.ok()) return PrintError(status.status());
    if (sub == "status") return PrintStatus(*status);
    client::PinChange change;
    if (status->pin_set) {
      std::optional<SecretBytes> current =
          ReadSecret(args_, "Current approval PIN");
      if (!current) return UsageError("no current PIN given");
      change.current_pin = *std::move(current);
    } else if (sub == "clear") {
      std::cout << "No approval PIN is set.\n";
      return 0;
    }
    if (sub == "set") {
      if (absl::Status s = ChooseApprovalPin(args_, *status, &change);
          !s.ok()) {
        return PrintError(s);
      }
    }
    absl::StatusOr<bool> pin_set = client_->SetApprovalPin(change);
    if (!pin_set.ok()) return PrintError(pin_set.status());
    std::cout << (*pin_set
                      ? "Approval PIN set: every approval must now carry it.\n"
                      : "Approval PIN cleared.\n");
    return 0;
  }

  const Args& args_;
  client::CredentialClient* client_;
};

}  // namespace

bool IsPinCommand(const std::string& c) { return c == "pin"; }

int RunPinCommand(const Args& args, client::CredentialClient& client) {
  return PinCli(args, &client).Run();
}

}  // namespace cli
}  // namespace credbroker
