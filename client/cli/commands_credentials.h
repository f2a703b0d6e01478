// credctl's commands about stored credentials (approver token):
// providers, list, show, set, delete, validate and needs.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_CREDENTIALS_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_CREDENTIALS_H_

#include <string>

#include "client/cli/cli_util.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsCredentialCommand(const std::string& command);
// Runs the command with `client` (connected with the approver token);
// returns the process's exit code.
int RunCredentialCommand(const Args& args, client::CredentialClient& client);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_CREDENTIALS_H_
