// credctl's approval-flow commands: watch, pending, form, approve, deny,
// grants, revoke, standing (approver token) and request (agent token).
#ifndef CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_H_
#define CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_H_

#include <string>

#include "client/cli/cli_util.h"

namespace credbroker {
namespace cli {

// Whether `command` is one of the commands here.
bool IsFlowCommand(const std::string& command);
// Whether `command` acts as the agent (and uses the agent token).
bool IsAgentCommand(const std::string& command);
// Runs the command; returns the process's exit code.
int RunFlowCommand(const Args& args, const Context& ctx);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_COMMANDS_FLOW_H_
