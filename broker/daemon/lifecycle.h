// The daemon's life: it opens the data directory (the single-broker lock,
// the store, the tokens), then serves, locked or unlocked, until SIGINT or
// SIGTERM. Locked (no passphrase at start, LockService.Lock, or the
// auto-lock after --auto_lock_after without a call): the store's key is not
// in memory, and the server is the locked one (broker/rpc/locked_services.h).
// Unlocked: the core (OpenBroker) runs on the opened key. Each change of
// state stops one server and starts the other on the same addresses, so
// clients reconnect. Single-threaded: RunDaemon drives it all from the
// calling thread; RPCs only ask it to change state.
#ifndef CREDBROKER_BROKER_DAEMON_LIFECYCLE_H_
#define CREDBROKER_BROKER_DAEMON_LIFECYCLE_H_

#include <signal.h>

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "broker/daemon/open_broker.h"
#include "broker/rpc/server.h"

namespace credbroker {

struct DaemonOptions {
  std::string data_dir;
  // Where approver.token and agent.token are ("": the data directory).
  std::string token_dir;
  // Listeners and TLS, configured.
  ServerOptions server;
  // Lines printed with the addresses at each start (TLS details).
  std::string start_note;
  // --key_source ("", "passphrase" or "file"), --key_file ("" for
  // <data_dir>/master.key), --passphrase_fd (-1: none).
  std::string key_source;
  std::string key_file;
  int passphrase_fd = -1;
  int threads = 16;
  int64_t disk_reserve_bytes = 0;
  // The core's options; passphrase_store and first_open are set here.
  OpenBrokerOptions core;
  // Lock after this long without an authorized call (GetLockState aside).
  // Zero: never. Passphrase stores only (a key-file store's key is on disk).
  absl::Duration auto_lock_after = absl::ZeroDuration();
};

// Runs the daemon until SIGINT or SIGTERM, which the caller has blocked in
// every thread and gives in `signals`. Returns the exit code: 0 after a
// signal, 1 after an error (printed on stderr, with field violations).
int RunDaemon(const DaemonOptions& options, const sigset_t& signals);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_LIFECYCLE_H_
