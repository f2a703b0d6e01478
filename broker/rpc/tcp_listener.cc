#include "broker/rpc/tcp_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpc/support/log.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace credbroker {

absl::StatusOr<TcpListener> ListenTcp(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":",
                                               port, ": ", gai_strerror(rc)));
  }
  // "localhost" may name ::1 and 127.0.0.1: IPv4 is tried first, as the
  // address most clients resolve it to.
  std::vector<addrinfo*> candidates;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next)
    candidates.push_back(ai);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](addrinfo* a, addrinfo* b) {
                     return a->ai_family == AF_INET && b->ai_family != AF_INET;
                   });
  std::string why = "no address";
  for (addrinfo* ai : candidates) {
    int fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      why = std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    TcpListener out;
    out.fd = fd;
    out.port = ntohs(bound.ss_family == AF_INET6
                         ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    freeaddrinfo(found);
    return out;
  }
  freeaddrinfo(found);
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", host, ":", port, ": ", why));
}

int AcceptTcp(int listen_fd, std::string* remote_address) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len,
                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -1;
  char text[INET6_ADDRSTRLEN] = "?";
  if (peer.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr,
              text, sizeof text);
  } else if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, text,
              sizeof text);
  }
  *remote_address = text;
  return fd;
}

int ConnectionLimiter::DescriptorCeiling() const {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 ||
      files.rlim_cur == RLIM_INFINITY) {
    return 1 << 30;
  }
  const int limit = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 30));
  const int reserve =
      reserved_fds_ >= 0 ? reserved_fds_ : std::min(256, limit / 4);
  return limit - reserve;
}

void ConnectionLimiter::Forget(int fd) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  auto addr = by_address_.find(it->second.address);
  addr->second.erase(fd);
  if (addr->second.empty()) by_address_.erase(addr);
  by_fd_.erase(it);
}

int ConnectionLimiter::OpenFrom(const std::string& address) {
  auto addr = by_address_.find(address);
  if (addr == by_address_.end()) return 0;
  // A descriptor gRPC closed is gone, or now names another file.
  std::set<int> fds = addr->second;
  for (int fd : fds) {
    const Admitted& a = by_fd_[fd];
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != a.dev || st.st_ino != a.ino)
      Forget(fd);
  }
  addr = by_address_.find(address);
  return addr == by_address_.end() ? 0 : static_cast<int>(addr->second.size());
}

ConnectionLimiter::Verdict ConnectionLimiter::Admit(
    int fd, const std::string& address) {
  // The kernel reused this number: the connection that had it is closed.
  Forget(fd);
  if (fd >= DescriptorCeiling()) return Verdict::kDescriptorReserve;
  auto addr = by_address_.find(address);
  if (addr != by_address_.end() &&
      static_cast<int>(addr->second.size()) >= per_address_ &&
      OpenFrom(address) >= per_address_) {
    return Verdict::kTooManyFromAddress;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return Verdict::kDescriptorReserve;
  by_fd_[fd] = Admitted{st.st_dev, st.st_ino, address};
  by_address_[address].insert(fd);
  return Verdict::kAdmit;
}

bool LineLimiter::Allow(absl::Time now, int64_t* suppressed) {
  absl::MutexLock lock(&mu_);
  if (now - window_start_ >= window_) {
    window_start_ = now;
    written_ = 0;
  }
  if (written_ >= lines_per_window_) {
    ++suppressed_;
    return false;
  }
  ++written_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

namespace {

LineLimiter& GrpcLines() {
  static LineLimiter* limiter = new LineLimiter(20, absl::Minutes(1));
  return *limiter;
}

void WriteGrpcLine(gpr_log_func_args* args) {
  int64_t suppressed = 0;
  if (!GrpcLines().Allow(absl::Now(), &suppressed)) return;
  std::string line = absl::StrCat(
      "credbrokerd: grpc ", gpr_log_severity_string(args->severity), " ",
      args->file, ":", args->line, "] ", args->message, "\n");
  if (suppressed > 0) {
    line = absl::StrCat(
        "credbrokerd: ", suppressed,
        " gRPC log lines dropped (at most 20 a minute are written)\n", line);
  }
  std::cerr << line;
}

}  // namespace

void LimitGrpcLogLines() {
  static std::once_flag once;
  std::call_once(once, [] { gpr_set_log_function(&WriteGrpcLine); });
}

}  // namespace credbroker
