// credbrokerd: the credential broker daemon. Wiring only: flags, process
// hardening, the data directory, the store and its key, the server, signals.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "broker/common/errors.h"
#include "broker/common/executor.h"
#include "broker/common/files.h"
#include "broker/common/locked_memory.h"
#include "broker/core/approval_pin.h"
#include "broker/passkey_flags.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/core/keyring.h"
#include "broker/core/requests.h"
#include "broker/crypto/crypto.h"
#include "broker/providers/registry.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/peer.h"
#include "broker/rpc/server.h"
#include "broker/rpc/tls_setup.h"
#include "broker/store/sqlite_store.h"

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
ABSL_FLAG(std::string, allow_group, "",
          "Also accept Unix connections from members of this group, each caller "
          "told apart by its uid: the socket is made 0660 for the group and the "
          "token files 0640 for it, in --token_dir. For a broker that runs as its "
          "own user (scripts/install-service.sh); every other peer is refused.");
ABSL_FLAG(std::string, token_dir, "",
          "Where approver.token and agent.token are kept (default: the data "
          "directory). With --allow_group: a directory outside the data "
          "directory that the group can read.");
ABSL_FLAG(absl::Duration, tls_refresh_interval, absl::Hours(1),
          "How often the TLS files are checked while running: the generated "
          "certificate is renewed when due, and a changed pair is served to new "
          "connections without a restart.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: TCP callers must present a client certificate "
          "signed by one of them (mutual TLS).");
ABSL_FLAG(bool, require_mlock, false,
          "Refuse to start when the memory that holds secrets cannot be locked "
          "into RAM (RLIMIT_MEMLOCK too small), instead of warning.");
ABSL_FLAG(bool, reset_approval_pin, false,
          "Clear the approval PIN (and its lockout) at start, without the "
          "current PIN: for a forgotten PIN. Audited.");
ABSL_FLAG(std::string, key_source, "",
          "How the store's key is protected. \"passphrase\" (the default for a new "
          "data directory): a passphrase you type, through Argon2id; nothing on disk "
          "opens the store. \"file\": a 0600 key file beside the store, for unattended "
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
ABSL_FLAG(std::string, approval_factor, "pin",
          "The human-presence factor every approval needs. \"pin\": the approval "
          "PIN, set once with `credctl pin set` (approvals are refused until then). "
          "\"none\": approvals need only the approver token, which any process "
          "running as you can read; for tests only. Recorded in the audit log.");
ABSL_FLAG(absl::Duration, approval_unlock_window, absl::Minutes(5),
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
ABSL_FLAG(int64_t, disk_reserve_kib, 2048,
          "Disk space (KiB) kept in reserve beside the database: when the disk "
          "fills, it is released so that approvals and their audit events can "
          "still be written; new credential versions wait for free space. 0: none.");

namespace credbroker {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "credbrokerd: " << status.message() << "\n";
  for (const FieldViolation& v : GetFieldViolations(status)) {
    std::cerr << "  " << v.field << ": " << v.description << "\n";
  }
  return 1;
}

void HardenProcess() {
  // No core dumps and no ptrace attach by other processes of this user.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  // Every descriptor the kernel allows: connections from many callers must
  // not run the broker out of them while it can still have more.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
}

// One line of `fd`, read straight into locked, wiped memory: no copy of
// the passphrase is left in a std::string.
absl::StatusOr<SecretBytes> ReadPassphraseFromFd(int fd) {
  constexpr size_t kMax = 4096;
  SecretBytes buf = SecretBytes::Zeroed(kMax + 1);
  size_t size = 0;
  while (size <= kMax) {
    ssize_t n = read(fd, buf.mutable_data() + size, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || buf.data()[size] == '\n') break;
    ++size;
  }
  if (size > kMax) return absl::InvalidArgumentError("the passphrase is longer than 4096 bytes");
  if (size > 0 && buf.data()[size - 1] == '\r') --size;
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no passphrase could be read from file descriptor ", fd));
  }
  SecretBytes pass = SecretBytes::Zeroed(size);
  std::copy(buf.data(), buf.data() + size, pass.mutable_data());
  return pass;
}

absl::StatusOr<SecretBytes> PromptOnce(int fd, absl::string_view prompt) {
  (void)!write(fd, prompt.data(), prompt.size());
  termios old{};
  tcgetattr(fd, &old);
  termios quiet = old;
  quiet.c_lflag &= ~ECHO;
  tcsetattr(fd, TCSAFLUSH, &quiet);
  absl::StatusOr<SecretBytes> pass = ReadPassphraseFromFd(fd);
  tcsetattr(fd, TCSAFLUSH, &old);
  (void)!write(fd, "\n", 1);
  return pass;
}

// Asks on the controlling terminal; twice when `new_store`, since a typo
// in a new passphrase would lock the person out of their own store.
absl::StatusOr<SecretBytes> PromptPassphrase(bool new_store) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        "this store is protected by a passphrase (the default), and there is no "
        "terminal to ask for it on: start credbrokerd from a terminal, or pass "
        "--passphrase_fd N. For unattended or test use, a new data directory can "
        "be created with --key_source=file instead (any process running as you "
        "can then read every stored secret)");
  }
  if (new_store) {
    const char intro[] =
        "credbrokerd: choose the passphrase that protects this new store. Nothing "
        "on disk can open it without the passphrase, and it cannot be recovered.\n";
    (void)!write(fd, intro, sizeof intro - 1);
  }
  absl::StatusOr<SecretBytes> pass = PromptOnce(fd, "credbrokerd store passphrase: ");
  if (pass.ok() && new_store) {
    absl::StatusOr<SecretBytes> again = PromptOnce(fd, "the same passphrase again: ");
    if (!again.ok() || *again != *pass) {
      pass = absl::InvalidArgumentError("the two passphrases differ; nothing was created");
    } else if (pass->size() < 8) {
      pass = absl::InvalidArgumentError(
          "the passphrase is shorter than 8 characters; choose a longer one");
    }
  }
  close(fd);
  return pass;
}

// The key source of the store: the key file only when asked for, the
// passphrase (from --passphrase_fd or the terminal) otherwise.
absl::StatusOr<KeySource> ChooseKeySource(Store& store, const std::string& data_dir) {
  const std::string flag = absl::GetFlag(FLAGS_key_source);
  if (!flag.empty() && flag != "passphrase" && flag != "file") {
    return absl::InvalidArgumentError(
        absl::StrCat("--key_source is \"passphrase\" or \"file\", not \"", flag, "\""));
  }
  absl::StatusOr<std::string> stored = StoredKeySource(store);
  if (!stored.ok()) return stored.status();
  const bool has_fd = absl::GetFlag(FLAGS_passphrase_fd) >= 0;
  if (flag == "file" && has_fd) {
    return absl::InvalidArgumentError("--passphrase_fd cannot be combined with --key_source=file");
  }
  KeySource source;
  source.key_file = absl::GetFlag(FLAGS_key_file);
  if (source.key_file.empty()) source.key_file = data_dir + "/master.key";
  if (*stored == "key_file" && flag != "file") {
    return absl::FailedPreconditionError(absl::StrCat(
        "this store's key is the file ", source.key_file,
        ", which any process running as you can read: start with --key_source=file "
        "to use it anyway (unattended or test use)"));
  }
  if (flag == "file") return source;
  if (has_fd) {
    absl::StatusOr<SecretBytes> p = ReadPassphraseFromFd(absl::GetFlag(FLAGS_passphrase_fd));
    if (!p.ok()) return p.status();
    source.passphrase = std::move(*p);
  } else {
    absl::StatusOr<SecretBytes> p = PromptPassphrase(/*new_store=*/stored->empty());
    if (!p.ok()) return p.status();
    source.passphrase = std::move(*p);
  }
  return source;
}

// The spill (RequestOptions::spill) in `spill_dir`: default
// <data_dir>-spill, "none" for no spill. FAILED_PRECONDITION when there is to
// be none but one with rows is left: the approvals recorded there must reach
// the store before the broker answers from it, or decided requests would
// open again.
absl::StatusOr<SpillOptions> ConfigureSpill(const std::string& data_dir,
                                            std::string spill_dir) {
  const std::string default_dir = std::string(absl::StripSuffix(data_dir, "/")) + "-spill";
  if (spill_dir.empty()) spill_dir = default_dir;
  const std::string spill_db = (spill_dir == "none" ? default_dir : spill_dir) + "/spill.db";
  auto has_rows = [spill_db] {
    struct stat st;
    return stat(spill_db.c_str(), &st) == 0 && st.st_size > 0;
  };
  // Made now: once the data directory refuses writes, its parent may too.
  const absl::Status ready = spill_dir == "none"
                                 ? absl::FailedPreconditionError("--spill_dir=none")
                                 : EnsurePrivateDir(spill_dir);
  if (!ready.ok()) {
    if (has_rows()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "approvals recorded in ", spill_db, " while the data directory refused writes have "
          "not been copied into the store yet: start with the spill enabled (and its "
          "directory writable) so that the store takes them back"));
    }
    std::cerr << "credbrokerd: no spill (" << ready.message()
              << "): approvals will be refused while the data directory refuses writes\n";
    return SpillOptions();
  }
  SpillOptions spill;
  spill.remove = [spill_db]() -> absl::Status {
    for (const char* suffix : {"-wal", "-shm", ""}) {
      const std::string path = spill_db + suffix;
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::UnavailableError(
            absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
      }
    }
    return absl::OkStatus();
  };
  spill.open = [spill_db, has_rows, remove = spill.remove](
                   bool create) -> absl::StatusOr<std::unique_ptr<Store>> {
    // An empty file is what a spill that could not be made (a full disk)
    // leaves: nothing was recorded in it.
    if (!has_rows()) {
      remove().IgnoreError();
      if (!create) return absl::NotFoundError("no spill database");
    }
    absl::StatusOr<std::unique_ptr<Store>> opened = OpenSqliteStore(spill_db);
    if (!opened.ok() && !has_rows()) remove().IgnoreError();
    return opened;
  };
  return spill;
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
    for (absl::string_view word : absl::StrSplit(paragraph, ' ', absl::SkipEmpty())) {
      if (line.size() > indent.size() && line.size() + 1 + word.size() > kWidth) {
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
  out << "\n--helpfull lists the libraries' flags too (--flagfile, --fromenv, ...).\n";
}

// Whether to start locked: the store is passphrase-protected (and asked for
// as such), no --passphrase_fd is given and there is no terminal to ask on.
bool StartsLocked(Store& store) {
  absl::StatusOr<std::string> stored = StoredKeySource(store);
  if (!stored.ok() || *stored != "passphrase") return false;
  if (absl::GetFlag(FLAGS_key_source) == "file" || absl::GetFlag(FLAGS_passphrase_fd) >= 0) {
    return false;
  }
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) return true;
  close(tty);
  return false;
}

// Serves locked (health, reflection, LockService) until a person unlocks
// the store through LockService.Unlock, then stops that server and returns
// the opened key; nullptr when SIGINT or SIGTERM came first. The stopped
// server is handed to `locked_server`, to be destroyed only after the
// executor (a second Unlock may still be running there).
absl::StatusOr<std::unique_ptr<Sealer>> WaitForUnlock(
    Store& store, ServerOptions options, RpcEnv env, const sigset_t& signals,
    std::unique_ptr<BrokerServer>& locked_server) {
  struct Opened {
    absl::Mutex mu;
    std::unique_ptr<Sealer> sealer ABSL_GUARDED_BY(mu);
  };
  auto opened = std::make_shared<Opened>();
  options.unlock = [&store, opened](const SecretBytes& passphrase) -> absl::Status {
    KeySource source;
    source.passphrase = passphrase;
    absl::StatusOr<std::unique_ptr<Sealer>> sealer = OpenDataKey(store, source);
    if (!sealer.ok()) {
      return absl::PermissionDeniedError(
          "the passphrase does not open this store: check that you typed the passphrase "
          "the store was created with");
    }
    absl::MutexLock lock(&opened->mu);
    if (opened->sealer == nullptr) opened->sealer = std::move(*sealer);
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<BrokerServer>> server =
      BrokerServer::Start(options, nullptr, nullptr, env);
  if (!server.ok()) return server.status();
  locked_server = std::move(*server);
  std::cout << "credbrokerd is serving on " << absl::StrJoin(locked_server->addresses(), ", ")
            << ", LOCKED: the store's passphrase was not given (no terminal, no "
               "--passphrase_fd); unlock it with `credctl unlock` or in the IDE\n"
            << "ready" << std::endl;
  const timespec tick{0, 250 * 1000 * 1000};
  while (true) {
    if (sigtimedwait(&signals, nullptr, &tick) > 0) {
      locked_server->Shutdown();
      std::cerr << "credbrokerd: stopped while locked\n";
      return std::unique_ptr<Sealer>();
    }
    absl::MutexLock lock(&opened->mu);
    if (opened->sealer != nullptr) break;
  }
  // The Unlock call that opened it is answered within the grace period.
  locked_server->Shutdown();
  std::cout << "credbrokerd: unlocked" << std::endl;
  absl::MutexLock lock(&opened->mu);
  return std::move(opened->sealer);
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

  // Signals are taken synchronously by sigwait below; every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  HardenProcess();

  if (absl::Status s = InitCrypto(); !s.ok()) return Fail(s);
  // Locked before any secret is read: the key, the passphrase, the tokens.
  if (absl::Status s = ReserveLockedMemory(64 * 1024); !s.ok()) {
    if (absl::GetFlag(FLAGS_require_mlock)) return Fail(s);
    std::cerr << "credbrokerd: WARNING: " << s.message() << "\n";
  }
  std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (data_dir.empty()) data_dir = DefaultDataDir();
  if (absl::Status s = EnsurePrivateDir(data_dir); !s.ok()) return Fail(s);

  absl::StatusOr<LockFile> lock = LockFile::Acquire(data_dir + "/broker.lock");
  if (!lock.ok()) return Fail(lock.status());

  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore(data_dir + "/credbroker.db");
  if (!store.ok()) return Fail(store.status());
  if (absl::Status s = (*store)->ReserveSpace(absl::GetFlag(FLAGS_disk_reserve_kib) * 1024);
      !s.ok()) {
    std::cerr << "credbrokerd: warning: no disk space reserve: " << s.message() << "\n";
  }

  std::optional<gid_t> allow_gid;
  if (!absl::GetFlag(FLAGS_allow_group).empty()) {
    absl::StatusOr<gid_t> gid = GroupIdByName(absl::GetFlag(FLAGS_allow_group));
    if (!gid.ok()) return Fail(gid.status());
    allow_gid = *gid;
  }
  const std::string token_dir =
      absl::GetFlag(FLAGS_token_dir).empty() ? data_dir : absl::GetFlag(FLAGS_token_dir);
  if (allow_gid.has_value() && token_dir == data_dir) {
    return Fail(absl::InvalidArgumentError(
        "--allow_group needs --token_dir: a directory the group can read, outside the "
        "data directory, which stays the broker's own"));
  }
  const std::string approver_token_file = token_dir + "/approver.token";
  const std::string agent_token_file = token_dir + "/agent.token";
  absl::StatusOr<SecretBytes> approver_token =
      LoadOrCreateToken(approver_token_file, allow_gid);
  if (!approver_token.ok()) return Fail(approver_token.status());
  absl::StatusOr<SecretBytes> agent_token = LoadOrCreateToken(agent_token_file, allow_gid);
  if (!agent_token.ok()) return Fail(agent_token.status());
  Authenticator auth(std::move(*agent_token), std::move(*approver_token));
  // Before the executor: destroyed after it, since its tasks may use it.
  std::unique_ptr<BrokerServer> locked_server;
  Executor executor(absl::GetFlag(FLAGS_threads));
  AuthThrottle throttle([] { return absl::Now(); });

  ServerOptions options;
  std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.empty()) listen = absl::StrCat("unix:", data_dir, "/broker.sock");
  options.listen = absl::StrSplit(listen, ',', absl::SkipWhitespace());
  options.allow_remote = absl::GetFlag(FLAGS_allow_remote);
  options.allow_gid = allow_gid;
  options.insecure_plaintext_tcp = absl::GetFlag(FLAGS_insecure_plaintext_tcp);
  std::string tls_note;
  absl::StatusOr<std::unique_ptr<TlsRenewer>> tls_renewer = ConfigureTls(
      data_dir,
      TlsSettings{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                  absl::GetFlag(FLAGS_tls_client_ca), absl::GetFlag(FLAGS_tls_refresh_interval)},
      options, tls_note);
  if (!tls_renewer.ok()) return Fail(tls_renewer.status());

  bool key_file_mode = false;
  absl::StatusOr<std::unique_ptr<Sealer>> sealer;
  if (StartsLocked(**store)) {
    // No passphrase to be had now (a user service at login): serve locked
    // until a person unlocks.
    sealer = WaitForUnlock(**store, options, RpcEnv{&auth, &executor, nullptr, nullptr,
                                                    &throttle, nullptr},
                           signals, locked_server);
    if (!sealer.ok()) return Fail(sealer.status());
    if (*sealer == nullptr) return 0;  // Stopped while locked.
  } else {
    absl::StatusOr<KeySource> key_source = ChooseKeySource(**store, data_dir);
    if (!key_source.ok()) return Fail(key_source.status());
    key_file_mode = !key_source->passphrase.has_value();
    sealer = OpenDataKey(**store, *key_source);
    if (!sealer.ok()) return Fail(sealer.status());
    if (key_file_mode) {
      std::cerr << "credbrokerd: WARNING: the store's key is the file " << key_source->key_file
                << ": any process running as you, an agent too, can read it and open every "
                   "stored secret. Use a passphrase-protected store (the default for a new "
                   "data directory) unless this is unattended or test use.\n";
    }
  }
  const std::string factor = absl::GetFlag(FLAGS_approval_factor);
  if (factor != "pin" && factor != "none") {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--approval_factor is \"pin\" or \"none\", not \"", factor, "\"")));
  }

  CredentialManager credentials(store->get(), sealer->get(),
                                &ProviderRegistry::Default(), [] { return absl::Now(); });
  AuditLog audit(store->get(), sealer->get(), [] { return absl::Now(); });
  RequestOptions request_options;
  absl::StatusOr<SpillOptions> spill = ConfigureSpill(data_dir, absl::GetFlag(FLAGS_spill_dir));
  if (!spill.ok()) return Fail(spill.status());
  request_options.spill = *std::move(spill);
  request_options.pending_timeout = absl::GetFlag(FLAGS_pending_timeout);
  request_options.grace_period = absl::GetFlag(FLAGS_grace_period);
  // Self-approval: is `pid` the agent's process, or does it run under it?
  if (!absl::GetFlag(FLAGS_allow_self_approval)) {
    request_options.is_same_or_descendant = [](int64_t pid, const Caller& agent) {
    for (int hops = 0; pid > 1 && hops < 64; ++hops) {
      if (pid == agent.pid) {
        absl::StatusOr<ProcessIdentity> id = ProcessIdentityOf(static_cast<pid_t>(pid));
        return id.ok() && id->start_time == agent.start_time;
      }
      pid = ParentOf(static_cast<pid_t>(pid));
    }
    return false;
    };
  }
  PinPolicy pin_policy;
  pin_policy.required = factor == "pin";
  pin_policy.unlock_window =
      std::max(absl::GetFlag(FLAGS_approval_unlock_window), absl::ZeroDuration());
  PassphraseCheck passphrase_check;
  if (!key_file_mode) {
    passphrase_check = [&store](const SecretBytes& p) { return VerifyPassphrase(**store, p); };
  }
  ApprovalPin approval_pin(store->get(), sealer->get(), &audit, [] { return absl::Now(); },
                           pin_policy, passphrase_check);
  if (absl::Status s = approval_pin.Load(); !s.ok()) return Fail(s);
  auto passkeys = PasskeysFromFlags(store->get(), sealer->get(), &audit, &approval_pin);
  if (!passkeys.ok()) return Fail(passkeys.status());
  Caller operator_caller;
  operator_caller.role = "operator";
  operator_caller.peer = "credbrokerd";
  if (absl::GetFlag(FLAGS_reset_approval_pin)) {
    operator_caller.peer = "credbrokerd --reset_approval_pin";
    if (absl::Status s = approval_pin.Reset(operator_caller); !s.ok()) return Fail(s);
    std::cout << "credbrokerd: the approval PIN was cleared (--reset_approval_pin)\n";
  }
  if (!pin_policy.required) {
    std::cerr << "credbrokerd: WARNING: --approval_factor=none: approvals need no PIN, only "
                 "the approver token, which any process running as you (an agent too) can "
                 "read. For tests only.\n";
    AuditRecord event;
    event.kind = "factor.disabled";
    event.role = operator_caller.role;
    event.peer = "credbrokerd --approval_factor=none";
    event.outcome = "ok";
    event.detail = "started without the human-presence factor: approvals need no PIN";
    if (absl::Status s = audit.Record(std::move(event)); !s.ok()) return Fail(s);
  }
  RequestManager requests(store->get(), &credentials, &audit, sealer->get(),
                          [] { return absl::Now(); },
                          request_options);
  if (absl::Status s = requests.Recover(); !s.ok()) return Fail(s);
  // Expiry and the agents' grace period are driven from here.
  absl::Notification stop_ticker;
  std::thread ticker([&] {
    while (!stop_ticker.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      requests.Tick();
    }
  });

  absl::StatusOr<std::unique_ptr<BrokerServer>> server =
      BrokerServer::Start(options, &credentials, &requests,
                          RpcEnv{&auth, &executor, &audit, nullptr, &throttle,
                                 &approval_pin, passkeys->get()});
  if (!server.ok()) {
    stop_ticker.Notify();
    ticker.join();
    return Fail(server.status());
  }

  std::string unix_address;
  for (const std::string& a : (*server)->addresses()) {
    if (unix_address.empty() && a.rfind("unix:", 0) == 0) unix_address = a;
  }
  std::cout << "credbrokerd is serving on " << absl::StrJoin((*server)->addresses(), ", ")
            << "\n"
            << "  data directory:  " << data_dir << "\n"
            << "  approver token:  " << approver_token_file << "\n"
            << "  agent token:     " << agent_token_file << "\n";
  if (!tls_note.empty()) std::cout << tls_note;
  if (options.insecure_plaintext_tcp) {
    std::cout << "  WARNING: TCP listeners are plaintext (--insecure_plaintext_tcp)\n";
  }
  if (!unix_address.empty()) {
    std::string sock = unix_address.substr(5);
    std::cout << "Try:\n"
              << "  credctl --broker " << unix_address << " --token_file "
              << approver_token_file << " providers\n"
              << "  grpcurl -plaintext -unix " << sock << " list\n"
              << "  grpcurl -plaintext -unix -H \"authorization: Bearer $(cat "
              << approver_token_file << ")\" " << sock
              << " credbroker.v1.CredentialService/ListCredentials\n";
  }
  std::cout << "ready" << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "credbrokerd: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << " received, shutting down\n";
  (*server)->Shutdown();
  stop_ticker.Notify();
  ticker.join();
  executor.Shutdown();
  server->reset();
  store->reset();
  std::cerr << "credbrokerd: stopped\n";
  return 0;
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
