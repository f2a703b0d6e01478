// credctl: manage the credentials held by credbrokerd, and answer (or make)
// agents' credential requests, from a terminal.
//
//   credctl [--broker ADDR] [--token_file PATH] [--json] COMMAND ...
//
// Every command talks to the broker through the client library with the
// token of the role it acts as: the agent token for `request`, the approver
// token for everything else. Errors print the broker's message and every
// field violation and exit 1; usage errors exit 2. This file parses the
// global flags, connects and hands each command to its group:
// commands_credentials.cc, commands_provider.cc, commands_audit.cc,
// commands_pin.cc, commands_lock.cc, commands_passkey.cc and (approval
// flow, request) commands_flow.cc.
#include <limits.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/cli_util.h"
#include "client/cli/commands_audit.h"
#include "client/cli/commands_credentials.h"
#include "client/cli/commands_flow.h"
#include "client/cli/commands_lock.h"
#include "client/cli/commands_passkey.h"
#include "client/cli/commands_pin.h"
#include "client/cli/commands_provider.h"
#include "client/credbroker/client.h"
#include "client/internal/channel.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/secret.h"
#include "common/text.h"
#include "grpc/grpc.h"

namespace credbroker {
namespace cli {
namespace {

constexpr char kUsage[] =
    R"(credctl — manage the credentials held by credbrokerd

Usage: credctl [global flags] COMMAND [flags]

Commands:
  providers                         list the providers and what each needs
  list [PROVIDER]                   configured credentials and their readiness
  show PROVIDER [--profile P] [--version N]
                                    one credential, secrets masked
  set PROVIDER [--profile P] [--field NAME=VALUE]... [--field NAME]...
               [--from_file PATH] [--generate NAME]... [--keep]
                                    store a new version (prompts on a terminal
                                    for missing fields, secrets hidden;
                                    --field NAME alone prompts for that field)
  delete PROVIDER [--profile P]     remove every version
  validate PROVIDER [--profile P] [--field NAME=VALUE]... [--from_file PATH]
                                    diagnose candidate values, or the stored ones
  needs TARGET... [--profile P] [--resource R]
                                    which credentials these targets need, and
                                    which profile each would use (R: a resource,
                                    e.g. a cluster, bound to the profile that
                                    created it)
  doctor [PROVIDER] [--profile P]   "why does it not work?" for stored credentials
                                    (all of them without PROVIDER): readiness,
                                    findings and fixes, what to check in the
                                    provider's console, the permissions needed;
                                    exits 1 when any credential is not READY (or
                                    nothing is stored for the PROVIDER named)
  history PROVIDER [--profile P]    every stored version: times and fingerprints
  rollback PROVIDER --version N [--profile P]
                                    store version N's values again as a new version
  default PROVIDER [PROFILE]        show (or set) the profile used when none is named
  bindings [PROVIDER]               resources and the provider/profile that created
                                    each (state: current, rotated, profile_deleted)
  audit [--provider P] [--kind K] [--since T] [--until T]
                                    the audit log (T: RFC 3339, e.g. 2026-11-26T10:00:00Z)
  audit verify                      check the audit log's hash chain; exits 1 and
                                    names the first bad event when it was edited,
                                    or events were inserted or removed
  unlock [--passphrase_fd N]        unlock a locked broker with the store's
                                    passphrase (asked on the terminal)
  lock                              lock now: the broker wipes the store's key
                                    from memory until the next unlock
  rekey [--to passphrase|file] [--passphrase_fd N] [--new_passphrase_fd N]
        [--pin_fd N]                change what protects the store's key (a new
                                    passphrase by default; file: a key file any
                                    process running as you can read); asks for
                                    the current passphrase, the new one twice and
                                    the approval PIN on the terminal, or reads
                                    one line of each from the descriptors
  pin set | pin clear | pin status  the approval PIN every approval needs (asked
                                    on the terminal — the new PIN twice; or lines
                                    of --pin_fd N: the current PIN first when one
                                    is set; the first PIN of a passphrase store
                                    needs the store's passphrase, asked first)
  passkey list | passkey remove ID | passkey remove --all
                                    the passkeys that approve in place of the PIN
                                    (registered in the IDE); removing asks the PIN

Approving agents' requests (approver token):
  watch                             the approval client: shows each pending request,
                                    asks for the form's fields and approve/deny;
                                    without a terminal (or with --json) prints
                                    each event as a line
  pending                           requests waiting for a decision
  form PROVIDER [--profile P] | form --request ID
                                    the credential form (fields, how to get them)
  approve REQUEST_ID [--scope once|session|standing] [--ttl D] [--pattern P]
                     [--field NAME=VALUE]... [--field NAME]... [--generate NAME]...
                                    approve (D: 15m, 2h, 720h; P: action pattern
                                    of a standing approval, e.g. "deploy *")
                                    (asks for the approval PIN when one is set;
                                    --pin_fd N reads it from that descriptor)
  deny REQUEST_ID --reason TEXT     deny, telling the agent why
  grants [--all]                    active grants (--all: ended ones too)
  revoke GRANT_ID [--reason TEXT]   end a grant; the agent is told
  standing [--all]                  standing approvals
  standing revoke ID                end a standing approval

Acting as an agent (agent token, default <data dir>/agent.token):
  request PROVIDER --action TEXT [--profile P] [--context K=V]... [--need_id ID]
          [--session_key K] [--timeout S]
                                    ask for a credential and wait (default 900 s)
                                    for the decision; prints the grant as JSON;
                                    exits 3 when denied, 4 expired, 5 cancelled

Global flags:
  --broker ADDR       unix:/path/broker.sock or 127.0.0.1:PORT
                      (default unix:<data dir>/broker.sock)
  --token_file PATH   token of the command's role (default <data dir>/approver.token,
                      or <data dir>/agent.token for `request`)
  --data_dir DIR      the broker's data directory (default $CREDBROKER_DATA_DIR
                      or ~/.local/share/credbroker)
  --json              print the broker's answer as JSON
  --tls_ca PATH       for a TCP --broker: the certificate to trust (default
                      <data dir>/tls.crt, the broker's self-signed one)
  --tls_cert PATH --tls_key PATH
                      client certificate, for a broker started with --tls_client_ca
  --insecure_plaintext  plaintext TCP, for a broker run with --insecure_plaintext_tcp
  --timeout SECONDS   deadline of each call (default 30)
)";

// credctl speaks to the broker's Unix socket itself and leaves TLS to
// credctl-tls, the same program linked with gRPC's TLS (and so OpenSSL),
// installed beside it: for a TCP address it runs that in its place, with
// the same arguments, before reading anything. Returns only on failure.
int HandOverToTlsCompanion(char** argv, const std::string& address) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string dir = n > 0 ? std::string(self, n) : std::string();
  dir = dir.substr(0, dir.find_last_of('/') + 1);
  const std::string companion = absl::StrCat(dir, "credctl-tls");
  execv(companion.c_str(), argv);
  const int err = errno;
  return PrintError(absl::FailedPreconditionError(absl::StrCat(
      "cannot run ", companion, " for a TLS connection to ", address, ": ",
      std::strerror(err),
      ". credctl-tls is built and installed beside credctl; reinstall both, "
      "or reach the broker on its Unix socket (--broker unix:PATH)")));
}

int Main(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = Parse(argc, argv, error);
  if (!args) return UsageError(error);
  if (args->command.empty() || args->command == "help" ||
      args->Switch("help")) {
    std::cout << kUsage;
    return args->command.empty() && !args->Switch("help") ? 2 : 0;
  }
  Context ctx;
  ctx.data_dir = args->Flag("data_dir");
  if (ctx.data_dir.empty()) ctx.data_dir = DefaultDataDir();
  client::Options options;
  options.address =
      args->Flag("broker", absl::StrCat("unix:", ctx.data_dir, "/broker.sock"));
  const bool tcp = !absl::StartsWith(options.address, "unix:");
  options.insecure_plaintext = args->Switch("insecure_plaintext");
  if (tcp && !options.insecure_plaintext && !client::internal::TlsLinked()) {
    return HandOverToTlsCompanion(argv, options.address);
  }
  const bool as_agent = IsAgentCommand(args->command);
  std::string token_file = args->Flag(
      "token_file", absl::StrCat(ctx.data_dir, as_agent ? "/agent.token"
                                                        : "/approver.token"));
  absl::StatusOr<std::string> token = client::ReadTokenFile(token_file);
  if (!token.ok()) return PrintError(token.status());
  options.token = std::move(*token);
  options.tls_ca_file = args->Flag("tls_ca");
  if (tcp && options.tls_ca_file.empty() && !options.insecure_plaintext) {
    std::string generated = absl::StrCat(ctx.data_dir, "/tls.crt");
    if (access(generated.c_str(), R_OK) == 0) options.tls_ca_file = generated;
  }
  options.tls_cert_file = args->Flag("tls_cert");
  options.tls_key_file = args->Flag("tls_key");
  // For `request`, --timeout is how long to wait for the decision.
  if (!args->Flag("timeout").empty() && !as_agent) {
    int seconds = 0;
    if (!absl::SimpleAtoi(args->Flag("timeout"), &seconds) || seconds <= 0) {
      return UsageError("--timeout takes a positive number of seconds");
    }
    options.timeout = absl::Seconds(seconds);
  }
  (as_agent ? ctx.agent : ctx.approver) = options;
  if (IsFlowCommand(args->command)) return RunFlowCommand(*args, ctx);
  if (IsProviderCommand(args->command)) return RunProviderCommand(*args, ctx);
  if (IsPasskeyCommand(args->command)) return RunPasskeyCommand(*args, ctx);
  if (IsLockCommand(args->command)) return RunLockCommand(*args, ctx);
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(options);
  if (!c.ok()) return PrintError(c.status());
  client::CredentialClient& client = **c;
  if (IsCredentialCommand(args->command)) {
    return RunCredentialCommand(*args, client);
  }
  if (IsAuditCommand(args->command)) return RunAuditCommand(*args, client);
  if (IsPinCommand(args->command)) return RunPinCommand(*args, client);
  return UsageError(absl::StrCat("unknown command \"", args->command, "\""));
}

}  // namespace
}  // namespace cli
}  // namespace credbroker

int main(int argc, char** argv) {
  // credctl makes one or two calls and exits; what follows keeps it close
  // to git's credential helpers in process time (docs/BENCHMARKS.md).
#ifdef NDEBUG
  // Debian's Abseil runs its debug deadlock detector on every Mutex
  // acquisition: off in optimized builds, as in the daemon.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
#if !defined(ABSL_HAVE_ADDRESS_SANITIZER) && \
    !defined(ABSL_HAVE_THREAD_SANITIZER) &&  \
    !defined(ABSL_HAVE_LEAK_SANITIZER) && !defined(ABSL_HAVE_MEMORY_SANITIZER)
  // The process holds the gRPC runtime until it exits: dropping the last
  // channel then does not shut the runtime down (joining its threads,
  // freeing its state) a moment before the kernel does the same, and the
  // exit skips the static destructors. Likewise its channels: they are
  // held until the exit, not shut down when the command is done with them.
  // Output is flushed first. Sanitizer builds take the ordinary exit, so
  // that the leak checker still runs; the Bazel build's integration tests
  // run this path.
  grpc_init();
  credbroker::client::internal::KeepChannelsUntilExit();
  const int code = credbroker::cli::Main(argc, argv);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
#else
  // Sanitizer builds take the ordinary exit, after waiting for a complete
  // shutdown of the gRPC runtime, so that the leak checker does not run
  // while gRPC's threads are still tearing a TLS connection down (the CI
  // runs saw a 904-byte OpenSSL allocation reported as leaked in
  // SecurityTest.TcpServesTlsWithAGeneratedCertificate).
  grpc_init();
  const int code = credbroker::cli::Main(argc, argv);
  grpc_shutdown_blocking();
  return code;
#endif
}
