// credbrokerd: the credential broker daemon. Flags, --help, process
// hardening and signals; the daemon's life (the store, its key, locked and
// unlocked serving) is broker/daemon/lifecycle.h.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "broker/daemon/lifecycle.h"
#include "broker/daemon/setup.h"
#include "broker/passkey_flags.h"
#include "broker/rpc/tls_setup.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/locked_memory.h"

ABSL_FLAG(std::string, data_dir, "",
          "Data directory (default $CREDBROKER_DATA_DIR, else "
          "~/.local/share/credbroker); created 0700.");
ABSL_FLAG(std::string, listen, "",
          "Comma-separated unix:PATH and HOST:PORT endpoints (default "
          "unix:<data_dir>/broker.sock).");
ABSL_FLAG(bool, allow_remote, false,
          "Allow TCP listeners on addresses that are not loopback.");
ABSL_FLAG(bool, insecure_plaintext_tcp, false,
          "Serve TCP listeners without TLS (loopback debugging only).");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for TCP listeners (with --tls_key). Default: "
          "<data_dir>/tls.crt, self-signed for localhost, 127.0.0.1 and ::1, "
          "generated at first start and renewed when it has < 30 days left.");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key of --tls_cert (a 0600 file).");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: TCP callers must present a client certificate "
          "signed by one of them (mutual TLS).");
ABSL_FLAG(bool, reset_approval_pin, false,
          "Clear the approval PIN (and its lockout) at start, without the "
          "current PIN: for a forgotten PIN. Audited.");
ABSL_FLAG(
    std::string, key_source, "",
    "How the store's key is protected. \"passphrase\" (the default for a new "
    "data directory): a passphrase you type, through Argon2id; nothing on disk "
    "opens the store. \"file\": a 0600 key file beside the store, for "
    "unattended "
    "and test use only: any process running as you, an agent too, can read it "
    "and open every stored secret. An existing key-file store needs "
    "--key_source=file at every start.");
ABSL_FLAG(std::string, key_file, "",
          "With --key_source=file: the master key file (default "
          "<data_dir>/master.key, created 0600 at first start).");
ABSL_FLAG(int, passphrase_fd, -1,
          "Read the store's passphrase from this file descriptor (one line) "
          "instead of asking for it on the terminal.");
ABSL_FLAG(bool, passphrase_prompt, false,
          "Ask for the store's passphrase on the terminal (what a passphrase "
          "store does anyway when no --passphrase_fd is given).");
ABSL_FLAG(
    std::string, approval_factor, "pin",
    "The human-presence factor every approval needs. \"pin\": the approval "
    "PIN, set once with `credctl pin set` (approvals are refused until then). "
    "\"none\": approvals need only the approver token, which any process "
    "running as you can read; for tests only. Recorded in the audit log.");
ABSL_FLAG(
    absl::Duration, approval_unlock_window, absl::Minutes(5),
    "After a correct approval PIN, how long the same process (the IDE, one "
    "credctl) may approve without typing it again. 0: every approval.");
ABSL_FLAG(int, threads, 16,
          "Worker threads for store and crypto work. Writes that wait on the "
          "same disk sync share one transaction, so this also bounds how many "
          "writes one sync can carry.");
ABSL_FLAG(std::string, spill_dir, "",
          "Where approval-flow writes go while the data directory refuses "
          "writes (read-only, immutable, or full past its reserve), so that "
          "approvals of stored credentials go on; the store takes them back "
          "when it can write again. Default <data_dir>-spill; \"none\": "
          "refuse approvals instead.");
ABSL_FLAG(absl::Duration, pending_timeout, absl::Minutes(10),
          "How long a credential need waits for a decision before it expires.");
ABSL_FLAG(bool, allow_self_approval, false,
          "Let a process approve or deny a need that it (or a process it runs "
          "under) asked for. For tests and debugging only: an agent that can "
          "run commands could then approve itself.");
ABSL_FLAG(absl::Duration, grace_period, absl::Seconds(60),
          "How long an agent that disconnected has to come back before its "
          "pending needs are cancelled.");
ABSL_FLAG(
    std::string, allow_group, "",
    "Also accept Unix connections from members of this group, each caller "
    "told apart by its uid: the socket is made 0660 for the group and the "
    "token files 0640 for it, in --token_dir. For a broker that runs as its "
    "own user (scripts/install-service.sh); every other peer is refused.");
ABSL_FLAG(std::string, token_dir, "",
          "Where approver.token and agent.token are kept (default: the data "
          "directory). With --allow_group: a directory outside the data "
          "directory that the group can read.");
ABSL_FLAG(
    absl::Duration, tls_refresh_interval, absl::Hours(1),
    "How often the TLS files are checked while running: the generated "
    "certificate is renewed when due, and a changed pair is served to new "
    "connections without a restart.");
ABSL_FLAG(bool, require_mlock, false,
          "Refuse to start when the memory that holds secrets cannot be locked "
          "into RAM (RLIMIT_MEMLOCK too small), instead of warning.");
ABSL_FLAG(
    absl::Duration, auto_lock_after, absl::ZeroDuration(),
    "Lock a passphrase store after this long without a call (e.g. 30m): the "
    "store's key is wiped from memory and the broker serves locked until a "
    "person unlocks it again (`credctl unlock` or the IDE). 0: never. "
    "`credctl lock` locks at once.");
ABSL_FLAG(
    int64_t, disk_reserve_kib, 2048,
    "Disk space (KiB) kept in reserve beside the database: when the disk "
    "fills, it is released so that approvals and their audit events can "
    "still be written; new credential versions wait for free space. 0: none.");

namespace credbroker {
namespace {

void HardenProcess() {
  // No core dumps and no ptrace attach by other processes of this user.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  // Every descriptor the kernel allows: connections from many callers must
  // not run the broker out of them while it can still have more.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 &&
      files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
}
// Whether `filename`, a flag's file as Abseil reports it (leading slashes
// dropped), is this one. Abseil's default help lists only the flags of a
// file named after the program (credbrokerd.cc), none of the daemon's.
bool IsDaemonFlagFile(absl::string_view filename) {
  absl::string_view self = __FILE__;
  while (absl::ConsumePrefix(&self, "/")) {
  }
  return filename == self || IsPasskeyFlagFile(filename);
}

// Whether the command line asks for --help (before any "--").
bool AsksForHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") return false;
    if (arg == "--help" || arg == "-help") return true;
  }
  return false;
}

// `text` with each line wrapped at spaces to 80 columns, every line
// starting with `indent`.
std::string Wrapped(absl::string_view text, absl::string_view indent) {
  constexpr size_t kWidth = 80;
  std::string out;
  for (absl::string_view paragraph : absl::StrSplit(text, '\n')) {
    std::string line(indent);
    for (absl::string_view word :
         absl::StrSplit(paragraph, ' ', absl::SkipEmpty())) {
      if (line.size() > indent.size() &&
          line.size() + 1 + word.size() > kWidth) {
        absl::StrAppend(&out, line, "\n");
        line = std::string(indent);
      }
      if (line.size() > indent.size()) line += ' ';
      absl::StrAppend(&line, word);
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// The usage message and the daemon's flags: name, default and help.
// Printed here rather than by absl::ParseCommandLine, whose --help exits
// with status 1 in Debian 12's Abseil (20220623).
void PrintHelp(std::ostream& out) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsDaemonFlagFile(flag->Filename())) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  out << "Usage: " << Wrapped(absl::ProgramUsageMessage(), "") << "\nFlags:\n";
  for (const absl::CommandLineFlag* flag : flags) {
    std::string default_value = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) {
      default_value = absl::StrCat("\"", absl::CEscape(default_value), "\"");
    }
    out << "  --" << flag->Name() << " (default: " << default_value << ")\n"
        << Wrapped(flag->Help(), "      ");
  }
  out << "\n--helpfull lists the libraries' flags too (--flagfile, --fromenv, "
         "...).\n";
}

int Fail(const absl::Status& status) {
  std::cerr << "credbrokerd: " << status.message() << "\n";
  for (const FieldViolation& v : GetFieldViolations(status)) {
    std::cerr << "  " << v.field << ": " << v.description << "\n";
  }
  return 1;
}

// The data directory (made private here), the listeners and who may
// connect, from the flags.
absl::Status ListenOptionsFromFlags(DaemonOptions& o) {
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (o.data_dir.empty()) o.data_dir = DefaultDataDir();
  std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.empty())
    listen = absl::StrCat("unix:", o.data_dir, "/broker.sock");
  o.server.listen = absl::StrSplit(listen, ',', absl::SkipWhitespace());
  o.server.allow_remote = absl::GetFlag(FLAGS_allow_remote);
  o.server.insecure_plaintext_tcp = absl::GetFlag(FLAGS_insecure_plaintext_tcp);
  if (absl::Status s = EnsurePrivateDir(o.data_dir); !s.ok()) return s;
  if (!absl::GetFlag(FLAGS_allow_group).empty()) {
    absl::StatusOr<gid_t> gid = GroupIdByName(absl::GetFlag(FLAGS_allow_group));
    if (!gid.ok()) return gid.status();
    o.server.allow_gid = *gid;
  }
  o.token_dir = absl::GetFlag(FLAGS_token_dir).empty()
                    ? o.data_dir
                    : absl::GetFlag(FLAGS_token_dir);
  if (o.server.allow_gid.has_value() && o.token_dir == o.data_dir) {
    return absl::InvalidArgumentError(
        "--allow_group needs --token_dir: a directory the group can read, "
        "outside the "
        "data directory, which stays the broker's own");
  }
  return absl::OkStatus();
}

// The approval factor and the core's spill, request and passkey settings,
// from the flags; the spill directory is made or checked here.
absl::Status CoreOptionsFromFlags(DaemonOptions& o) {
  const std::string factor = absl::GetFlag(FLAGS_approval_factor);
  if (factor != "pin" && factor != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--approval_factor is \"pin\" or \"none\", not \"", factor, "\""));
  }
  o.core.pin.required = factor == "pin";
  o.core.pin.unlock_window = std::max(
      absl::GetFlag(FLAGS_approval_unlock_window), absl::ZeroDuration());
  o.core.reset_approval_pin = absl::GetFlag(FLAGS_reset_approval_pin);
  absl::StatusOr<SpillOptions> spill =
      ConfigureSpill(o.data_dir, absl::GetFlag(FLAGS_spill_dir));
  if (!spill.ok()) return spill.status();
  o.core.spill = *std::move(spill);
  o.core.requests.pending_timeout = absl::GetFlag(FLAGS_pending_timeout);
  o.core.requests.grace_period = absl::GetFlag(FLAGS_grace_period);
  if (!absl::GetFlag(FLAGS_allow_self_approval)) {
    o.core.requests.is_same_or_descendant = IsSameOrDescendant;
  }
  o.core.passkeys = PasskeysFromFlags;
  return absl::OkStatus();
}

// The daemon's options from the flags; the spill directory and TLS files
// are made or checked here, and `tls_renewer` renews a generated
// certificate while the daemon runs.
absl::StatusOr<DaemonOptions> OptionsFromFlags(
    std::unique_ptr<TlsRenewer>& tls_renewer) {
  DaemonOptions o;
  if (absl::Status s = ListenOptionsFromFlags(o); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<TlsRenewer>> renewer = ConfigureTls(
      o.data_dir,
      TlsSettings{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                  absl::GetFlag(FLAGS_tls_client_ca),
                  absl::GetFlag(FLAGS_tls_refresh_interval)},
      o.server, o.start_note);
  if (!renewer.ok()) return renewer.status();
  tls_renewer = *std::move(renewer);
  if (o.server.insecure_plaintext_tcp) {
    o.start_note +=
        "  WARNING: TCP listeners are plaintext (--insecure_plaintext_tcp)\n";
  }
  o.key_source = absl::GetFlag(FLAGS_key_source);
  o.key_file = absl::GetFlag(FLAGS_key_file);
  o.passphrase_fd = absl::GetFlag(FLAGS_passphrase_fd);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.disk_reserve_bytes = absl::GetFlag(FLAGS_disk_reserve_kib) * 1024;
  o.auto_lock_after =
      std::max(absl::GetFlag(FLAGS_auto_lock_after), absl::ZeroDuration());
  if (absl::Status s = CoreOptionsFromFlags(o); !s.ok()) return s;
  return o;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "credbrokerd [--data_dir DIR] [--listen unix:PATH,HOST:PORT]\n"
      "Holds your provider credentials encrypted on this machine and releases "
      "them to a deployment agent only for actions you approve.");
  // --helpshort and --helppackage (Abseil's) list the daemon's flags too.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsDaemonFlagFile;
  usage.contains_helpshort_flags = IsDaemonFlagFile;
  usage.contains_helppackage_flags = IsDaemonFlagFile;
  absl::SetFlagsUsageConfig(usage);
  if (AsksForHelp(argc, argv)) {
    PrintHelp(std::cout);
    return 0;
  }
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by the daemon; every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  HardenProcess();

  // Locked before any secret is read: the key, the passphrase, the tokens.
  if (absl::Status s = ReserveLockedMemory(64 * 1024); !s.ok()) {
    if (absl::GetFlag(FLAGS_require_mlock)) return Fail(s);
    std::cerr << "credbrokerd: WARNING: " << s.message() << "\n";
  }
  std::unique_ptr<TlsRenewer> tls_renewer;
  absl::StatusOr<DaemonOptions> options = OptionsFromFlags(tls_renewer);
  if (!options.ok()) return Fail(options.status());
  return RunDaemon(*options, signals);
}

}  // namespace
}  // namespace credbroker

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian's Abseil is built with its debug-build deadlock detector on: a
  // lock-order graph updated on every Mutex acquisition. Debug builds (and
  // so the tests) keep it; an optimized daemon does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return credbroker::Run(argc, argv);
}
