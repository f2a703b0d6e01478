#include "broker/rpc/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <poll.h>

#include <atomic>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/common/errors.h"
#include "broker/common/status_macros.h"
#include "broker/rpc/credential_service.h"
#include "broker/rpc/flow_services.h"
#include "broker/rpc/lock_service.h"
#include "broker/rpc/locked_services.h"
#include "broker/rpc/streams.h"
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
        path, " exists and is not a socket; move it away or choose another "
              "--listen path"));
  }
  if (!IsStaleSocket(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another process is already serving on ", path,
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
    if (!options.tls_client_ca_pem.empty()) {
      return absl::FailedPreconditionError(
          "--tls_client_ca needs TLS: it cannot be combined with "
          "--insecure_plaintext_tcp");
    }
    return absl::OkStatus();
  }
  if (options.tls_cert_pem.empty() || options.tls_key_pem.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "TCP listener ", spec, " needs a TLS certificate and key"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> TlsCredentials(const ServerOptions& options) {
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca_pem.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = options.tls_client_ca_pem;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  pair.private_key = std::string(options.tls_key_pem.Reveal());
  pair.cert_chain = options.tls_cert_pem;
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::SslServerCredentials(ssl);
  // gRPC keeps its own copy; ours is wiped.
  for (auto& p : ssl.pem_key_cert_pairs) WipeString(p.private_key);
  return creds;
}

}  // namespace

std::string Endpoint::ToString() const {
  if (is_unix) return absl::StrCat("unix:", path);
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view spec, bool allow_remote) {
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
    if (spec.empty() || spec[0] != '/') return bad("the socket path must be absolute");
    ep.is_unix = true;
    ep.path = std::string(spec);
    return ep;
  }
  size_t colon = spec.rfind(':');
  if (colon == absl::string_view::npos) return bad("no port given");
  absl::string_view host = spec.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return bad("unbalanced [ in the host");
  }
  int port = 0;
  if (!absl::SimpleAtoi(spec.substr(colon + 1), &port) || port < 0 || port > 65535) {
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

// Creates the listening Unix socket (mode 0600) at `path`.
absl::StatusOr<int> ListenUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket(): ", std::strerror(errno)));
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
  // Accepts Unix connections itself, so that each one's peer is known from
  // the kernel (SO_PEERCRED) before gRPC serves it.
  void AcceptLoop() {
    std::vector<pollfd> fds;
    for (int fd : listen_fds) fds.push_back({fd, POLLIN, 0});
    fds.push_back({wake_pipe[0], POLLIN, 0});
    const uid_t self = geteuid();
    while (!stopping.load()) {
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        std::cerr << "credbrokerd: poll failed: " << std::strerror(errno) << "\n";
        return;
      }
      if (fds.back().revents != 0) return;
      for (size_t i = 0; i + 1 < fds.size(); ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        while (true) {
          // Non-blocking: gRPC's poller expects it; a blocking fd hangs calls.
          int conn = accept4(fds[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (conn < 0) break;
          absl::StatusOr<ProcessIdentity> id = PeerIdentityOfSocket(conn);
          if (!id.ok() || id->uid != self) {
            std::cerr << "credbrokerd: refused a connection from "
                      << (id.ok() ? absl::StrCat("uid ", id->uid, " (", Describe(*id), ")")
                                  : std::string(id.status().message()))
                      << ": only uid " << self << " may connect\n";
            close(conn);
            continue;
          }
          peers.Record(conn, std::move(*id));
          grpc::AddInsecureChannelFromFd(server.get(), conn);
        }
      }
    }
  }

  PeerRegistry peers;
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

BrokerServer::BrokerServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BrokerServer::~BrokerServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<BrokerServer>> BrokerServer::Start(
    const ServerOptions& options, CredentialManager* credentials,
    RequestManager* requests, RpcEnv env) {
  // Link the health proto's descriptors so reflection can describe Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto impl = std::make_unique<Impl>();
  env.peers = &impl->peers;
  const bool locked = static_cast<bool>(options.lock.unlock);
  if (locked) {
    impl->locked_broker_service = std::make_unique<LockedBrokerService>(env, &impl->streams);
    impl->locked_fallback = std::make_unique<LockedFallback>(
        env, options.catalog != nullptr ? options.catalog : &ProviderRegistry::Default());
  } else {
    impl->credential_service =
        std::make_unique<CredentialServiceImpl>(credentials, requests, env);
    impl->broker_service = std::make_unique<BrokerServiceImpl>(requests, env, &impl->streams);
    impl->approval_service =
        std::make_unique<ApprovalServiceImpl>(requests, env, &impl->streams);
  }
  impl->lock_service = std::make_unique<LockServiceImpl>(env, options.lock, locked);

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(4 << 20);
  std::vector<Endpoint> endpoints;
  std::vector<std::unique_ptr<int>> ports;
  if (options.listen.empty()) {
    return absl::InvalidArgumentError("no --listen address given");
  }
  for (const std::string& spec : options.listen) {
    CB_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(spec, options.allow_remote));
    if (ep.is_unix) {
      CB_RETURN_IF_ERROR(PrepareUnixPath(ep.path));
      absl::StatusOr<int> fd = ListenUnix(ep.path);
      if (!fd.ok()) {
        for (int f : impl->listen_fds) close(f);
        for (const std::string& p : impl->unix_paths) unlink(p.c_str());
        return fd.status();
      }
      impl->listen_fds.push_back(*fd);
      impl->unix_paths.push_back(ep.path);
      endpoints.push_back(ep);
      ports.push_back(std::make_unique<int>(1));
      continue;
    }
    absl::Status tcp_ok = CheckTcpSecurity(options, ep, spec);
    if (!tcp_ok.ok()) {
      for (int f : impl->listen_fds) close(f);
      for (const std::string& p : impl->unix_paths) unlink(p.c_str());
      return tcp_ok;
    }
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(ep.ToString(),
                             options.insecure_plaintext_tcp
                                 ? grpc::InsecureServerCredentials()
                                 : TlsCredentials(options),
                             ports.back().get());
    endpoints.push_back(ep);
  }
  // Each service with its full name: the health service answers for each
  // name as well as for the whole server ("").
  std::vector<std::pair<grpc::Service*, const char*>> services = {
      {impl->lock_service.get(), v1::LockService::service_full_name()}};
  if (locked) {
    builder.RegisterCallbackGenericService(impl->locked_fallback.get());
    services.push_back(
        {impl->locked_broker_service.get(), v1::CredentialBroker::service_full_name()});
  } else {
    services.insert(services.end(),
                    {{impl->credential_service.get(), v1::CredentialService::service_full_name()},
                     {impl->broker_service.get(), v1::CredentialBroker::service_full_name()},
                     {impl->approval_service.get(), v1::ApprovalService::service_full_name()}});
  }
  for (const auto& [service, name] : services) builder.RegisterService(service);

  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr) {
    for (int f : impl->listen_fds) close(f);
    for (const std::string& p : impl->unix_paths) unlink(p.c_str());
    return absl::UnavailableError(
        "could not start the gRPC server on the requested addresses (is a "
        "port in use, or a directory missing?)");
  }
  std::vector<std::string> addresses;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    Endpoint ep = endpoints[i];
    if (!ep.is_unix) {
      if (*ports[i] == 0) {
        impl->server->Shutdown();
        return absl::UnavailableError(
            absl::StrCat("could not listen on ", ep.ToString()));
      }
      ep.port = *ports[i];
    }
    addresses.push_back(ep.ToString());
  }
  grpc::HealthCheckServiceInterface* health = impl->server->GetHealthCheckService();
  for (const auto& [service, name] : services) health->SetServingStatus(name, true);
  health->SetServingStatus(true);
  if (!impl->listen_fds.empty()) {
    if (pipe2(impl->wake_pipe, O_CLOEXEC) != 0) {
      impl->server->Shutdown();
      return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
    }
    impl->acceptor = std::thread([impl = impl.get()] { impl->AcceptLoop(); });
  }
  auto server = std::unique_ptr<BrokerServer>(new BrokerServer(std::move(impl)));
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
  for (int fd : impl_->wake_pipe) {
    if (fd >= 0) close(fd);
  }
  // Every name ("" and each service's) NOT_SERVING, and no change after.
  impl_->server->GetHealthCheckService()->Shutdown();
  impl_->streams.CloseAll();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(grace));
  impl_->server->Wait();
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
