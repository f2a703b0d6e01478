// credctl passkey list | remove: the passkeys registered as the
// human-presence factor (approver token). Registration itself is a browser
// ceremony: the IDE does it.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_PASSKEY_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_PASSKEY_H_

#include <string>

#include "client/cli/cli_util.h"

namespace credbroker {
namespace cli {

// Whether `command` is "passkey".
bool IsPasskeyCommand(const std::string& command);
// Runs it; returns the process's exit code.
int RunPasskeyCommand(const Args& args, const Context& ctx);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_PASSKEY_H_
