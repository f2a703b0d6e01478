#include "broker/rpc/peer.h"

#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/common/files.h"

namespace credbroker {
namespace {

// Fields of /proc/PID/stat after the parenthesized command name, which may
// itself contain spaces and parentheses.
absl::StatusOr<std::vector<std::string>> StatFields(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  }
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return absl::InternalError(absl::StrCat("cannot parse /proc/", pid, "/stat"));
  }
  // Field 3 (state) is the first after ") ".
  return std::vector<std::string>(absl::StrSplit(stat->substr(close + 2), ' '));
}

}  // namespace

absl::StatusOr<ProcessIdentity> ProcessIdentityOf(pid_t pid) {
  ProcessIdentity id;
  id.pid = pid;
  absl::StatusOr<std::vector<std::string>> fields = StatFields(pid);
  if (!fields.ok()) return fields.status();
  // starttime is field 22; fields[0] is field 3.
  if (fields->size() < 20 || !absl::SimpleAtoi((*fields)[19], &id.start_time)) {
    return absl::InternalError(absl::StrCat("cannot read the start time of process ", pid));
  }
  char buf[PATH_MAX];
  ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), buf, sizeof buf - 1);
  if (n > 0) id.exe.assign(buf, n);
  absl::StatusOr<std::string> comm = ReadFile(absl::StrCat("/proc/", pid, "/comm"));
  if (comm.ok()) id.comm = std::string(absl::StripTrailingAsciiWhitespace(*comm));
  return id;
}

pid_t ParentOf(pid_t pid) {
  absl::StatusOr<std::vector<std::string>> fields = StatFields(pid);
  int ppid = 0;
  if (!fields.ok() || fields->size() < 2 || !absl::SimpleAtoi((*fields)[1], &ppid)) return 0;
  return ppid;
}

absl::StatusOr<ProcessIdentity> PeerIdentityOfSocket(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(
        absl::StrCat("SO_PEERCRED failed: ", std::strerror(errno)));
  }
  absl::StatusOr<ProcessIdentity> id = ProcessIdentityOf(cred.pid);
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
    return absl::InternalError(absl::StrCat("SO_PEERCRED failed: ", std::strerror(errno)));
  }
  if (cred.gid == gid) return true;
  std::vector<gid_t> groups(64);
  while (true) {
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) break;
    // ERANGE: `len` now says how much room the list needs.
    if (errno != ERANGE || len <= groups.size() * sizeof(gid_t)) {
      return absl::InternalError(absl::StrCat("SO_PEERGROUPS failed: ", std::strerror(errno)));
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

Caller PeerRegistry::Resolve(const grpc::ServerContextBase& context,
                             const std::string& role) const {
  Caller caller;
  caller.role = role;
  std::string peer = context.peer();
  caller.peer = peer;
  int fd = -1;
  if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(peer.substr(3), &fd)) {
    absl::MutexLock lock(&mu_);
    auto it = by_fd_.find(fd);
    if (it != by_fd_.end()) {
      caller.peer = Describe(it->second);
      caller.pid = it->second.pid;
      caller.uid = static_cast<int64_t>(it->second.uid);
      caller.start_time = it->second.start_time;
      caller.exe = it->second.exe;
    }
  }
  // A TCP caller whose client certificate the TLS handshake verified
  // (--tls_client_ca): gRPC says so through the public auth context.
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  caller.client_certificate =
      auth != nullptr && auth->IsPeerAuthenticated() &&
      !auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME).empty();
  return caller;
}

}  // namespace credbroker
