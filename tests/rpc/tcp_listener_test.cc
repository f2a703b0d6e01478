#include "broker/rpc/tcp_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

int NewSocket() { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

TEST(ConnectionLimiterTest,
     ABusyAddressIsRefusedUntilOneOfItsConnectionsCloses) {
  ConnectionLimiter limiter(/*per_address=*/2, /*reserved_fds=*/0);
  int a1 = NewSocket(), a2 = NewSocket(), a3 = NewSocket();
  ASSERT_GE(a3, 0);
  EXPECT_EQ(limiter.Admit(a1, "10.0.0.1"), ConnectionLimiter::Verdict::kAdmit);
  EXPECT_EQ(limiter.Admit(a2, "10.0.0.1"), ConnectionLimiter::Verdict::kAdmit);
  EXPECT_EQ(limiter.Admit(a3, "10.0.0.1"),
            ConnectionLimiter::Verdict::kTooManyFromAddress);
  // Another address has its own count.
  EXPECT_EQ(limiter.Admit(a3, "10.0.0.2"), ConnectionLimiter::Verdict::kAdmit);

  // a1 is closed and its number now names another file: it no longer counts.
  close(a1);
  int other_file = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(other_file, a1);
  int a4 = NewSocket();
  EXPECT_EQ(limiter.Admit(a4, "10.0.0.1"), ConnectionLimiter::Verdict::kAdmit);
  EXPECT_EQ(limiter.OpenFrom("10.0.0.1"), 2);

  // A closed connection whose number the kernel hands out again is gone too.
  close(a2);
  int a5 = NewSocket();
  ASSERT_EQ(a5, a2);
  EXPECT_EQ(limiter.Admit(a5, "10.0.0.1"), ConnectionLimiter::Verdict::kAdmit);
  EXPECT_EQ(limiter.OpenFrom("10.0.0.1"), 2);
  for (int fd : {other_file, a3, a4, a5}) close(fd);
}

TEST(ConnectionLimiterTest, TheLastDescriptorsAreKeptForTheUnixSocket) {
  rlimit files{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  const int limit = static_cast<int>(files.rlim_cur);
  int fd = NewSocket();
  ASSERT_GE(fd, 0);
  // The ceiling just at this descriptor: taking it would eat the reserve.
  ConnectionLimiter at(/*per_address=*/100, /*reserved_fds=*/limit - fd);
  EXPECT_EQ(at.Admit(fd, "10.0.0.1"),
            ConnectionLimiter::Verdict::kDescriptorReserve);
  ConnectionLimiter below(/*per_address=*/100, /*reserved_fds=*/limit - fd - 1);
  EXPECT_EQ(below.Admit(fd, "10.0.0.1"), ConnectionLimiter::Verdict::kAdmit);
  close(fd);
}

TEST(LineLimiterTest, ABurstPerWindowThenItCountsWhatItDropped) {
  LineLimiter lines(3, absl::Minutes(1));
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  int64_t suppressed = -1;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(lines.Allow(t0 + absl::Seconds(i), &suppressed));
    EXPECT_EQ(suppressed, 0);
  }
  EXPECT_FALSE(lines.Allow(t0 + absl::Seconds(10), &suppressed));
  EXPECT_FALSE(lines.Allow(t0 + absl::Seconds(59), &suppressed));
  EXPECT_TRUE(lines.Allow(t0 + absl::Seconds(61), &suppressed));
  EXPECT_EQ(suppressed, 2);
}

// What the process writes to stderr while `write` runs.
template <typename Fn>
std::string StderrOf(Fn write) {
  fflush(stderr);
  std::FILE* file = std::tmpfile();
  int saved = dup(2);
  dup2(fileno(file), 2);
  write();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  std::rewind(file);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, file)) > 0;)
    out.append(buf, n);
  std::fclose(file);
  return out;
}

TEST(LineLimiterTest, GrpcLogLinesAreLimitedToTwentyAMinute) {
  grpc_init();  // gRPC writes no log line before it is initialized.
  LimitGrpcLogLines();
  std::string out = StderrOf([] {
    for (int i = 0; i < 500; ++i) gpr_log(GPR_ERROR, "handshake %d failed", i);
  });
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 20u) << out;
  EXPECT_TRUE(absl::StrContains(lines[0], "handshake 0 failed")) << lines[0];
  EXPECT_TRUE(absl::StartsWith(lines[0], "credbrokerd: grpc E")) << lines[0];
  grpc_shutdown();
}

TEST(TcpListenerTest, AcceptGivesTheRemoteAddress) {
  absl::StatusOr<TcpListener> listener = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_GT(listener->port, 0);
  int client = NewSocket();
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(listener->port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  pollfd p{listener->fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  std::string address;
  int conn = AcceptTcp(listener->fd, &address);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(address, "127.0.0.1");
  EXPECT_NE(fcntl(conn, F_GETFL) & O_NONBLOCK, 0);
  for (int fd : {conn, client, listener->fd}) close(fd);
}

TEST(TcpListenerTest, LocalhostListensOnIpv4) {
  absl::StatusOr<TcpListener> listener = ListenTcp("localhost", 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ASSERT_EQ(
      getsockname(listener->fd, reinterpret_cast<sockaddr*>(&bound), &len), 0);
  EXPECT_EQ(bound.ss_family, AF_INET);
  close(listener->fd);
}

}  // namespace
}  // namespace credbroker
