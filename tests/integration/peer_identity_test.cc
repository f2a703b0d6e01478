// Caller identity and the throttles on the real credbrokerd, this test
// playing the agent: a loopback TCP caller resolved to its process (and so
// refused as self-approval like a Unix caller), a TCP caller the broker
// cannot identify, bad-token storms that never lock out a valid token, and
// refusal audit events kept to a bounded number.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

class PeerIdentityTest : public BrokerTest {
 protected:
  PeerIdentityTest() { start_in_setup_ = false; }

  std::string DataDir() const { return broker_->data_dir(); }
  // Unix socket and loopback TCP (TLS with the generated certificate).
  void StartWithTcp(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--listen",
        absl::StrCat("unix:", broker_->socket_path(), ",127.0.0.1:0")};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::Status started = broker_->Start(args);
    ASSERT_TRUE(started.ok()) << started << broker_->stderr_text();
    client_ = broker_->Client();
    std::smatch m;
    std::string out = broker_->stdout_text();
    ASSERT_TRUE(std::regex_search(
        out, m, std::regex("serving on [^\\n]*?(127\\.0\\.0\\.1:[0-9]+)")))
        << out;
    tcp_ = m[1];
  }
  client::Options Tcp(const std::string& token) const {
    client::Options o;
    o.address = tcp_;
    o.token = token;
    o.tls_ca_file = DataDir() + "/tls.crt";
    o.timeout = kWait;
    return o;
  }
  client::Options Unix(const std::string& token) const {
    client::Options o;
    o.address = broker_->address();
    o.token = token;
    o.timeout = kWait;
    return o;
  }

 public:
  static absl::Status ListProviders(const client::Options& o) {
    auto c = client::CredentialClient::Connect(o);
    if (!c.ok()) return c.status();
    return (*c)->ListProviders().status();
  }

 protected:
  CommandResult Credctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CredctlPath(), "--data_dir", DataDir()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult();
  }
  void PutCustom() {
    client::CredentialInput put;
    put.provider = "custom";
    put.values["api_token"] = SecretBytes(RandomString(24));
    auto stored = client_->PutCredential(put);
    ASSERT_TRUE(stored.ok()) << stored.status();
  }
  // This process asks over TCP as the agent; returns the pending request.
  std::string AskOverTcp(std::unique_ptr<client::AgentSession>& agent) {
    auto session =
        client::AgentSession::Connect(Tcp(broker_->agent_token()), "s-tcp");
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return "";
    agent = std::move(*session);
    client::CredentialNeeded need;
    need.need_id = "n1";
    need.provider = "custom";
    need.action = "push a release";
    EXPECT_TRUE(agent->SendNeed(need).ok());
    auto pending = agent->WaitForState(
        "n1", client::RequestState::kPendingApproval, kWait);
    EXPECT_TRUE(pending.ok()) << pending.status();
    return pending.ok() ? pending->request_id : "";
  }
  std::vector<client::AuditEvent> Audit(const std::string& kind) {
    client::AuditQuery query;
    query.kind = kind;
    query.page_size = 1000;
    auto events = client_->ListAuditEvents(query);
    EXPECT_TRUE(events.ok()) << events.status();
    if (!events.ok()) return {};
    return events->events;
  }

  std::string tcp_;
};

// An agent asking over TCP, and a process it starts approving over TCP: the
// broker finds both processes behind their loopback connections and refuses
// the approval as self-approval (no PIN in this fixture: the identity check
// is what refuses).
TEST_F(PeerIdentityTest, AnAgentsChildApprovingOverTcpIsRefusedAsSelfApproval) {
  StartWithTcp();
  PutCustom();
  std::unique_ptr<client::AgentSession> agent;
  std::string id = AskOverTcp(agent);
  ASSERT_FALSE(id.empty());
  auto approver =
      client::ApprovalClient::Connect(Unix(broker_->approver_token()));
  ASSERT_TRUE(approver.ok()) << approver.status();
  auto pending = (*approver)->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  const std::string& peer = (*pending)[0].agent_peer;
  EXPECT_TRUE(absl::StrContains(peer, absl::StrCat("pid ", getpid()))) << peer;
  EXPECT_TRUE(absl::StrContains(peer, "over ipv4:127.0.0.1:")) << peer;

  CommandResult r = Credctl({"--broker", tcp_, "approve", id});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "requesting agent")) << r.err;
  auto still = (*approver)->ListPending();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->size(), 1u);
  std::vector<client::AuditEvent> refused = Audit("request.approve_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(absl::StrContains(refused[0].peer, "credctl")) << refused[0].peer;
}

// The attack in one shell line: `credctl request … & credctl approve …`.
// The approver is the agent's sibling, not its descendant, and runs in the
// same session (the shell's): refused, and the request stays pending.
TEST_F(PeerIdentityTest, AnApproverBesideTheAgentInItsShellIsRefused) {
  StartWithTcp();
  PutCustom();
  const std::string script = R"sh(
c="$1"; d="$2"
"$c" --data_dir "$d" request custom --action "push a release" --timeout 60 >/dev/null 2>&1 &
agent=$!
id=""; n=0
while [ -z "$id" ] && [ "$n" -lt 300 ]; do
  id="$("$c" --data_dir "$d" pending 2>/dev/null | awk '/push a release/ {print $1; exit}')"
  n=$((n + 1)); sleep 0.1
done
"$c" --data_dir "$d" approve "$id"
echo "approve exit $?"
kill "$agent"
)sh";
  absl::StatusOr<CommandResult> r =
      RunCommand({"/bin/sh", "-c", script, "sh", CredctlPath(), DataDir()},
                 absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->out, "approve exit 1")) << r->out << r->err;
  EXPECT_TRUE(absl::StrContains(r->err, "PERMISSION_DENIED")) << r->err;
  EXPECT_TRUE(absl::StrContains(r->err, "agent's session")) << r->err;
  std::vector<client::AuditEvent> refused = Audit("request.approve_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(absl::StrContains(refused[0].detail, "agent's session"))
      << refused[0].detail;
  EXPECT_TRUE(Audit("request.approved").empty());
}

// A TCP approver outside the agent's process tree is identified too, and
// may approve without a client certificate.
TEST_F(PeerIdentityTest, ATcpApproverOutsideTheAgentsTreeMayApprove) {
  StartWithTcp();
  PutCustom();
  Subprocess::Options o;
  o.argv = {CredctlPath(), "--data_dir", DataDir(),
            "--broker",    tcp_,         "request",
            "custom",      "--action",   "push a release",
            "--timeout",   "60"};
  auto request = Subprocess::Spawn(o);
  ASSERT_TRUE(request.ok()) << request.status();
  auto approver =
      client::ApprovalClient::Connect(Tcp(broker_->approver_token()));
  ASSERT_TRUE(approver.ok()) << approver.status();
  std::string id;
  absl::Time deadline = absl::Now() + kWait;
  while (id.empty() && absl::Now() < deadline) {
    auto pending = (*approver)->ListPending();
    ASSERT_TRUE(pending.ok()) << pending.status();
    if (!pending->empty()) {
      id = (*pending)[0].request_id;
      EXPECT_TRUE(absl::StrContains((*pending)[0].agent_peer,
                                    absl::StrCat("pid ", (*request)->pid())))
          << (*pending)[0].agent_peer;
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_FALSE(id.empty()) << (*request)->stderr_text();
  client::Approval req;
  req.request_id = id;
  auto approved = (*approver)->Approve(req);
  ASSERT_TRUE(approved.ok()) << approved.status();
  absl::StatusOr<int> code = (*request)->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << (*request)->stderr_text();
}

// Whether a valid token passes inside a lockout: a valid call answered OK
// between two bad tokens answered RESOURCE_EXHAUSTED was made while locked
// out (no failure is counted while locked out, so a lockout is one unbroken
// stretch). Each round may add failures, so lockouts grow until one shows.
void ExpectAValidTokenPassesInsideALockout(const client::Options& bad,
                                           const client::Options& good) {
  for (int round = 0; round < 20; ++round) {
    absl::Status before = PeerIdentityTest::ListProviders(bad);
    absl::Status valid = PeerIdentityTest::ListProviders(good);
    absl::Status after = PeerIdentityTest::ListProviders(bad);
    ASSERT_TRUE(valid.ok()) << valid;
    if (absl::IsResourceExhausted(before) && absl::IsResourceExhausted(after))
      return;
  }
  ADD_FAILURE() << "no lockout came around the valid call";
}

// Another process sends bad tokens over TCP until the address is throttled;
// the owner's valid token from the same address still passes at once.
TEST_F(PeerIdentityTest, BadTokensOverTcpNeverLockOutAValidToken) {
  StartWithTcp();
  const std::string bad_file = tmp_.path() + "/bad.token";
  ASSERT_TRUE(WriteFileBytes(bad_file, RandomString(43)).ok());
  bool throttled = false;
  for (int i = 0; i < 12 && !throttled; ++i) {
    CommandResult r =
        Credctl({"--broker", tcp_, "--token_file", bad_file, "providers"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(i >= 5 || absl::StrContains(r.err, "UNAUTHENTICATED")) << r.err;
    throttled = absl::StrContains(r.err, "RESOURCE_EXHAUSTED");
  }
  ASSERT_TRUE(throttled);
  EXPECT_TRUE(ListProviders(Tcp(broker_->approver_token())).ok());
  auto agent =
      client::AgentSession::Connect(Tcp(broker_->agent_token()), "s-ok");
  EXPECT_TRUE(agent.ok()) << agent.status();
  ExpectAValidTokenPassesInsideALockout(Tcp(RandomString(43)),
                                        Tcp(broker_->approver_token()));
}

// The same on the Unix socket, where the throttle counts per uid: bad tokens
// from another process of this user never refuse a valid token.
TEST_F(PeerIdentityTest, BadTokensOnTheUnixSocketNeverLockOutAValidToken) {
  StartWithTcp();
  const std::string bad_file = tmp_.path() + "/bad.token";
  ASSERT_TRUE(WriteFileBytes(bad_file, RandomString(43)).ok());
  bool throttled = false;
  for (int i = 0; i < 12 && !throttled; ++i) {
    CommandResult r = Credctl({"--token_file", bad_file, "providers"});
    EXPECT_NE(r.exit_code, 0);
    throttled = absl::StrContains(r.err, "RESOURCE_EXHAUSTED");
  }
  ASSERT_TRUE(throttled);
  CommandResult own = Credctl({"providers"});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  ExpectAValidTokenPassesInsideALockout(Unix(RandomString(43)),
                                        Unix(broker_->approver_token()));
}

// 500 bad-token calls: the owner's calls keep working all along, and the
// audit log gets a bounded number of rows with a summary of the rest.
TEST_F(PeerIdentityTest, ARefusalStormIsAuditedAtABoundedRate) {
  StartWithTcp();
  auto bad = broker_->ClientWithToken(RandomString(43));
  auto good = broker_->Client();
  int refused = 0;
  for (int i = 0; i < 500; ++i) {
    absl::Status s = bad->ListProviders().status();
    refused += absl::IsUnauthenticated(s) || absl::IsResourceExhausted(s);
    if (i % 50 == 0) {
      ASSERT_TRUE(good->ListProviders().ok()) << "call " << i;
    }
  }
  EXPECT_EQ(refused, 500);
  // A clean stop writes the summary of what was not written one by one.
  client_.reset();
  bad.reset();
  good.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0) << broker_->stderr_text();
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  client_ = broker_->Client();
  std::vector<client::AuditEvent> rows = Audit("call.refused");
  std::vector<client::AuditEvent> summaries = Audit("refusals.summarized");
  ASSERT_FALSE(summaries.empty());
  int64_t summarized = 0;
  for (const client::AuditEvent& e : summaries) {
    std::smatch m;
    std::string detail = e.detail;
    ASSERT_TRUE(std::regex_search(
        detail, m, std::regex("^([0-9]+) more refusals from uid ")))
        << detail;
    summarized += std::stoll(m[1]);
  }
  EXPECT_EQ(static_cast<int64_t>(rows.size()) + summarized, 500);
  // At most 10 rows per caller and minute.
  EXPECT_LE(rows.size(), 10 * (summaries.size() + 1));
  EXPECT_TRUE(Audit("refusals.dropped").empty());
}

// Run as another user (root only, with setpriv) from a directory it can
// reach.
class AnotherUser {
 public:
  AnotherUser() {
    char tmpl[] = "/tmp/cbpeer.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
  }
  ~AnotherUser() { std::system(("rm -rf " + dir_).c_str()); }
  const std::string& dir() const { return dir_; }
  // A copy of `path` others can read.
  std::string Share(const std::string& path, const std::string& name) {
    std::string to = dir_ + "/" + name;
    std::ifstream in(path);
    std::ofstream(to) << in.rdbuf();
    chmod(to.c_str(), 0644);
    return to;
  }
  CommandResult Credctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534",
                                     "--regid=65534", "--clear-groups",
                                     CredctlPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult();
  }

 private:
  std::string dir_;
};

// A TCP caller the broker cannot tell (another user's socket): without a
// client certificate it is refused as an approver, whatever its token.
TEST_F(PeerIdentityTest, AnotherUsersTcpApproverCannotBeToldAndIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  StartWithTcp();
  PutCustom();
  client::Options agent_options = Unix(broker_->agent_token());
  auto agent = client::AgentSession::Connect(agent_options, "s-unix");
  ASSERT_TRUE(agent.ok()) << agent.status();
  client::CredentialNeeded need;
  need.need_id = "n1";
  need.provider = "custom";
  need.action = "push a release";
  ASSERT_TRUE((*agent)->SendNeed(need).ok());
  auto pending = (*agent)->WaitForState(
      "n1", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(pending.ok()) << pending.status();
  AnotherUser other;
  CommandResult r =
      other.Credctl({"--broker", tcp_, "--token_file",
                     other.Share(DataDir() + "/approver.token", "a.token"),
                     "--tls_ca", other.Share(DataDir() + "/tls.crt", "tls.crt"),
                     "approve", pending->request_id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "cannot tell which process")) << r.err;
  std::vector<client::AuditEvent> refused = Audit("request.approve_refused");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(
      absl::StrContains(refused[0].detail, "cannot tell which process"));
}

// Another user's connections to a socket it can reach are refused at the
// door: they are audited at a bounded rate, and count nothing against this
// user's bad-token throttle.
TEST_F(PeerIdentityTest, AnotherUsersStormNeitherLocksOutNorFloodsTheOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  AnotherUser other;
  std::string sock = other.dir() + "/b.sock";
  absl::Status started =
      broker_->Start({"--listen", absl::StrCat("unix:", broker_->socket_path(),
                                               ",unix:", sock)});
  ASSERT_TRUE(started.ok()) << started;
  client_ = broker_->Client();
  ASSERT_EQ(chmod(sock.c_str(), 0666), 0);
  const std::string bad = other.dir() + "/bad.token";
  { std::ofstream(bad) << RandomString(43); }
  chmod(bad.c_str(), 0644);
  const int kStorm = 15;
  for (int i = 0; i < kStorm; ++i) {
    CommandResult r = other.Credctl({"--broker", "unix:" + sock, "--token_file",
                                     bad, "--timeout", "5", "providers"});
    EXPECT_NE(r.exit_code, 0);
  }
  // This user's first bad token is only a bad token, not a lockout.
  absl::Status guess = ListProviders(Unix(RandomString(43)));
  EXPECT_EQ(guess.code(), absl::StatusCode::kUnauthenticated) << guess;
  EXPECT_TRUE(ListProviders(Unix(broker_->approver_token())).ok());
  // Audited, at most 10 one by one, the rest summed up at the clean stop.
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok());
  ASSERT_TRUE(broker_->Start().ok()) << broker_->stderr_text();
  client_ = broker_->Client();
  std::vector<client::AuditEvent> rows = Audit("connection.refused");
  ASSERT_FALSE(rows.empty());
  EXPECT_LE(rows.size(), 10u);
  EXPECT_TRUE(absl::StrContains(rows[0].peer, "uid 65534")) << rows[0].peer;
  int64_t summarized = 0;
  for (const client::AuditEvent& e : Audit("refusals.summarized")) {
    if (e.peer != "uid 65534") continue;
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(e.detail.substr(0, e.detail.find(' ')), &n))
        << e.detail;
    summarized += n;
  }
  // gRPC may connect more than once per credctl run; none goes unaccounted.
  EXPECT_GE(static_cast<int64_t>(rows.size()) + summarized, kStorm);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
