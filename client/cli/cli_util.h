// Shared by credctl's commands: command-line arguments, error printing,
// JSON output and terminal prompts. Not thread-safe unless stated.
#ifndef CREDBROKER_CLIENT_CLI_CLI_UTIL_H_
#define CREDBROKER_CLIENT_CLI_CLI_UTIL_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"
#include "common/secret.h"
#include "google/protobuf/message.h"

namespace credbroker {
namespace cli {

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;  // --name -> value
  std::map<std::string, bool> switches;

  std::string Flag(const std::string& name, const std::string& def = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? def : it->second;
  }
  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    auto range = flags.equal_range(name);
    for (auto it = range.first; it != range.second; ++it)
      out.push_back(it->second);
    return out;
  }
  bool Switch(const std::string& name) const {
    return switches.count(name) > 0;
  }
};

// Everything a command needs to reach the broker as its role.
struct Context {
  std::string data_dir;
  client::Options approver;  // With the approver token (when read).
  client::Options agent;     // With the agent token (when read).
};

// Prints "credctl: MESSAGE" and the usage hint; returns 2.
int UsageError(const std::string& message);
// Prints the status and its field violations; returns 1.
int PrintError(const absl::Status& status);
std::optional<Args> Parse(int argc, char** argv, std::string& error);

// Indented JSON (field names as in the .proto), or one line when `compact`.
std::string ToJson(const google::protobuf::Message& m, bool compact = false);
bool StdinIsTerminal();
// Reads one line, prompting on stderr; without echo when `hidden`. nullopt
// when the input ended. Safe to interrupt: the echo is restored on SIGINT.
std::optional<std::string> Prompt(const std::string& label, bool hidden);
// A human-presence secret (the approval PIN, the store's passphrase): one
// line of the file descriptor given with --pin_fd N when set, else typed on
// the controlling terminal (/dev/tty) without echo — never argv, the
// environment or a piped stdin. Read straight into SecretBytes (no
// std::string ever holds it; common/secret_input.h). nullopt when nothing
// could be read (no terminal, end of input, an empty line, a line over 4096
// bytes) or --pin_fd is not a descriptor number.
std::optional<SecretBytes> ReadSecret(const Args& args,
                                      const std::string& label);
// The same from `fd` when >= 0, else typed on /dev/tty after `label`.
std::optional<SecretBytes> ReadSecretLine(int fd, const std::string& label);
// The descriptor given with --NAME N: -1 when the flag is absent, -2 when
// its value is not a descriptor number.
int FdFlag(const Args& args, const std::string& name);
// Asks the person to choose a new approval PIN (twice, unless it comes from
// --pin_fd), and first for the store's passphrase when `status` says the
// first PIN needs it; fills `change`. INVALID_ARGUMENT saying what to do when
// nothing could be read or the two PINs differ.
absl::Status ChooseApprovalPin(const Args& args,
                               const client::ApprovalPinStatus& status,
                               client::PinChange* change);
// "2026-11-26 10:02" (UTC), or "-" for an unset time (InfinitePast).
// (Not FormatTime: absl::FormatTime(absl::Time) would make a call
// ambiguous.)
std::string TimeText(absl::Time t);
// "in 9m", "2m ago" relative to now; "-" for an unset time.
std::string Relative(absl::Time t);
// "READY", "ROTATION_DUE", ... for a readiness.
std::string ReadinessText(client::Readiness r);
// "note", "warning" or "error".
std::string SeverityText(client::Severity s);
// Each finding on its own line ("  error: field: message"), then its fix.
void PrintFindings(const std::vector<client::Finding>& findings);

}  // namespace cli
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CLI_CLI_UTIL_H_
