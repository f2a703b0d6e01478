#include "broker/rpc/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/credential_service.h"
#include "broker/rpc/flow_services.h"
#include "broker/rpc/lock_service.h"
#include "broker/rpc/locked_services.h"
#include "broker/rpc/streams.h"
#include "broker/rpc/tcp_listener.h"
#include "common/errors.h"
#include "credbroker/v1/approval_service.grpc.pb.h"
#include "credbroker/v1/credential_broker.grpc.pb.h"
#include "credbroker/v1/credential_service.grpc.pb.h"
#include "grpc/health/v1/health.pb.h"

namespace credbroker {
namespace {

bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr a4;
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
    return (ntohl(a4.s_addr) >> 24) == 127;
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&a6);
  }
  return false;
}

// A socket file left behind by a broker that died: nothing accepts on it.
bool IsStaleSocket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  return rc != 0 && (err == ECONNREFUSED || err == ENOENT);
}

absl::Status PrepareUnixPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgumentWithViolations(
        "socket path too long",
        {{"listen", absl::StrCat("a Unix socket path must be shorter than ",
                                 sizeof(sockaddr_un::sun_path),
                                 " bytes; choose a shorter --data_dir or "
                                 "--listen path")}});
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " exists and is not a socket; move it away or choose another "
        "--listen path"));
  }
  if (!IsStaleSocket(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("another process is already serving on ", path,
                     "; stop it or choose another --listen path"));
  }
  if (unlink(path.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove the stale socket ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Plaintext TCP only on loopback; TLS needs its certificate and key.
absl::Status CheckTcpSecurity(const ServerOptions& options, const Endpoint& ep,
                              absl::string_view spec) {
  if (options.insecure_plaintext_tcp) {
    if (!IsLoopbackHost(ep.host)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve plaintext on ", spec,
          ": --insecure_plaintext_tcp is for loopback debugging only (tokens "
          "and credentials would cross the network in clear); drop the flag "
          "to serve TLS"));
    }
    if (!options.tls_client_ca_file.empty()) {
      return absl::FailedPreconditionError(
          "--tls_client_ca needs TLS: it cannot be combined with "
          "--insecure_plaintext_tcp");
    }
    return absl::OkStatus();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TCP listener ", spec, " needs a TLS certificate and key"));
  }
  return absl::OkStatus();
}

// TLS from the files, through gRPC's file-watching certificate provider:
// a renewed or replaced certificate is served without a restart.
std::shared_ptr<grpc::ServerCredentials> TlsCredentials(
    const ServerOptions& options) {
  const auto refresh = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.tls_refresh_interval)));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          options.tls_key_file, options.tls_cert_file,
          options.tls_client_ca_file, refresh);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!options.tls_client_ca_file.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

}  // namespace

std::string Endpoint::ToString() const {
  if (is_unix) return absl::StrCat("unix:", path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view spec,
                                       bool allow_remote) {
  Endpoint ep;
  auto bad = [&](absl::string_view why) {
    return InvalidArgumentWithViolations(
        absl::StrCat("cannot listen on \"", spec, "\""),
        {{"listen", absl::StrCat(why,
                                 "; use unix:/absolute/path or HOST:PORT "
                                 "(e.g. 127.0.0.1:7443)")}});
  };
  if (absl::ConsumePrefix(&spec, "unix:")) {
    absl::ConsumePrefix(&spec, "//");
    if (spec.empty() || spec[0] != '/')
      return bad("the socket path must be absolute");
    ep.is_unix = true;
    ep.path = std::string(spec);
    return ep;
  }
  size_t colon = spec.rfind(':');
  if (colon == absl::string_view::npos) return bad("no port given");
  absl::string_view host = spec.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]"))
      return bad("unbalanced [ in the host");
  }
  int port = 0;
  if (!absl::SimpleAtoi(spec.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  if (host.empty()) return bad("no host given");
  if (!allow_remote && !IsLoopbackHost(host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", spec,
        ": the host is not a loopback address, so callers on the network "
        "could reach the broker. Use 127.0.0.1 or [::1], or pass "
        "--allow_remote if you really mean it"));
  }
  ep.host = std::string(host);
  ep.port = port;
  return ep;
}

// Creates the listening Unix socket at `path`: mode 0600, or 0660 and
// owned by `group` when set.
absl::StatusOr<int> ListenUnix(const std::string& path,
                               std::optional<gid_t> group) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("socket(): ", std::strerror(errno)));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  mode_t old_umask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  umask(old_umask);
  if (rc != 0) {
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", path, ": ", std::strerror(err)));
  }
  chmod(path.c_str(), 0600);
  if (group.has_value() &&
      (chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0 ||
       chmod(path.c_str(), 0660) != 0)) {
    err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot give the socket ", path, " to group ", *group,
                     ": ", std::strerror(err),
                     "; make its directory setgid for that group (chmod g+s) "
                     "or the broker's user a member"));
  }
  if (listen(fd, 128) != 0) {
    err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", path, ": ", std::strerror(err)));
  }
  return fd;
}

struct BrokerServer::Impl {
  // A TCP listener and the gRPC acceptor its connections are handed to.
  struct TcpPort {
    int fd = -1;
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor;
  };

  // Accepts every connection itself: Unix ones so that each one's peer is
  // known from the kernel (SO_PEERCRED) before gRPC serves it, TCP ones so
  // that other callers cannot take every descriptor (ConnectionLimiter).
  void AcceptLoop() {
    std::vector<pollfd> fds;
    for (int fd : listen_fds) fds.push_back({fd, POLLIN, 0});
    for (const TcpPort& p : tcp_ports) fds.push_back({p.fd, POLLIN, 0});
    fds.push_back({wake_pipe[0], POLLIN, 0});
    const uid_t self = geteuid();
    while (!stopping.load()) {
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        std::cerr << "credbrokerd: poll failed: " << std::strerror(errno)
                  << "\n";
        return;
      }
      if (fds.back().revents != 0) return;
      bool out_of_fds = false;
      for (size_t i = 0; i + 1 < fds.size(); ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        if (i < listen_fds.size()) {
          out_of_fds |= !AcceptUnixPending(fds[i].fd, self);
        } else {
          out_of_fds |= !AcceptTcpPending(tcp_ports[i - listen_fds.size()]);
        }
      }
      // No descriptor left: the pending connections wait a little rather
      // than spin this thread.
      if (out_of_fds) poll(nullptr, 0, 100);
    }
  }

  // Accepts what is pending on a Unix listener. False when out of
  // descriptors.
  bool AcceptUnixPending(int listen_fd, uid_t self) {
    while (true) {
      // Non-blocking: gRPC's poller expects it; a blocking fd hangs calls.
      int conn =
          accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (conn < 0) return errno != EMFILE && errno != ENFILE;
      absl::StatusOr<ProcessIdentity> id = PeerIdentityOfSocket(conn);
      if (!id.ok() || !MayConnect(conn, *id, self)) {
        RefuseConnection(id, self);
        close(conn);
        continue;
      }
      peers.Record(conn, std::move(*id));
      grpc::AddInsecureChannelFromFd(server.get(), conn);
    }
  }

  // Accepts up to a batch of what is pending on a TCP listener (the Unix
  // listeners are served between batches) and hands each connection the
  // limiter admits to gRPC. False when out of descriptors.
  bool AcceptTcpPending(TcpPort& port) {
    for (int n = 0; n < 64; ++n) {
      std::string address;
      int conn = credbroker::AcceptTcp(port.fd, &address);
      if (conn < 0) return errno != EMFILE && errno != ENFILE;
      ConnectionLimiter::Verdict verdict = tcp_limiter.Admit(conn, address);
      if (verdict != ConnectionLimiter::Verdict::kAdmit) {
        close(conn);
        LogRefusal(absl::StrCat(
            "closed a TCP connection from ", address, ": ",
            verdict == ConnectionLimiter::Verdict::kTooManyFromAddress
                ? absl::StrCat("that address already has ",
                               kMaxConnectionsPerAddress, " connections open")
                : "the descriptors left are kept for the Unix socket"));
        continue;
      }
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters
          params;
      params.listener_fd = port.fd;
      params.fd = conn;
      port.acceptor->HandleNewConnection(&params);
    }
    return true;
  }

  // Another user's connection: audited at the refusal audit's rate per
  // uid, and said on stderr (LogRefusal's rate).
  void RefuseConnection(const absl::StatusOr<ProcessIdentity>& id, uid_t self) {
    std::string who =
        id.ok() ? absl::StrCat("uid ", id->uid) : "an unidentified peer";
    std::string what =
        id.ok() ? absl::StrCat("uid ", id->uid, " (", Describe(*id), ")")
                : std::string(id.status().message());
    std::string members =
        allow_gid ? absl::StrCat(" and members of group ", *allow_gid) : "";
    if (refusals != nullptr &&
        !refusals->RefusedConnection(
            who, what,
            absl::StrCat("only uid ", self, members, " may connect"))) {
      return;
    }
    LogRefusal(absl::StrCat("refused a connection from ", what, ": only uid ",
                            self, members, " may connect"));
  }

  // One stderr line per refused connection, at most 10 a minute.
  void LogRefusal(const std::string& what) {
    int64_t suppressed = 0;
    if (!refusal_lines.Allow(absl::Now(), &suppressed)) return;
    std::cerr << "credbrokerd: " << what;
    if (suppressed > 0)
      std::cerr << " (" << suppressed << " earlier ones not logged)";
    std::cerr << "\n";
  }

  std::vector<TcpPort> tcp_ports;
  ConnectionLimiter tcp_limiter{kMaxConnectionsPerAddress};
  LineLimiter refusal_lines{10, absl::Minutes(1)};

  PeerRegistry peers;
  // Refused calls and connections, audited at a bounded rate (null when
  // the broker has no audit log yet, while locked).
  std::unique_ptr<RefusalAudit> refusals;

  // The broker's own uid, or a member of the allowed group.
  bool MayConnect(int conn, const ProcessIdentity& id, uid_t self) const {
    if (id.uid == self) return true;
    if (!allow_gid.has_value()) return false;
    absl::StatusOr<bool> member = PeerHasGroup(conn, *allow_gid);
    return member.ok() && *member;
  }

  // Start's steps.

  // Creates the services: while `locked`, the lock service and the locked
  // stand-ins only. Their `env` gains the peer registry and refusal audit.
  void CreateServices(const ServerOptions& options,
                      CredentialManager* credentials, RequestManager* requests,
                      RpcEnv env, bool locked) {
    allow_gid = options.allow_gid;
    env.peers = &peers;
    if (env.audit != nullptr) {
      refusals =
          std::make_unique<RefusalAudit>(env.audit, [] { return absl::Now(); });
      env.refusals = refusals.get();
    }
    if (locked) {
      locked_broker_service =
          std::make_unique<LockedBrokerService>(env, &streams);
      locked_fallback = std::make_unique<LockedFallback>(
          env, options.catalog != nullptr ? options.catalog
                                          : &ProviderRegistry::Default());
    } else {
      credential_service =
          std::make_unique<CredentialServiceImpl>(credentials, requests, env);
      broker_service =
          std::make_unique<BrokerServiceImpl>(requests, env, &streams);
      approval_service =
          std::make_unique<ApprovalServiceImpl>(requests, env, &streams);
    }
    lock_service = std::make_unique<LockServiceImpl>(env, options.lock, locked);
  }

  // Opens every address of options.listen (TCP ones are handed to
  // `builder`); on an error, closes what it opened.
  absl::StatusOr<std::vector<Endpoint>> Listen(const ServerOptions& options,
                                               grpc::ServerBuilder& builder) {
    if (options.listen.empty()) {
      return absl::InvalidArgumentError("no --listen address given");
    }
    std::vector<Endpoint> endpoints;
    for (const std::string& spec : options.listen) {
      absl::StatusOr<Endpoint> ep = ListenOn(spec, options, builder);
      if (!ep.ok()) return Abandon(ep.status());
      endpoints.push_back(*ep);
    }
    return endpoints;
  }

  // Opens one listen address; the endpoint has the port actually bound.
  absl::StatusOr<Endpoint> ListenOn(const std::string& spec,
                                    const ServerOptions& options,
                                    grpc::ServerBuilder& builder) {
    CB_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(spec, options.allow_remote));
    if (ep.is_unix) {
      CB_RETURN_IF_ERROR(PrepareUnixPath(ep.path));
      CB_ASSIGN_OR_RETURN(int fd, ListenUnix(ep.path, options.allow_gid));
      listen_fds.push_back(fd);
      unix_paths.push_back(ep.path);
      return ep;
    }
    CB_RETURN_IF_ERROR(CheckTcpSecurity(options, ep, spec));
    CB_ASSIGN_OR_RETURN(TcpListener tcp, ListenTcp(ep.host, ep.port));
    ep.port = tcp.port;
    tcp_ports.push_back(
        {tcp.fd,
         builder.experimental().AddExternalConnectionAcceptor(
             grpc::ServerBuilder::experimental_type::ExternalConnectionType::
                 FROM_FD,
             options.insecure_plaintext_tcp ? grpc::InsecureServerCredentials()
                                            : TlsCredentials(options))});
    return ep;
  }

  // Closes the listeners and removes the Unix socket files; returns
  // `status`.
  absl::Status Abandon(absl::Status status) {
    for (int f : listen_fds) close(f);
    for (const TcpPort& p : tcp_ports) close(p.fd);
    for (const std::string& p : unix_paths) unlink(p.c_str());
    return status;
  }

  // Each service with its full name: the health service answers for each
  // name as well as for the whole server ("").
  using NamedServices = std::vector<std::pair<grpc::Service*, const char*>>;

  // Registers the services with `builder`.
  NamedServices RegisterServices(grpc::ServerBuilder& builder, bool locked) {
    NamedServices services = {
        {lock_service.get(), v1::LockService::service_full_name()}};
    if (locked) {
      builder.RegisterCallbackGenericService(locked_fallback.get());
      services.push_back({locked_broker_service.get(),
                          v1::CredentialBroker::service_full_name()});
    } else {
      services.insert(
          services.end(),
          {{credential_service.get(),
            v1::CredentialService::service_full_name()},
           {broker_service.get(), v1::CredentialBroker::service_full_name()},
           {approval_service.get(), v1::ApprovalService::service_full_name()}});
    }
    for (const auto& [service, name] : services)
      builder.RegisterService(service);
    return services;
  }

  std::optional<gid_t> allow_gid;
  std::vector<int> listen_fds;
  int wake_pipe[2] = {-1, -1};
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  StreamRegistry streams;
  std::unique_ptr<CredentialServiceImpl> credential_service;
  std::unique_ptr<BrokerServiceImpl> broker_service;
  std::unique_ptr<ApprovalServiceImpl> approval_service;
  std::unique_ptr<LockServiceImpl> lock_service;
  std::unique_ptr<LockedBrokerService> locked_broker_service;
  std::unique_ptr<LockedFallback> locked_fallback;
  std::unique_ptr<grpc::Server> server;
  std::vector<std::string> unix_paths;
  bool shut_down = false;
};

BrokerServer::BrokerServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

BrokerServer::~BrokerServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<BrokerServer>> BrokerServer::Start(
    const ServerOptions& options, CredentialManager* credentials,
    RequestManager* requests, RpcEnv env) {
  // Link the health proto's descriptors so reflection can describe Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto impl = std::make_unique<Impl>();
  const bool locked = static_cast<bool>(options.lock.unlock);
  impl->CreateServices(options, credentials, requests, std::move(env), locked);

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(4 << 20);
  // A TCP caller that connects and sends nothing holds its connection for
  // this long at most (gRPC's default is two minutes).
  builder.AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kTcpHandshakeTimeout)));
  LimitGrpcLogLines();
  CB_ASSIGN_OR_RETURN(std::vector<Endpoint> endpoints,
                      impl->Listen(options, builder));
  const Impl::NamedServices services = impl->RegisterServices(builder, locked);

  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr) {
    return impl->Abandon(
        absl::UnavailableError("could not start the gRPC server"));
  }
  std::vector<std::string> addresses;
  std::vector<int> tcp_port_numbers;
  for (const Endpoint& ep : endpoints) {
    addresses.push_back(ep.ToString());
    if (!ep.is_unix) tcp_port_numbers.push_back(ep.port);
  }
  impl->peers.SetTcpPorts(std::move(tcp_port_numbers));
  grpc::HealthCheckServiceInterface* health =
      impl->server->GetHealthCheckService();
  for (const auto& [service, name] : services)
    health->SetServingStatus(name, true);
  health->SetServingStatus(true);
  if (!impl->listen_fds.empty() || !impl->tcp_ports.empty()) {
    if (pipe2(impl->wake_pipe, O_CLOEXEC) != 0) {
      impl->server->Shutdown();
      return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
    }
    impl->acceptor = std::thread([impl = impl.get()] { impl->AcceptLoop(); });
  }
  auto server =
      std::unique_ptr<BrokerServer>(new BrokerServer(std::move(impl)));
  server->addresses_ = std::move(addresses);
  return server;
}

void BrokerServer::Shutdown(absl::Duration grace) {
  if (impl_ == nullptr || impl_->shut_down) return;
  impl_->shut_down = true;
  // Stop accepting before gRPC shuts down.
  if (impl_->acceptor.joinable()) {
    impl_->stopping.store(true);
    (void)!write(impl_->wake_pipe[1], "x", 1);
    impl_->acceptor.join();
  }
  for (int fd : impl_->listen_fds) close(fd);
  for (const Impl::TcpPort& p : impl_->tcp_ports) close(p.fd);
  for (int fd : impl_->wake_pipe) {
    if (fd >= 0) close(fd);
  }
  // Every name ("" and each service's) NOT_SERVING, and no change after.
  impl_->server->GetHealthCheckService()->Shutdown();
  impl_->streams.CloseAll();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(grace));
  impl_->server->Wait();
  // Summaries of refusals not written one by one yet.
  if (impl_->refusals != nullptr) impl_->refusals->Flush();
  for (const std::string& path : impl_->unix_paths) unlink(path.c_str());
}

void BrokerServer::EndStreams(const std::string& message) {
  if (impl_ == nullptr) return;
  impl_->streams.CloseAll(grpc::Status(grpc::StatusCode::UNAVAILABLE, message));
}

void BrokerServer::Wait() {
  if (impl_ != nullptr && impl_->server != nullptr) impl_->server->Wait();
}

}  // namespace credbroker
