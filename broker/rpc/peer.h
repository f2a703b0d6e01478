// Who is on the other end of a connection, as the kernel says. For Unix
// socket connections the broker accepts itself, SO_PEERCRED (and
// SO_PEERPIDFD) give the process when it connects; for loopback TCP the
// client end's socket is found in /proc/net/tcp{,6} and its process by a
// bounded scan of /proc/<pid>/fd. Each process is read through one handle
// (a pidfd and its /proc/<pid> directory), so a recycled pid can never mix
// two processes' data; pid + start time names a process for good.
// PeerRegistry maps the accepted fd to that identity for handlers, which
// see the connection as "fd:N". Thread-safe.
#ifndef CREDBROKER_BROKER_RPC_PEER_H_
#define CREDBROKER_BROKER_RPC_PEER_H_

#include <grpcpp/server_context.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/core/requests.h"

namespace credbroker {

// The identity of a process, from the kernel.
struct ProcessIdentity {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t start_time = 0;  // Clock ticks since boot (/proc/PID/stat field 22).
  // The process group and session (fields 5 and 6) when it was read: a
  // shell's background job and the commands after it share both.
  pid_t process_group = 0;
  pid_t session_id = 0;
  std::string exe;  // readlink(/proc/PID/exe); never the command line.
  // /proc/PID/comm: the name, readable when exe is not (a process of
  // another user, for a broker running as its own user).
  std::string comm;
};

// One process held open: its /proc/<pid> directory, opened while a pidfd
// showed the process alive (where the kernel has pidfds, Linux >= 5.3), so
// that every read below is of that process or fails once it is gone, even
// if its pid is reused. Move-only; closes its descriptors.
class ProcessHandle {
 public:
  // NOT_FOUND when no such process is alive. `pidfd`, when >= 0, is a
  // pidfd of the process (SO_PEERPIDFD); it is taken over and closed.
  static absl::StatusOr<ProcessHandle> Open(pid_t pid, int pidfd = -1);
  ProcessHandle(ProcessHandle&& other) noexcept;
  ProcessHandle& operator=(ProcessHandle&& other) noexcept;
  ~ProcessHandle();

  // Pid, uids and gid (effective), start time and executable, all read
  // through the handle. NOT_FOUND once the process is gone.
  absl::StatusOr<ProcessIdentity> Read() const;
  // The parent's pid (0 when unknown).
  pid_t ParentPid() const;
  // Whether the process has a descriptor on socket inode `inode`.
  bool HoldsSocket(uint64_t inode) const;
  // Whether the handle was opened through a pidfd (else: /proc only).
  bool has_pidfd() const { return pidfd_ >= 0; }

 private:
  ProcessHandle(pid_t pid, int dirfd, int pidfd)
      : pid_(pid), dirfd_(dirfd), pidfd_(pidfd) {}
  pid_t pid_ = 0;
  int dirfd_ = -1;
  int pidfd_ = -1;
};

// Reads SO_PEERCRED (and SO_PEERPIDFD where the kernel has it) of a
// connected Unix socket and the process's /proc entries. INTERNAL when the
// kernel does not say.
absl::StatusOr<ProcessIdentity> PeerIdentityOfSocket(int fd);
// Whether the process connected on Unix socket `fd` had `gid` as its group
// or one of its supplementary groups when it connected (SO_PEERGROUPS), as
// the kernel recorded it. INTERNAL when the kernel does not say.
absl::StatusOr<bool> PeerHasGroup(int fd, gid_t gid);
// The identity of a live process. NOT_FOUND when it is gone.
absl::StatusOr<ProcessIdentity> ProcessIdentityOf(pid_t pid);
// The parent of a live process (0 when unknown).
pid_t ParentOf(pid_t pid);
// "node, pid 4242, uid 1000, /usr/bin/node".
std::string Describe(const ProcessIdentity& id);

// How much of the caller Resolve looks up.
enum class PeerLookup {
  kFull,      // A loopback TCP caller's process too (reads /proc).
  kNoTcpScan  // Unix callers only (a map look-up): for refused calls.
};

class PeerRegistry {
 public:
  // Records the identity of an accepted connection on `fd`, replacing what
  // an earlier connection with the same fd number left.
  void Record(int fd, ProcessIdentity identity);
  // The ports of the broker's TCP listeners, whose loopback callers Resolve
  // looks up.
  void SetTcpPorts(std::vector<int> ports);

  // The caller of the current RPC: the kernel's identity for a connection
  // the broker accepted or a loopback TCP client it found, else the gRPC
  // peer address. Call it when the call arrives: an fd number can name
  // another connection later.
  Caller Resolve(const grpc::ServerContextBase& context,
                 const std::string& role,
                 PeerLookup lookup = PeerLookup::kFull) const;
  // Resolve for a gRPC peer string ("fd:7", "ipv4:127.0.0.1:5000").
  Caller ResolvePeer(const std::string& peer, const std::string& role,
                     PeerLookup lookup = PeerLookup::kFull) const;

  // Who a throttle or a rate limit counts the caller as, cheaply: "uid N"
  // for a Unix connection, the IP address (no port) over TCP.
  std::string CallerKey(const std::string& peer) const;

 private:
  // The identity of the loopback TCP client `peer`: pid 0 when it cannot be
  // told; a uid alone when the socket is another user's.
  std::optional<ProcessIdentity> FindTcpClient(const std::string& peer) const;

  mutable absl::Mutex mu_;
  std::map<int, ProcessIdentity> by_fd_ ABSL_GUARDED_BY(mu_);
  std::vector<int> tcp_ports_ ABSL_GUARDED_BY(mu_);
  // Loopback TCP clients found so far, by gRPC peer string, with the socket
  // inode they were found for (a reused port has another inode). Bounded.
  mutable std::map<std::string, std::pair<uint64_t, ProcessIdentity>> tcp_found_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_PEER_H_
