// credctl's commands about providers' stored credentials beyond set/list:
// doctor, history, rollback, default and bindings (approver token).
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_PROVIDER_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_PROVIDER_H_

#include <string>

#include "client/cli/cli_util.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsProviderCommand(const std::string& command);
// Runs the command; returns the process's exit code.
int RunProviderCommand(const Args& args, const Context& ctx);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_PROVIDER_H_
