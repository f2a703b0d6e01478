// Caller identity from the kernel (broker/rpc/peer.h, tcp_peer.h) on real
// processes and real loopback sockets: process handles, SO_PEERCRED, the
// loopback TCP client's process, and the registry's caller keys.
#include "broker/rpc/peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/rpc/tcp_peer.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

// A child that waits until its stdin pipe closes, then exits.
class Child {
 public:
  Child() {
    int p[2];
    if (pipe(p) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(p[1]);
      char c;
      while (read(p[0], &c, 1) > 0) {
      }
      _exit(0);
    }
    close(p[0]);
    pipe_ = p[1];
  }
  ~Child() { Reap(); }
  void Reap() {
    if (pipe_ >= 0) close(pipe_);
    pipe_ = -1;
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int pipe_ = -1;
};

TEST(ProcessHandleTest, ReadsThisProcess) {
  absl::StatusOr<ProcessHandle> h = ProcessHandle::Open(getpid());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->has_pidfd());  // Linux >= 5.3.
  absl::StatusOr<ProcessIdentity> id = h->Read();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->pid, getpid());
  EXPECT_EQ(id->uid, geteuid());
  EXPECT_EQ(id->gid, getegid());
  EXPECT_GT(id->start_time, 0u);
  EXPECT_TRUE(absl::EndsWith(id->exe, "peer_test")) << id->exe;
  EXPECT_EQ(h->ParentPid(), getppid());
}

// A handle names one process: once that process is gone, reads through it
// fail rather than describe whatever gets the pid next.
TEST(ProcessHandleTest, AHandleOutlivingItsProcessReadsNothing) {
  Child child;
  ASSERT_GT(child.pid(), 0);
  absl::StatusOr<ProcessHandle> h = ProcessHandle::Open(child.pid());
  ASSERT_TRUE(h.ok()) << h.status();
  absl::StatusOr<ProcessIdentity> before = h->Read();
  ASSERT_TRUE(before.ok()) << before.status();
  pid_t pid = child.pid();
  child.Reap();
  absl::StatusOr<ProcessIdentity> after = h->Read();
  EXPECT_TRUE(absl::IsNotFound(after.status())) << after.status();
  EXPECT_TRUE(absl::IsNotFound(ProcessHandle::Open(pid).status()) ||
              ProcessIdentityOf(pid)->start_time != before->start_time);
}

TEST(PeerIdentityTest, UnixPeerIsThisProcessWithItsStartTime) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  absl::StatusOr<ProcessIdentity> peer = PeerIdentityOfSocket(sv[0]);
  absl::StatusOr<ProcessIdentity> self = ProcessIdentityOf(getpid());
  close(sv[0]);
  close(sv[1]);
  ASSERT_TRUE(peer.ok()) << peer.status();
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(peer->pid, getpid());
  EXPECT_EQ(peer->uid, geteuid());
  EXPECT_EQ(peer->start_time, self->start_time);
  EXPECT_EQ(peer->exe, self->exe);
}

TEST(TcpPeerTest, ParsesGrpcPeerStrings) {
  auto v4 = ParseGrpcPeer("ipv4:127.0.0.1:5000");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->port, 5000);
  EXPECT_TRUE(IsLoopback(*v4));
  for (const char* s : {"ipv6:[::1]:6000", "ipv6:%5B::1%5D:6000"}) {
    auto v6 = ParseGrpcPeer(s);
    ASSERT_TRUE(v6.has_value()) << s;
    EXPECT_EQ(v6->port, 6000);
    EXPECT_TRUE(IsLoopback(*v6));
  }
  auto mapped = ParseGrpcPeer("ipv6:[::ffff:127.3.4.5]:1");
  ASSERT_TRUE(mapped.has_value());
  EXPECT_TRUE(IsLoopback(*mapped));
  EXPECT_TRUE(*mapped == *ParseGrpcPeer("ipv4:127.3.4.5:1"));
  EXPECT_FALSE(IsLoopback(*ParseGrpcPeer("ipv4:10.0.0.1:5000")));
  EXPECT_FALSE(IsLoopback(*ParseGrpcPeer("ipv6:[::2]:5000")));
  for (const char* s : {"fd:7", "unix:/tmp/x", "ipv4:127.0.0.1", "ipv6:::1:5",
                        "ipv4:1.2.3:4"}) {
    EXPECT_FALSE(ParseGrpcPeer(s).has_value()) << s;
  }
}

TEST(TcpPeerTest, FindsTheClientEndInTheKernelsTable) {
  // 127.0.0.1:40000 -> 127.0.0.1:7443, established, uid 1000, inode 4242;
  // the server's end of it; and a closed socket on the same client port.
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
      "retrnsmt   uid  "
      "timeout inode\n"
      "   0: 0100007F:1D13 0100007F:9C40 01 00000000:00000000 00:00000000 "
      "00000000  0 0 99 1\n"
      "   1: 0100007F:9C40 0100007F:1D13 06 00000000:00000000 00:00000000 "
      "00000000  7 0 0 1\n"
      "   2: 0100007F:9C40 0100007F:1D13 01 00000000:00000000 00:00000000 "
      "00000000  1000 0 "
      "4242 1\n";
  TcpEndpoint client = *ParseGrpcPeer("ipv4:127.0.0.1:40000");
  absl::StatusOr<TcpSocket> s =
      FindClientSocketIn(table, false, client, {7443});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->inode, 4242u);
  EXPECT_EQ(s->uid, 1000u);
  EXPECT_TRUE(absl::IsNotFound(
      FindClientSocketIn(table, false, client, {7444}).status()));
  const std::string table6 =
      "  sl  local_address                         remote_address              "
      "          st "
      "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000000000000000000001000000:9C40 "
      "00000000000000000000000001000000:1D13 01 "
      "00000000:00000000 00:00000000 00000000  1000 0 777 1\n";
  absl::StatusOr<TcpSocket> s6 = FindClientSocketIn(
      table6, true, *ParseGrpcPeer("ipv6:[::1]:40000"), {7443});
  ASSERT_TRUE(s6.ok()) << s6.status();
  EXPECT_EQ(s6->inode, 777u);
}

// A real loopback connection: its client end is found, and the one process
// holding it is this one; a second holder makes it ambiguous.
TEST(TcpPeerTest, FindsTheProcessHoldingALoopbackConnection) {
  int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(server, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int server_port = ntohs(addr.sin_port);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
            0);
  int accepted = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  sockaddr_in peer{};
  len = sizeof peer;
  ASSERT_EQ(getpeername(accepted, reinterpret_cast<sockaddr*>(&peer), &len), 0);
  std::string grpc_peer = absl::StrCat("ipv4:127.0.0.1:", ntohs(peer.sin_port));

  absl::StatusOr<TcpSocket> s =
      FindClientSocket(*ParseGrpcPeer(grpc_peer), {server_port});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->uid, geteuid());
  absl::StatusOr<pid_t> holder = FindSocketHolder(s->inode, geteuid());
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, getpid());
  absl::StatusOr<ProcessHandle> h = ProcessHandle::Open(*holder);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->HoldsSocket(s->inode));
  // Through the registry, the caller is this process.
  PeerRegistry registry;
  registry.SetTcpPorts({server_port});
  Caller caller = registry.ResolvePeer(grpc_peer, "approver");
  EXPECT_EQ(caller.pid, getpid());
  EXPECT_TRUE(absl::StrContains(caller.peer, absl::StrCat("pid ", getpid())))
      << caller.peer;
  EXPECT_EQ(
      registry.ResolvePeer(grpc_peer, "approver", PeerLookup::kNoTcpScan).pid,
      0);
  EXPECT_EQ(registry.CallerKey(grpc_peer), "ipv4:127.0.0.1");

  {
    Child sharer;  // Inherits `client` across fork.
    ASSERT_GT(sharer.pid(), 0);
    absl::StatusOr<pid_t> two = FindSocketHolder(s->inode, geteuid());
    EXPECT_EQ(two.status().code(), absl::StatusCode::kFailedPrecondition)
        << two.status();
  }
  // Limits bound the scan.
  SocketScanLimits tiny;
  tiny.max_fds = 0;
  EXPECT_FALSE(FindSocketHolder(s->inode, geteuid(), tiny).ok());
  // Another user's socket is not looked into.
  EXPECT_TRUE(
      absl::IsNotFound(FindSocketHolder(s->inode, geteuid() + 1).status()));
  close(accepted);
  close(client);
  close(server);
}

TEST(PeerRegistryTest, UnixCallersAreKnownByTheirAcceptedFd) {
  PeerRegistry registry;
  ProcessIdentity a;
  a.pid = 4242;
  a.uid = 1000;
  a.start_time = 77;
  a.exe = "/usr/bin/node";
  registry.Record(9, a);
  Caller c = registry.ResolvePeer("fd:9", "agent");
  EXPECT_EQ(c.pid, 4242);
  EXPECT_EQ(c.uid, 1000);
  EXPECT_EQ(c.start_time, 77u);
  EXPECT_EQ(c.peer, "node, pid 4242, uid 1000, /usr/bin/node");
  EXPECT_EQ(registry.CallerKey("fd:9"), "uid 1000");
  // A caller resolved when its call arrived keeps that identity when the fd
  // number later names another connection.
  ProcessIdentity b = a;
  b.pid = 5555;
  registry.Record(9, b);
  EXPECT_EQ(c.pid, 4242);
  EXPECT_EQ(registry.ResolvePeer("fd:9", "agent").pid, 5555);
  // Unknown: no identity.
  EXPECT_FALSE(registry.ResolvePeer("fd:10", "agent").identified());
  EXPECT_FALSE(registry.ResolvePeer("ipv4:10.1.2.3:80", "agent").identified());
}

}  // namespace
}  // namespace credbroker
