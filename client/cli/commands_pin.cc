// credctl's pin command (commands_pin.h): pin status shows the approval
// PIN's state, pin set and pin clear change it (asking the current PIN
// first when one is set).
#include "client/cli/commands_pin.h"

#include <iostream>
#include <optional>
#include <string>

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
  int PrintStatus(const v1::ApprovalPinStatus& status) {
    if (json()) {
      std::cout << ToJson(status) << "\n";
      return 0;
    }
    std::cout
        << (status.pin_set()
                ? "An approval PIN is set: every approval must carry it.\n"
            : status.required() ? "No approval PIN is set: approvals are "
                                  "refused until one is (credctl pin set).\n"
                                : "No approval PIN is set.\n");
    if (!status.required()) {
      std::cout << "  WARNING: the broker runs with --approval_factor=none: "
                   "approvals need only the approver token, which an agent "
                   "running as you can read.\n";
    }
    if (status.has_window_until()) {
      std::cout << "  this process may approve without it until "
                << FormatTime(status.window_until()) << " UTC\n";
    }
    if (status.failed_attempts() > 0) {
      std::cout << "  wrong attempts since the last right one: "
                << status.failed_attempts() << "\n";
    }
    if (status.has_locked_until()) {
      std::cout << "  approvals locked until "
                << FormatTime(status.locked_until()) << " UTC\n";
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
    absl::StatusOr<v1::ApprovalPinStatus> status =
        client_->GetApprovalPinStatus();
    if (!status.ok()) return PrintError(status.status());
    if (sub == "status") return PrintStatus(*status);
    v1::SetApprovalPinRequest req;
    if (status->pin_set()) {
      std::optional<std::string> current =
          ReadSecret(args_, "Current approval PIN");
      if (!current) return UsageError("no current PIN given");
      req.set_current_pin(*current);
      WipeString(*current);
    } else if (sub == "clear") {
      std::cout << "No approval PIN is set.\n";
      return 0;
    }
    if (sub == "set") {
      if (absl::Status s = ChooseApprovalPin(args_, *status, &req); !s.ok()) {
        WipeString(*req.mutable_current_pin());
        WipeString(*req.mutable_store_passphrase());
        return PrintError(s);
      }
    }
    absl::StatusOr<v1::SetApprovalPinResponse> r = client_->SetApprovalPin(req);
    WipeString(*req.mutable_current_pin());
    WipeString(*req.mutable_new_pin());
    WipeString(*req.mutable_store_passphrase());
    if (!r.ok()) return PrintError(r.status());
    std::cout << (r->pin_set()
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
