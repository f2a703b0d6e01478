// Finding the process at the client end of a loopback TCP connection to the
// broker: the client's socket in /proc/net/tcp and /proc/net/tcp6 (its
// local end is the caller's address and port, its remote end one of the
// broker's ports), then the one process of the socket's owner whose
// /proc/<pid>/fd links to socket:[inode]. Plain functions over /proc, no
// state; every scan is bounded.
#ifndef CREDBROKER_BROKER_RPC_TCP_PEER_H_
#define CREDBROKER_BROKER_RPC_TCP_PEER_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credbroker {

// An IPv4 or IPv6 endpoint; IPv4 is held as ::ffff:a.b.c.d.
struct TcpEndpoint {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  bool operator==(const TcpEndpoint& o) const {
    return addr == o.addr && port == o.port;
  }
};

// The endpoint of a gRPC peer string: "ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000" (brackets possibly %-encoded). nullopt for anything
// else ("fd:7", "unix:...").
std::optional<TcpEndpoint> ParseGrpcPeer(absl::string_view peer);

// 127.0.0.0/8, ::1, or ::ffff:127.x.y.z.
bool IsLoopback(const TcpEndpoint& e);

// The client end's socket.
struct TcpSocket {
  uint64_t inode = 0;
  uid_t uid = 0;  // Its owner.
};

// In the text of /proc/net/tcp or /proc/net/tcp6 (`tcp6` says which), the
// established socket whose local end is `client` and whose remote end is a
// loopback address on one of `server_ports`. NOT_FOUND when none is.
absl::StatusOr<TcpSocket> FindClientSocketIn(
    absl::string_view table, bool tcp6, const TcpEndpoint& client,
    const std::vector<int>& server_ports);
// The same in this network namespace's /proc/net/tcp and /proc/net/tcp6.
absl::StatusOr<TcpSocket> FindClientSocket(
    const TcpEndpoint& client, const std::vector<int>& server_ports);

// Bounds of the /proc scan.
struct SocketScanLimits {
  int max_processes = 4096;  // /proc entries of `uid` looked into.
  int max_fds = 65536;       // Descriptor links read, over all of them.
};

// The one process owned by `uid` that holds socket
// `inode`. NOT_FOUND when none does; FAILED_PRECONDITION when several do
// (which of them calls cannot be told) or the scan hit its limits first.
absl::StatusOr<pid_t> FindSocketHolder(
    uint64_t inode, uid_t uid, SocketScanLimits limits = SocketScanLimits());

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_TCP_PEER_H_
