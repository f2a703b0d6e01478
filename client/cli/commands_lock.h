// credctl's commands about the store's key (approver token): unlock, lock
// and rekey. Secrets are read from the terminal or from the descriptors
// named with --passphrase_fd, --new_passphrase_fd and --pin_fd, never from
// arguments or the environment.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_LOCK_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_LOCK_H_

#include <string>

#include "client/cli/cli_util.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsLockCommand(const std::string& command);
// Runs the command; returns the process's exit code.
int RunLockCommand(const Args& args, const Context& ctx);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_LOCK_H_
