// credctl's pin command (approver token): set, clear or show the approval
// PIN every approval needs.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_PIN_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_PIN_H_

#include <string>

#include "client/cli/cli_util.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsPinCommand(const std::string& command);
// Runs the command with `client` (connected with the approver token);
// returns the process's exit code.
int RunPinCommand(const Args& args, client::CredentialClient& client);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_PIN_H_
