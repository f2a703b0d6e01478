#include "broker/rpc/peer.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/rpc/tcp_peer.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux >= 6.5; older kernels answer ENOPROTOOPT.
#endif

namespace credbroker {
namespace {

// Loopback TCP clients remembered at once.
constexpr size_t kMaxTcpFound = 256;

// A pidfd of `pid`, or -1 where the kernel has none (Linux < 5.3).
int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// Whether the process of `pidfd` is still there (a zombie counts: its pid
// is not free yet).
bool PidfdAlive(int pidfd) {
  // A pidfd polls readable once its process has exited. (Signal 0 would
  // say EPERM for another user's live process.)
  pollfd p{pidfd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

// A small file under the process directory, whole.
absl::StatusOr<std::string> ReadAt(int dirfd, const char* name) {
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError("the process is gone");
  std::string out;
  char buf[4096];
  while (out.size() < (1 << 16)) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  int err = errno;
  close(fd);
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("the process is gone (", std::strerror(err), ")"));
  }
  return out;
}

// Fields of /proc/PID/stat after the parenthesized command name, which may
// itself contain spaces and parentheses. Fields[0] is field 3 (state).
absl::StatusOr<std::vector<std::string>> StatFields(const std::string& stat) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) {
    return absl::InternalError("cannot parse /proc/PID/stat");
  }
  return std::vector<std::string>(absl::StrSplit(stat.substr(close + 2), ' '));
}

// The effective id of a "Uid:" or "Gid:" line of /proc/PID/status.
bool EffectiveId(const std::string& status, absl::string_view key,
                 uint32_t* out) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key)) continue;
    std::vector<absl::string_view> ids =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    return ids.size() >= 2 && absl::SimpleAtoi(ids[1], out);
  }
  return false;
}

}  // namespace

absl::StatusOr<ProcessHandle> ProcessHandle::Open(pid_t pid, int pidfd) {
  if (pid <= 0) {
    if (pidfd >= 0) close(pidfd);
    return absl::NotFoundError("no process");
  }
  // The pidfd first, the directory second, then the pidfd says the process
  // was alive all along: the directory is of that process, not of a later
  // one that got its pid.
  if (pidfd < 0) {
    pidfd = PidfdOpen(pid);
    // ENOSYS (Linux < 5.3): /proc alone. ESRCH: gone already.
    if (pidfd < 0 && errno == ESRCH) {
      return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    }
  }
  int dirfd = open(absl::StrCat("/proc/", pid).c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0 || (pidfd >= 0 && !PidfdAlive(pidfd))) {
    if (dirfd >= 0) close(dirfd);
    if (pidfd >= 0) close(pidfd);
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  }
  return ProcessHandle(pid, dirfd, pidfd);
}

ProcessHandle::ProcessHandle(ProcessHandle&& other) noexcept
    : pid_(other.pid_), dirfd_(other.dirfd_), pidfd_(other.pidfd_) {
  other.dirfd_ = -1;
  other.pidfd_ = -1;
}

ProcessHandle& ProcessHandle::operator=(ProcessHandle&& other) noexcept {
  if (this != &other) {
    if (dirfd_ >= 0) close(dirfd_);
    if (pidfd_ >= 0) close(pidfd_);
    pid_ = other.pid_;
    dirfd_ = other.dirfd_;
    pidfd_ = other.pidfd_;
    other.dirfd_ = -1;
    other.pidfd_ = -1;
  }
  return *this;
}

ProcessHandle::~ProcessHandle() {
  if (dirfd_ >= 0) close(dirfd_);
  if (pidfd_ >= 0) close(pidfd_);
}

absl::StatusOr<ProcessIdentity> ProcessHandle::Read() const {
  ProcessIdentity id;
  id.pid = pid_;
  absl::StatusOr<std::string> stat = ReadAt(dirfd_, "stat");
  if (!stat.ok()) return stat.status();
  absl::StatusOr<std::vector<std::string>> fields = StatFields(*stat);
  if (!fields.ok()) return fields.status();
  // starttime is field 22.
  if (fields->size() < 20 || !absl::SimpleAtoi((*fields)[19], &id.start_time) ||
      !absl::SimpleAtoi((*fields)[2], &id.process_group) ||
      !absl::SimpleAtoi((*fields)[3], &id.session_id)) {
    return absl::InternalError(
        absl::StrCat("cannot parse /proc/", pid_, "/stat"));
  }
  absl::StatusOr<std::string> status = ReadAt(dirfd_, "status");
  if (!status.ok()) return status.status();
  if (!EffectiveId(*status, "Uid:", &id.uid) ||
      !EffectiveId(*status, "Gid:", &id.gid)) {
    return absl::InternalError(
        absl::StrCat("cannot read the uid of process ", pid_));
  }
  char buf[PATH_MAX];
  ssize_t n = readlinkat(dirfd_, "exe", buf, sizeof buf - 1);
  if (n > 0) id.exe.assign(buf, n);
  absl::StatusOr<std::string> comm = ReadAt(dirfd_, "comm");
  if (comm.ok())
    id.comm = std::string(absl::StripTrailingAsciiWhitespace(*comm));
  return id;
}

bool ProcessHandle::HoldsSocket(uint64_t inode) const {
  int fds = openat(dirfd_, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fds < 0) return false;
  DIR* dir = fdopendir(fds);
  if (dir == nullptr) {
    close(fds);
    return false;
  }
  const std::string want = absl::StrCat("socket:[", inode, "]");
  bool found = false;
  while (dirent* e = readdir(dir)) {
    char target[64];
    ssize_t n = readlinkat(dirfd(dir), e->d_name, target, sizeof target);
    if (n > 0 && absl::string_view(target, n) == want) {
      found = true;
      break;
    }
  }
  closedir(dir);
  return found;
}

absl::StatusOr<ProcessIdentity> ProcessIdentityOf(pid_t pid) {
  absl::StatusOr<ProcessHandle> handle = ProcessHandle::Open(pid);
  if (!handle.ok()) return handle.status();
  return handle->Read();
}

pid_t ProcessHandle::ParentPid() const {
  absl::StatusOr<std::string> stat = ReadAt(dirfd_, "stat");
  if (!stat.ok()) return 0;
  absl::StatusOr<std::vector<std::string>> fields = StatFields(*stat);
  int ppid = 0;
  if (!fields.ok() || fields->size() < 2 ||
      !absl::SimpleAtoi((*fields)[1], &ppid))
    return 0;
  return ppid;
}

pid_t ParentOf(pid_t pid) {
  absl::StatusOr<ProcessHandle> handle = ProcessHandle::Open(pid);
  return handle.ok() ? handle->ParentPid() : 0;
}

absl::StatusOr<ProcessIdentity> PeerIdentityOfSocket(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(
        absl::StrCat("SO_PEERCRED failed: ", std::strerror(errno)));
  }
  // The kernel's pidfd of the connecting process (Linux >= 6.5) closes the
  // gap in which its pid could be reused before we look; else pidfd_open.
  int pidfd = -1;
  len = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) pidfd = -1;
  absl::StatusOr<ProcessHandle> handle = ProcessHandle::Open(cred.pid, pidfd);
  absl::StatusOr<ProcessIdentity> id =
      handle.ok() ? handle->Read()
                  : absl::StatusOr<ProcessIdentity>(handle.status());
  ProcessIdentity out = id.ok() ? *id : ProcessIdentity{};
  out.pid = cred.pid;
  out.uid = cred.uid;
  out.gid = cred.gid;
  return out;
}

absl::StatusOr<bool> PeerHasGroup(int fd, gid_t gid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(
        absl::StrCat("SO_PEERCRED failed: ", std::strerror(errno)));
  }
  if (cred.gid == gid) return true;
  std::vector<gid_t> groups(64);
  while (true) {
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0)
      break;
    // ERANGE: `len` now says how much room the list needs.
    if (errno != ERANGE || len <= groups.size() * sizeof(gid_t)) {
      return absl::InternalError(
          absl::StrCat("SO_PEERGROUPS failed: ", std::strerror(errno)));
    }
    groups.resize(len / sizeof(gid_t));
  }
  groups.resize(len / sizeof(gid_t));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

std::string Describe(const ProcessIdentity& id) {
  std::string name = id.exe.substr(id.exe.find_last_of('/') + 1);
  if (name.empty()) name = id.comm;
  if (name.empty()) name = "unknown";
  return absl::StrCat(name, ", pid ", id.pid, ", uid ", id.uid, ", ",
                      id.exe.empty() ? "?" : id.exe);
}

void PeerRegistry::Record(int fd, ProcessIdentity identity) {
  absl::MutexLock lock(&mu_);
  by_fd_[fd] = std::move(identity);
}

void PeerRegistry::SetTcpPorts(std::vector<int> ports) {
  absl::MutexLock lock(&mu_);
  tcp_ports_ = std::move(ports);
}

std::optional<ProcessIdentity> PeerRegistry::FindTcpClient(
    const std::string& peer) const {
  std::optional<TcpEndpoint> client = ParseGrpcPeer(peer);
  if (!client.has_value() || !IsLoopback(*client)) return std::nullopt;
  std::vector<int> ports;
  {
    absl::MutexLock lock(&mu_);
    ports = tcp_ports_;
  }
  absl::StatusOr<TcpSocket> socket = FindClientSocket(*client, ports);
  if (!socket.ok()) return std::nullopt;
  {
    absl::MutexLock lock(&mu_);
    auto it = tcp_found_.find(peer);
    if (it != tcp_found_.end() && it->second.first == socket->inode)
      return it->second.second;
  }
  ProcessIdentity found;
  found.uid = socket->uid;
  // Only the broker's own user's processes can be looked into.
  absl::StatusOr<pid_t> holder =
      socket->uid == geteuid()
          ? FindSocketHolder(socket->inode, socket->uid)
          : absl::StatusOr<pid_t>(absl::NotFoundError("another user"));
  if (holder.ok()) {
    absl::StatusOr<ProcessHandle> handle = ProcessHandle::Open(*holder);
    // Through the handle: the holder is still that process.
    if (handle.ok() && handle->HoldsSocket(socket->inode)) {
      absl::StatusOr<ProcessIdentity> id = handle->Read();
      if (id.ok()) found = *id;
    }
  }
  absl::MutexLock lock(&mu_);
  if (tcp_found_.size() >= kMaxTcpFound) tcp_found_.clear();
  tcp_found_[peer] = {socket->inode, found};
  return found;
}

Caller PeerRegistry::ResolvePeer(const std::string& peer,
                                 const std::string& role,
                                 PeerLookup lookup) const {
  Caller caller;
  caller.role = role;
  caller.peer = peer;
  std::optional<ProcessIdentity> id;
  int fd = -1;
  if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(peer.substr(3), &fd)) {
    absl::MutexLock lock(&mu_);
    auto it = by_fd_.find(fd);
    if (it != by_fd_.end()) id = it->second;
  } else if (lookup == PeerLookup::kFull) {
    id = FindTcpClient(peer);
  }
  if (!id.has_value()) return caller;
  caller.uid = static_cast<int64_t>(id->uid);
  if (id->pid == 0) return caller;  // Another user's TCP socket, say.
  caller.peer =
      fd >= 0 ? Describe(*id) : absl::StrCat(Describe(*id), ", over ", peer);
  caller.pid = id->pid;
  caller.start_time = id->start_time;
  caller.process_group = id->process_group;
  caller.session_id = id->session_id;
  caller.exe = id->exe;
  return caller;
}

Caller PeerRegistry::Resolve(const grpc::ServerContextBase& context,
                             const std::string& role, PeerLookup lookup) const {
  Caller caller = ResolvePeer(context.peer(), role, lookup);
  // A TCP caller whose client certificate the TLS handshake verified
  // (--tls_client_ca): gRPC says so through the public auth context.
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  caller.client_certificate =
      auth != nullptr && auth->IsPeerAuthenticated() &&
      !auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME).empty();
  return caller;
}

std::string PeerRegistry::CallerKey(const std::string& peer) const {
  int fd = -1;
  if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(peer.substr(3), &fd)) {
    absl::MutexLock lock(&mu_);
    auto it = by_fd_.find(fd);
    if (it != by_fd_.end()) return absl::StrCat("uid ", it->second.uid);
    return peer;
  }
  // The address without its port.
  size_t colon = peer.rfind(':');
  if (colon != std::string::npos && colon > peer.find(':'))
    return peer.substr(0, colon);
  return peer;
}

}  // namespace credbroker
