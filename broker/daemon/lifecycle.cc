#include "broker/daemon/lifecycle.h"

#include <time.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "broker/common/executor.h"
#include "broker/common/status_macros.h"
#include "broker/core/keyring.h"
#include "broker/daemon/passphrase_input.h"
#include "broker/providers/registry.h"
#include "broker/rpc/locked_services.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/secret_input.h"

namespace credbroker {
namespace {

absl::Time Now() { return absl::Now(); }

// What ends a time of unlocked serving.
enum class Next { kStop, kLock, kReopen };

class Daemon {
 public:
  Daemon(const DaemonOptions& options, const sigset_t& signals)
      : options_(options), signals_(signals) {}

  // OK after SIGINT or SIGTERM.
  absl::Status Run();

 private:
  absl::Status Prepare();
  bool StartsLocked();
  absl::StatusOr<KeySource> ChooseKeySource();
  absl::Status OpenWithKeySource();
  // True once unlocked (sealer_ set); false when stopped by a signal.
  absl::StatusOr<bool> ServeLocked();
  absl::StatusOr<Next> ServeUnlocked();
  Next WaitWhileUnlocked(const KeyUse& use, bool can_lock);
  // Whether SIGINT or SIGTERM came within `wait` (and says so).
  bool SignalWithin(absl::Duration wait);
  LockControl Control(bool key_file, OpenBroker& core);
  absl::StatusOr<RekeyResult> Rekey(const RekeyArgs& args, const Caller& caller,
                                    OpenBroker& core, bool key_file);
  void PrintServing(const BrokerServer& server, bool locked);
  // From RPC threads: what to do next, and (for a lock) why.
  void Ask(Next next, std::string reason = "") {
    absl::MutexLock lock(&mu_);
    if (asked_.has_value()) return;
    asked_ = next;
    if (!reason.empty()) lock_reason_ = std::move(reason);
  }

  const DaemonOptions& options_;
  const sigset_t& signals_;
  std::string key_file_;
  std::optional<LockFile> lock_file_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Authenticator> auth_;
  AuthThrottle token_throttle_{Now};
  // Wrong passphrases (Unlock, Rekey) per user, for the daemon's life.
  AuthThrottle passphrase_throttle_{Now};
  // The opened data key; null while locked.
  std::unique_ptr<Sealer> sealer_;
  bool first_open_ = true;
  absl::Mutex mu_;
  // Why the broker is locked, for the banner.
  std::string lock_reason_ ABSL_GUARDED_BY(mu_) =
      "the store's passphrase was not given (no terminal, no --passphrase_fd)";
  // What an RPC asked the daemon to do next (Lock, Rekey).
  std::optional<Next> asked_ ABSL_GUARDED_BY(mu_);
};

absl::Status Daemon::Run() {
  CB_RETURN_IF_ERROR(Prepare());
  if (!StartsLocked()) CB_RETURN_IF_ERROR(OpenWithKeySource());
  while (true) {
    if (sealer_ == nullptr) {
      CB_ASSIGN_OR_RETURN(bool unlocked, ServeLocked());
      if (!unlocked) return absl::OkStatus();
    }
    CB_ASSIGN_OR_RETURN(Next next, ServeUnlocked());
    if (next == Next::kStop) return absl::OkStatus();
    if (next == Next::kLock) {
      sealer_.reset();  // Wipes the data key.
      absl::MutexLock lock(&mu_);
      std::cout << "credbrokerd: locked: " << lock_reason_ << std::endl;
    }
  }
}

absl::Status Daemon::Prepare() {
  const std::string& flag = options_.key_source;
  if (!flag.empty() && flag != "passphrase" && flag != "file") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--key_source is \"passphrase\" or \"file\", not \"", flag, "\""));
  }
  if (flag == "file" && options_.passphrase_fd >= 0) {
    return absl::InvalidArgumentError(
        "--passphrase_fd cannot be combined with --key_source=file");
  }
  CB_RETURN_IF_ERROR(InitCrypto());
  const std::string& dir = options_.data_dir;
  CB_RETURN_IF_ERROR(EnsurePrivateDir(dir));
  CB_ASSIGN_OR_RETURN(LockFile lock, LockFile::Acquire(dir + "/broker.lock"));
  lock_file_.emplace(std::move(lock));
  CB_ASSIGN_OR_RETURN(store_, OpenSqliteStore(dir + "/credbroker.db"));
  if (absl::Status s = store_->ReserveSpace(options_.disk_reserve_bytes);
      !s.ok()) {
    std::cerr << "credbrokerd: warning: no disk space reserve: " << s.message()
              << "\n";
  }
  const std::string& tokens =
      options_.token_dir.empty() ? dir : options_.token_dir;
  const std::optional<gid_t> group = options_.server.allow_gid;
  CB_ASSIGN_OR_RETURN(SecretBytes approver,
                      LoadOrCreateToken(tokens + "/approver.token", group));
  CB_ASSIGN_OR_RETURN(SecretBytes agent,
                      LoadOrCreateToken(tokens + "/agent.token", group));
  auth_ =
      std::make_unique<Authenticator>(std::move(agent), std::move(approver));
  key_file_ =
      options_.key_file.empty() ? dir + "/master.key" : options_.key_file;
  return absl::OkStatus();
}

// Whether to start locked: the store is passphrase-protected (and asked for
// as such), no --passphrase_fd is given and there is no terminal to ask on.
bool Daemon::StartsLocked() {
  absl::StatusOr<std::string> stored = StoredKeySource(*store_);
  if (!stored.ok() || *stored != "passphrase") return false;
  if (options_.key_source == "file" || options_.passphrase_fd >= 0)
    return false;
  return !HasTerminal();
}

// The key file only when asked for, the passphrase (from --passphrase_fd or
// the terminal) otherwise.
absl::StatusOr<KeySource> Daemon::ChooseKeySource() {
  CB_ASSIGN_OR_RETURN(std::string stored, StoredKeySource(*store_));
  KeySource source;
  source.key_file = key_file_;
  const bool file = options_.key_source == "file";
  if (stored == "key_file" && !file) {
    return absl::FailedPreconditionError(
        absl::StrCat("this store's key is the file ", key_file_,
                     ", which any process running as you can read: start with "
                     "--key_source=file "
                     "to use it anyway (unattended or test use)"));
  }
  if (file) return source;
  absl::StatusOr<SecretBytes> p =
      options_.passphrase_fd >= 0
          ? ReadSecretLine(options_.passphrase_fd, "passphrase")
          : PromptPassphrase(/*new_store=*/stored.empty());
  if (!p.ok()) return p.status();
  source.passphrase = std::move(*p);
  return source;
}

absl::Status Daemon::OpenWithKeySource() {
  CB_ASSIGN_OR_RETURN(KeySource source, ChooseKeySource());
  CB_ASSIGN_OR_RETURN(sealer_, OpenDataKey(*store_, source));
  if (!source.passphrase.has_value()) {
    std::cerr << "credbrokerd: WARNING: the store's key is the file "
              << source.key_file
              << ": any process running as you, an agent too, can read it and "
                 "open every "
                 "stored secret. Use a passphrase-protected store (the default "
                 "for a new "
                 "data directory) unless this is unattended or test use.\n";
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Daemon::ServeLocked() {
  struct Opened {
    absl::Mutex mu;
    std::unique_ptr<Sealer> sealer ABSL_GUARDED_BY(mu);
  };
  auto opened = std::make_shared<Opened>();
  ServerOptions server_options = options_.server;
  server_options.catalog = &ProviderRegistry::Default();
  server_options.lock.passphrase_throttle = &passphrase_throttle_;
  server_options.lock.auto_lock_after = options_.auto_lock_after;
  server_options.lock.unlock = [store = store_.get(),
                                opened](const SecretBytes& pass) {
    KeySource source;
    source.passphrase = pass;
    absl::StatusOr<std::unique_ptr<Sealer>> sealer =
        OpenDataKey(*store, source);
    if (!sealer.ok()) {
      return absl::PermissionDeniedError(
          "the passphrase does not open this store: check that you typed the "
          "passphrase "
          "the store was created with");
    }
    absl::MutexLock lock(&opened->mu);
    if (opened->sealer == nullptr) opened->sealer = std::move(*sealer);
    return absl::OkStatus();
  };
  // A second Unlock may still run on the executor: it stops before the
  // server (which holds the service) is destroyed.
  std::unique_ptr<BrokerServer> server;
  Executor executor(2);
  RpcEnv env;
  env.auth = auth_.get();
  env.executor = &executor;
  env.throttle = &token_throttle_;
  CB_ASSIGN_OR_RETURN(
      server, BrokerServer::Start(server_options, nullptr, nullptr, env));
  PrintServing(*server, /*locked=*/true);
  bool unlocked = false;
  while (!unlocked) {
    if (SignalWithin(absl::Milliseconds(250))) break;
    absl::MutexLock lock(&opened->mu);
    unlocked = opened->sealer != nullptr;
  }
  // Agents waiting on the locked streams send their needs again.
  if (unlocked) server->EndStreams(kUnlockedReconnect);
  // The Unlock call that opened it is answered within the grace period.
  server->Shutdown();
  executor.Shutdown();
  if (!unlocked) return false;
  absl::MutexLock lock(&opened->mu);
  sealer_ = std::move(opened->sealer);
  std::cout << "credbrokerd: unlocked" << std::endl;
  return true;
}

absl::StatusOr<Next> Daemon::ServeUnlocked() {
  CB_ASSIGN_OR_RETURN(std::string source, StoredKeySource(*store_));
  const bool key_file = source == "key_file";
  OpenBrokerOptions core_options = options_.core;
  core_options.passphrase_store = !key_file;
  core_options.first_open = first_open_;
  CB_ASSIGN_OR_RETURN(
      std::unique_ptr<OpenBroker> core,
      OpenBroker::Open(store_.get(), sealer_.get(), core_options));
  if (first_open_ && key_file &&
      options_.auto_lock_after > absl::ZeroDuration()) {
    std::cerr << "credbrokerd: --auto_lock_after is ignored: this store's key "
                 "is a key file "
                 "on disk, so locking would protect nothing\n";
  }
  first_open_ = false;
  KeyUse key_use;
  Executor executor(options_.threads);
  ServerOptions server_options = options_.server;
  server_options.lock = Control(key_file, *core);
  RpcEnv env;
  env.auth = auth_.get();
  env.executor = &executor;
  env.audit = core->audit();
  env.throttle = &token_throttle_;
  env.pin = core->pin();
  env.passkeys = core->passkeys();
  env.key_use = &key_use;
  CB_ASSIGN_OR_RETURN(std::unique_ptr<BrokerServer> server,
                      BrokerServer::Start(server_options, core->credentials(),
                                          core->requests(), env));
  PrintServing(*server, /*locked=*/false);
  const Next next = WaitWhileUnlocked(key_use, !key_file);
  if (next != Next::kStop) {
    // Agents reconnect at once (see kUnlockedReconnect).
    server->EndStreams(next == Next::kLock
                           ? "locked: reconnect now; needs wait for the unlock"
                           : "the store's key changed: reconnect now");
  }
  // In this order: no call, then no task, may use the core once it goes.
  server->Shutdown();
  executor.Shutdown();
  server.reset();
  return next;
}

Next Daemon::WaitWhileUnlocked(const KeyUse& use, bool can_lock) {
  const absl::Duration idle_limit =
      can_lock ? options_.auto_lock_after : absl::ZeroDuration();
  while (true) {
    if (SignalWithin(absl::Milliseconds(250))) return Next::kStop;
    absl::MutexLock lock(&mu_);
    if (asked_.has_value()) return *std::exchange(asked_, std::nullopt);
    if (idle_limit > absl::ZeroDuration() && Now() - use.last() >= idle_limit) {
      lock_reason_ =
          absl::StrCat("auto-locked after ", absl::FormatDuration(idle_limit),
                       " without a call (--auto_lock_after)");
      return Next::kLock;
    }
  }
}

bool Daemon::SignalWithin(absl::Duration wait) {
  const timespec ts = absl::ToTimespec(wait);
  const int sig = sigtimedwait(&signals_, nullptr, &ts);
  if (sig <= 0) return false;
  std::cerr << "credbrokerd: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << " received, shutting down\n";
  return true;
}

LockControl Daemon::Control(bool key_file, OpenBroker& core) {
  LockControl control;
  control.key_file = key_file;
  control.key_file_path = key_file_;
  control.auto_lock_after =
      key_file ? absl::ZeroDuration() : options_.auto_lock_after;
  control.passphrase_throttle = &passphrase_throttle_;
  if (!key_file) {
    control.lock = [this] {
      Ask(Next::kLock, "locked on request (LockService.Lock, `credctl lock`)");
      return absl::OkStatus();
    };
  }
  control.rekey = [this, &core, key_file](const RekeyArgs& args,
                                          const Caller& caller) {
    return Rekey(args, caller, core, key_file);
  };
  return control;
}

absl::StatusOr<RekeyResult> Daemon::Rekey(const RekeyArgs& args,
                                          const Caller& caller,
                                          OpenBroker& core, bool key_file) {
  KeyChange change;
  change.current.key_file = key_file_;
  change.next.key_file = key_file_;
  if (!key_file) change.current.passphrase = args.current_passphrase;
  if (!args.to_key_file) change.next.passphrase = args.new_passphrase;
  CB_RETURN_IF_ERROR(
      ChangeStoreKeyAudited(*store_, change, *core.audit(), caller));
  RekeyResult result;
  result.key_file = args.to_key_file;
  if (args.to_key_file) {
    result.key_file_path = key_file_;
    result.message = absl::StrCat(
        "the store's key is now the file ", key_file_,
        " (0600): any process running as you, an agent too, can read it and "
        "open every "
        "stored secret. Start the broker with --key_source=file from now on");
  } else {
    result.message =
        "the store's key is now protected by the new passphrase: start the "
        "broker from a "
        "terminal or with --passphrase_fd N (no --key_source=file)";
  }
  std::cout << "credbrokerd: " << result.message << std::endl;
  Ask(Next::kReopen);  // The core takes the new mode (the first PIN's check,
                       // Lock).
  return result;
}

void Daemon::PrintServing(const BrokerServer& server, bool locked) {
  const std::string addresses = absl::StrJoin(server.addresses(), ", ");
  if (locked) {
    absl::MutexLock lock(&mu_);
    std::cout << "credbrokerd is serving on " << addresses
              << ", LOCKED: " << lock_reason_
              << "; unlock it with `credctl unlock` or in the IDE\n"
              << "ready" << std::endl;
    return;
  }
  const std::string& data = options_.data_dir;
  const std::string& dir =
      options_.token_dir.empty() ? data : options_.token_dir;
  std::cout << "credbrokerd is serving on " << addresses << "\n"
            << "  data directory:  " << data << "\n"
            << "  approver token:  " << dir << "/approver.token\n"
            << "  agent token:     " << dir << "/agent.token\n"
            << options_.start_note;
  if (options_.auto_lock_after > absl::ZeroDuration()) {
    std::cout << "  auto-lock after: "
              << absl::FormatDuration(options_.auto_lock_after)
              << " without a call\n";
  }
  for (const std::string& a : server.addresses()) {
    if (a.rfind("unix:", 0) != 0) continue;
    const std::string token = dir + "/approver.token";
    std::cout << "Try:\n"
              << "  credctl --broker " << a << " --token_file " << token
              << " providers\n"
              << "  grpcurl -plaintext -unix " << a.substr(5) << " list\n"
              << "  grpcurl -plaintext -unix -H \"authorization: Bearer $(cat "
              << token << ")\" " << a.substr(5)
              << " credbroker.v1.CredentialService/ListCredentials\n";
    break;
  }
  std::cout << "ready" << std::endl;
}

}  // namespace

int RunDaemon(const DaemonOptions& options, const sigset_t& signals) {
  absl::Status status;
  {
    Daemon daemon(options, signals);
    status = daemon.Run();
  }
  if (!status.ok()) {
    std::cerr << "credbrokerd: " << status.message() << "\n";
    for (const FieldViolation& v : GetFieldViolations(status)) {
      std::cerr << "  " << v.field << ": " << v.description << "\n";
    }
    return 1;
  }
  std::cerr << "credbrokerd: stopped\n";
  return 0;
}

}  // namespace credbroker
