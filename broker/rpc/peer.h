// Who is on the other end of a connection, as the kernel says: for Unix
// socket connections the broker accepts itself, SO_PEERCRED gives pid, uid
// and gid, and /proc gives the executable and the process start time (a pid
// can be recycled; pid + start time cannot). PeerRegistry maps the accepted
// fd to that identity for handlers, which see the connection as "fd:N".
// Thread-safe.
#ifndef CREDBROKER_BROKER_RPC_PEER_H_
#define CREDBROKER_BROKER_RPC_PEER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <grpcpp/server_context.h>

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
  std::string exe;          // readlink(/proc/PID/exe); never the command line.
  // /proc/PID/comm: the name, readable when exe is not (a process of
  // another user, for a broker running as its own user).
  std::string comm;
};

// Reads SO_PEERCRED of a connected Unix socket and the process's /proc
// entries. INTERNAL when the kernel does not say.
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

class PeerRegistry {
 public:
  // Records the identity of an accepted connection on `fd`, replacing what
  // an earlier connection with the same fd number left.
  void Record(int fd, ProcessIdentity identity);

  // The caller of the current RPC: the kernel's identity for a connection
  // the broker accepted, else the gRPC peer address.
  Caller Resolve(const grpc::ServerContextBase& context, const std::string& role) const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, ProcessIdentity> by_fd_ ABSL_GUARDED_BY(mu_);
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_PEER_H_
