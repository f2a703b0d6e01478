#include "broker/rpc/tcp_peer.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace credbroker {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};

TcpEndpoint V4Mapped(const uint8_t v4[4], uint16_t port) {
  TcpEndpoint e;
  std::memcpy(e.addr.data(), kV4MappedPrefix, 12);
  std::memcpy(e.addr.data() + 12, v4, 4);
  e.port = port;
  return e;
}

// "0100007F:1F90" (tcp) or 32 hex digits and a port (tcp6), as the kernel
// prints them: each 32-bit word in host byte order.
std::optional<TcpEndpoint> ParseProcEndpoint(absl::string_view text,
                                             bool tcp6) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, ':');
  const size_t want = tcp6 ? 32 : 8;
  uint32_t port = 0;
  if (parts.first.size() != want || !absl::SimpleHexAtoi(parts.second, &port) ||
      port > 0xffff) {
    return std::nullopt;
  }
  uint8_t bytes[16];
  for (size_t w = 0; w < want / 8; ++w) {
    uint32_t word = 0;
    if (!absl::SimpleHexAtoi(parts.first.substr(w * 8, 8), &word))
      return std::nullopt;
    std::memcpy(bytes + 4 * w, &word, 4);
  }
  if (!tcp6) return V4Mapped(bytes, static_cast<uint16_t>(port));
  TcpEndpoint e;
  std::memcpy(e.addr.data(), bytes, 16);
  e.port = static_cast<uint16_t>(port);
  return e;
}

bool IsNumber(const char* name) {
  if (*name == '\0') return false;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
  }
  return true;
}

}  // namespace

std::optional<TcpEndpoint> ParseGrpcPeer(absl::string_view peer) {
  std::string text;
  bool v6 = false;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    text = std::string(peer);
  } else if (absl::ConsumePrefix(&peer, "ipv6:")) {
    v6 = true;
    text = absl::StrReplaceAll(
        peer,
        {{"%5B", "["}, {"%5b", "["}, {"%5D", "]"}, {"%5d", "]"}, {"%25", "%"}});
  } else {
    return std::nullopt;
  }
  size_t colon = text.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 ||
      port > 0xffff) {
    return std::nullopt;
  }
  std::string host = text.substr(0, colon);
  if (v6) {
    absl::string_view h = host;
    if (!absl::ConsumePrefix(&h, "[") || !absl::ConsumeSuffix(&h, "]"))
      return std::nullopt;
    host = std::string(h.substr(0, h.find('%')));  // No zone.
    in6_addr a6;
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return std::nullopt;
    TcpEndpoint e;
    std::memcpy(e.addr.data(), &a6, 16);
    e.port = static_cast<uint16_t>(port);
    return e;
  }
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1) return std::nullopt;
  return V4Mapped(reinterpret_cast<const uint8_t*>(&a4),
                  static_cast<uint16_t>(port));
}

bool IsLoopback(const TcpEndpoint& e) {
  if (std::equal(kV4MappedPrefix, kV4MappedPrefix + 12, e.addr.begin())) {
    return e.addr[12] == 127;
  }
  static const std::array<uint8_t, 16> kOne = {0, 0, 0, 0, 0, 0, 0, 0,
                                               0, 0, 0, 0, 0, 0, 0, 1};
  return e.addr == kOne;
}

absl::StatusOr<TcpSocket> FindClientSocketIn(
    absl::string_view table, bool tcp6, const TcpEndpoint& client,
    const std::vector<int>& server_ports) {
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.size() < 10 || f[3] != "01") continue;  // 01: ESTABLISHED.
    std::optional<TcpEndpoint> local = ParseProcEndpoint(f[1], tcp6);
    if (!local.has_value() || !(*local == client)) continue;
    std::optional<TcpEndpoint> remote = ParseProcEndpoint(f[2], tcp6);
    if (!remote.has_value() || !IsLoopback(*remote) ||
        std::find(server_ports.begin(), server_ports.end(), remote->port) ==
            server_ports.end()) {
      continue;
    }
    TcpSocket s;
    if (!absl::SimpleAtoi(f[7], &s.uid) || !absl::SimpleAtoi(f[9], &s.inode) ||
        s.inode == 0) {
      continue;
    }
    return s;
  }
  return absl::NotFoundError("no such established loopback connection");
}

absl::StatusOr<TcpSocket> FindClientSocket(
    const TcpEndpoint& client, const std::vector<int>& server_ports) {
  for (bool tcp6 : {false, true}) {
    absl::StatusOr<std::string> table =
        ReadFile(tcp6 ? "/proc/net/tcp6" : "/proc/net/tcp");
    if (!table.ok()) continue;  // No IPv6, say.
    absl::StatusOr<TcpSocket> s =
        FindClientSocketIn(*table, tcp6, client, server_ports);
    if (s.ok()) return s;
  }
  return absl::NotFoundError("no such established loopback connection");
}

absl::StatusOr<pid_t> FindSocketHolder(uint64_t inode, uid_t uid,
                                       SocketScanLimits limits) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr)
    return absl::FailedPreconditionError("cannot read /proc");
  const std::string want = absl::StrCat("socket:[", inode, "]");
  int processes = 0;
  int links = 0;
  bool exhausted = false;
  std::vector<pid_t> holders;
  while (dirent* e = readdir(proc)) {
    if (!IsNumber(e->d_name)) continue;
    pid_t pid = 0;
    struct stat st;
    if (!absl::SimpleAtoi(e->d_name, &pid) ||
        fstatat(dirfd(proc), e->d_name, &st, 0) != 0 || st.st_uid != uid) {
      continue;
    }
    if (++processes > limits.max_processes) {
      exhausted = true;
      break;
    }
    int fd_dir = openat(dirfd(proc), absl::StrCat(e->d_name, "/fd").c_str(),
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0) continue;
    DIR* fds = fdopendir(fd_dir);
    if (fds == nullptr) {
      close(fd_dir);
      continue;
    }
    while (dirent* f = readdir(fds)) {
      if (!IsNumber(f->d_name)) continue;
      if (++links > limits.max_fds) {
        exhausted = true;
        break;
      }
      char target[64];
      ssize_t n = readlinkat(dirfd(fds), f->d_name, target, sizeof target);
      if (n > 0 && absl::string_view(target, n) == want) {
        holders.push_back(pid);
        break;
      }
    }
    closedir(fds);
    if (exhausted || holders.size() > 1) break;
  }
  closedir(proc);
  if (holders.size() > 1) {
    return absl::FailedPreconditionError(
        "several processes hold the connection");
  }
  if (exhausted) {
    return absl::FailedPreconditionError("too many processes to look through");
  }
  if (holders.empty())
    return absl::NotFoundError("no process of the user holds it");
  return holders.front();
}

}  // namespace credbroker
