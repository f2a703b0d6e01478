// TCP listening sockets the broker accepts on itself, and the bounds on what
// callers can hold of them: gRPC 1.51 has no public per-address connection
// limit, so the accept thread decides which connections gRPC gets to serve
// (through ServerBuilder's external connection acceptor, with the TLS
// credentials) and closes the rest at once.
#ifndef CREDBROKER_BROKER_RPC_TCP_LISTENER_H_
#define CREDBROKER_BROKER_RPC_TCP_LISTENER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace credbroker {

// A listening TCP socket (non-blocking, close-on-exec) and its bound port.
struct TcpListener {
  int fd = -1;
  int port = 0;
};

// Binds `host`:`port` (port 0 picks one). UNAVAILABLE when it cannot.
absl::StatusOr<TcpListener> ListenTcp(const std::string& host, int port);

// Accepts one connection from `listen_fd` (non-blocking, close-on-exec) and
// gives its remote address without the port ("127.0.0.1", "::1"). -1 with
// errno set when there is none or accept fails.
int AcceptTcp(int listen_fd, std::string* remote_address);

// Decides whether an accepted TCP connection is served. A connection is
// refused when its address already has `per_address` connections open, or
// when it would leave fewer than the reserved descriptors below
// RLIMIT_NOFILE (what the Unix socket, the store and gRPC itself need). The
// kernel hands out the lowest free descriptor, so a descriptor numbered at
// or above the ceiling means that many are already open. A connection
// counts until gRPC closes its descriptor: admitted descriptors are
// remembered with their socket inode and checked again (fstat) when their
// address is at the limit. Not thread-safe: owned by the accept thread.
class ConnectionLimiter {
 public:
  enum class Verdict { kAdmit, kTooManyFromAddress, kDescriptorReserve };

  // `reserved_fds` < 0: min(256, RLIMIT_NOFILE / 4), read at each decision.
  explicit ConnectionLimiter(int per_address, int reserved_fds = -1)
      : per_address_(per_address), reserved_fds_(reserved_fds) {}

  // `fd` is the connection just accepted from `address`. Only kAdmit
  // remembers it; the caller closes a refused one.
  Verdict Admit(int fd, const std::string& address);

  // Connections counted for `address` (after dropping closed ones).
  int OpenFrom(const std::string& address);

 private:
  struct Admitted {
    dev_t dev = 0;
    ino_t ino = 0;
    std::string address;
  };
  void Forget(int fd);
  int DescriptorCeiling() const;

  const int per_address_;
  const int reserved_fds_;
  std::map<int, Admitted> by_fd_;
  std::map<std::string, std::set<int>> by_address_;
};

// Allows a burst of log lines per window and counts the rest, so that what
// callers can make the broker log (refused connections, failed handshakes)
// stays bounded. Thread-safe.
class LineLimiter {
 public:
  LineLimiter(int lines_per_window, absl::Duration window)
      : lines_per_window_(lines_per_window), window_(window) {}
  // True when a line may be written at `now`; then *suppressed is how many
  // were refused since the last one written.
  bool Allow(absl::Time now, int64_t* suppressed);

 private:
  const int lines_per_window_;
  const absl::Duration window_;
  absl::Mutex mu_;  // Guards the window's counts.
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int written_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

// Routes gRPC's own log lines (gpr_log) to stderr through a LineLimiter:
// at most 20 lines a minute, then one line saying how many were dropped.
// Idempotent.
void LimitGrpcLogLines();

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_TCP_LISTENER_H_
