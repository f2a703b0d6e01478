// credctl's audit command (approver token): audit lists the audit log,
// audit verify checks its hash chain.
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_AUDIT_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_AUDIT_H_

#include <string>

#include "client/cli/cli_util.h"
#include "client/credbroker/client.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsAuditCommand(const std::string& command);
// Runs the command with `client` (connected with the approver token);
// returns the process's exit code.
int RunAuditCommand(const Args& args, client::CredentialClient& client);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_AUDIT_H_
