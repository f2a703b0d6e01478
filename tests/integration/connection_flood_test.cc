// Other users cannot starve the owner: another uid holding more TCP
// connections to the broker than it has descriptors leaves the owner's Unix
// socket served, and the broker's stderr bounded.
#include <unistd.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "broker/rpc/server.h"
#include "client/credbroker/client.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

constexpr int kConnections = 1100;

// Connects argv[3] times to argv[1]:argv[2] and never sends a byte (no TLS
// ClientHello). Prints "held N closed K" once at most argv[4] connections
// are still open (the broker closed the rest) or 30 s passed, then exits
// with "open N" once all are closed or 40 s more passed.
constexpr char kFlooder[] = R"py(
import select, socket, sys, time
host, port, count, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
socks = {}
for _ in range(count):
    s = socket.create_connection((host, port), timeout=10)
    socks[s.fileno()] = s
poller = select.poll()
for fd in socks:
    poller.register(fd, select.POLLIN)
def wait_until(limit, seconds):
    deadline = time.monotonic() + seconds
    while len(socks) > limit and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            poller.unregister(fd)
            socks.pop(fd).close()
wait_until(keep, 30)
print("held", count, "closed", count - len(socks), flush=True)
wait_until(0, 40)
print("open", len(socks), flush=True)
)py";

class ConnectionFloodTest : public BrokerTest {
 protected:
  ConnectionFloodTest() { start_in_setup_ = false; }

  int TcpPort() const {
    std::smatch m;
    std::string out = broker_->stdout_text();
    static const std::regex kServing(
        "serving on [^\\n]*?127\\.0\\.0\\.1:([0-9]+)");
    int port = 0;
    if (std::regex_search(out, m, kServing))
      (void)absl::SimpleAtoi(m[1].str(), &port);
    return port;
  }

  // One call from the owner over the Unix socket, on a new connection.
  absl::Status OwnerCall() const {
    client::Options o;
    o.address = broker_->address();
    o.token = broker_->approver_token();
    o.timeout = absl::Seconds(5);
    auto c = client::CredentialClient::Connect(o);
    if (!c.ok()) return c.status();
    return (*c)->ListProviders().status();
  }
};

TEST_F(ConnectionFloodTest,
       AnotherUsersHalfOpenConnectionsLeaveTheUnixSocketServed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  ASSERT_TRUE(
      broker_
          ->Start({"--listen", absl::StrCat("unix:", broker_->socket_path(),
                                            ",127.0.0.1:0")})
          .ok())
      << broker_->stderr_text();
  const int port = TcpPort();
  ASSERT_NE(port, 0) << broker_->stdout_text();
  // Fewer descriptors for the broker than the flood has connections.
  Subprocess::Options limit;
  limit.argv = {"/usr/bin/prlimit", "--pid", std::to_string(broker_->pid()),
                "--nofile=1024:1024"};
  auto prlimit = Subprocess::Spawn(limit);
  ASSERT_TRUE(prlimit.ok()) << prlimit.status();
  ASSERT_EQ((*prlimit)->WaitForExit(absl::Seconds(30)).value_or(-1), 0)
      << (*prlimit)->stderr_text();

  Subprocess::Options flood;
  flood.argv = {"/usr/bin/prlimit",
                "--nofile=4096:4096",
                "/usr/bin/setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                kFlooder,
                "127.0.0.1",
                std::to_string(port),
                std::to_string(kConnections),
                std::to_string(kMaxConnectionsPerAddress)};
  auto flooder = Subprocess::Spawn(flood);
  ASSERT_TRUE(flooder.ok()) << flooder.status();

  // The broker served every connection beyond the per-address bound by
  // closing it, so it holds no more than that bound of the flood.
  EXPECT_TRUE((*flooder)->WaitForStdoutLine(
      absl::StrCat("held ", kConnections, " closed ",
                   kConnections - kMaxConnectionsPerAddress),
      absl::Seconds(60)))
      << (*flooder)->stdout_text() << (*flooder)->stderr_text();

  // Meanwhile the owner's calls on the Unix socket go through, each on its
  // own new connection, within the client's normal deadline.
  for (int i = 0; i < 20; ++i) {
    absl::Status s = OwnerCall();
    ASSERT_TRUE(s.ok()) << "call " << i << ": " << s;
  }

  // The connections it kept end with the TLS handshake timeout (gRPC's
  // default would hold them for two minutes).
  EXPECT_TRUE((*flooder)->WaitForStdoutLine("open 0", absl::Seconds(60)))
      << (*flooder)->stdout_text();
  EXPECT_EQ((*flooder)->WaitForExit(absl::Seconds(30)).value_or(-1), 0)
      << (*flooder)->stderr_text();
  EXPECT_TRUE(OwnerCall().ok());

  // A thousand refused connections make a handful of log lines.
  std::vector<std::string> lines = absl::StrSplit(broker_->stderr_text(), '\n');
  EXPECT_LT(lines.size(), 60u) << broker_->stderr_text();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
