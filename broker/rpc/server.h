// BrokerServer: the gRPC server of credbrokerd — its listening endpoints
// (Unix sockets, loopback TCP), health, reflection and the credbroker.v1
// services. Start() returns once it is serving; Shutdown() ends open calls
// and removes the sockets it created. Not copyable; Shutdown is idempotent.
#ifndef CREDBROKER_BROKER_RPC_SERVER_H_
#define CREDBROKER_BROKER_RPC_SERVER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/common/executor.h"
#include "broker/core/credentials.h"
#include "broker/core/requests.h"
#include "broker/providers/registry.h"
#include "broker/rpc/auth.h"
#include "broker/rpc/lock_service.h"
#include "broker/rpc/unary.h"
#include "common/secret.h"

namespace credbroker {

// Connections one remote address may hold open on the TCP listeners; more
// are closed as soon as they are accepted. On loopback every local user
// shares one address: the owner's Unix socket is never counted.
inline constexpr int kMaxConnectionsPerAddress = 64;
// How long a TCP caller has to complete its TLS handshake.
inline constexpr absl::Duration kTcpHandshakeTimeout = absl::Seconds(10);

struct ServerOptions {
  // "unix:/abs/path" or "HOST:PORT" (port 0 picks one).
  std::vector<std::string> listen;
  // Allow TCP hosts that are not loopback.
  bool allow_remote = false;
  // TCP without TLS, for debugging: loopback hosts only, even with
  // allow_remote.
  bool insecure_plaintext_tcp = false;
  // The PEM files of every TCP listener's TLS certificate chain and key;
  // required when there is a TCP listener and insecure_plaintext_tcp is not
  // set. gRPC re-reads them every tls_refresh_interval and serves a changed
  // pair to new connections (a pair that does not match is not taken).
  std::string tls_cert_file;
  std::string tls_key_file;
  // A PEM file of CA certificates: when set, TCP callers must present a
  // client certificate that chains to one of them (mutual TLS).
  std::string tls_client_ca_file;
  absl::Duration tls_refresh_interval = absl::Hours(1);
  // Set: Unix connections from processes in this group (its gid, or one of
  // their supplementary groups, when they connected) are accepted as well as
  // the broker's own uid, and the sockets are made 0660 for this group. Every
  // other peer is refused. Callers are told apart by their kernel identity
  // (pid, uid), never by the group.
  std::optional<gid_t> allow_gid;
  // The daemon's lock state for LockService. With `unlock` set the broker
  // is locked (its store's key not opened): it serves health, reflection,
  // LockService and what broker/rpc/locked_services.h says; the core
  // pointers of Start may then be null.
  LockControl lock;
  // The provider catalog served while locked.
  const ProviderRegistry* catalog = nullptr;
};

// One parsed --listen entry.
struct Endpoint {
  bool is_unix = false;
  std::string path;  // Unix.
  std::string host;  // TCP.
  int port = 0;
  std::string ToString() const;
};

// INVALID_ARGUMENT explaining the accepted forms for a malformed entry;
// PERMISSION_DENIED-free FAILED_PRECONDITION for a non-loopback host without
// allow_remote.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view spec,
                                       bool allow_remote);

class BrokerServer {
 public:
  // All pointers must outlive the server.
  static absl::StatusOr<std::unique_ptr<BrokerServer>> Start(
      const ServerOptions& options, CredentialManager* credentials,
      RequestManager* requests, RpcEnv env);
  ~BrokerServer();

  // Addresses actually bound: "unix:/path", "127.0.0.1:43123".
  const std::vector<std::string>& addresses() const { return addresses_; }

  // Ends open streams with UNAVAILABLE, stops accepting calls, cancels
  // unary calls still running after `grace`, removes the sockets.
  void Shutdown(absl::Duration grace = absl::Seconds(2));
  // Ends every open stream now with UNAVAILABLE and `message` (the unlock
  // tells agents to reconnect); Shutdown follows.
  void EndStreams(const std::string& message);
  // Blocks until Shutdown completes.
  void Wait();

 private:
  struct Impl;
  explicit BrokerServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> addresses_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_SERVER_H_
