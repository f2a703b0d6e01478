// The fixture of the approval-flow tests (flow_integration_test): the real
// credbrokerd driven through the client library, an agent in a flow_agent
// child process, and approvers in the test process. Secret values are
// compared, never printed.
#ifndef CREDBROKER_TESTS_INTEGRATION_FLOW_FIXTURE_H_
#define CREDBROKER_TESTS_INTEGRATION_FLOW_FIXTURE_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {

constexpr absl::Duration kWait = absl::Seconds(10);

// Collects a watcher's events for waits from the test thread.
class EventLog {
 public:
  void Add(const client::ApprovalEvent& e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(e);
  }
  void End(const absl::Status& s) {
    absl::MutexLock lock(&mu_);
    end_ = s;
  }
  // True once an event of `kind` for `request_id` (any, when empty) arrived.
  bool WaitFor(client::ApprovalEvent::Kind kind, const std::string& request_id,
               absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& e : events_) {
        if (e.kind == kind &&
            (request_id.empty() ||
             (e.request.has_value() && e.request->request_id == request_id))) {
          return true;
        }
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
  }
  std::vector<client::ApprovalEvent> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<client::ApprovalEvent> events_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
};

// A flow_agent child process: the deployment agent, in its own process (the
// broker refuses approvals from the requesting agent's process tree). The
// test process is the approver.
class AgentProcess {
 public:
  static std::unique_ptr<AgentProcess> Start(const BrokerProcess& broker,
                                             const std::string& dir,
                                             const std::string& session_key) {
    static int counter = 0;
    auto a = std::unique_ptr<AgentProcess>(new AgentProcess());
    a->fifo_ = absl::StrCat(dir, "/agent-", ++counter, ".in");
    if (mkfifo(a->fifo_.c_str(), 0600) != 0) {
      ADD_FAILURE() << "mkfifo failed";
      return nullptr;
    }
    Subprocess::Options o;
    o.argv = {FLOW_AGENT_PATH,
              "--address",
              broker.address(),
              "--token_file",
              broker.data_dir() + "/agent.token",
              "--session_key",
              session_key};
    o.stdin_path = a->fifo_;
    auto p = Subprocess::Spawn(o);
    if (!p.ok()) {
      ADD_FAILURE() << p.status();
      return nullptr;
    }
    a->process_ = std::move(*p);
    // Opening the write end waits for the child to open the read end.
    absl::Time deadline = absl::Now() + kWait;
    while (a->fd_ < 0 && absl::Now() < deadline) {
      a->fd_ = open(a->fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (a->fd_ < 0) absl::SleepFor(absl::Milliseconds(10));
    }
    if (a->fd_ < 0) {
      ADD_FAILURE() << "flow_agent did not open its input";
      return nullptr;
    }
    fcntl(a->fd_, F_SETFL, fcntl(a->fd_, F_GETFL) & ~O_NONBLOCK);
    if (!a->process_->WaitForStdoutLine("ready", kWait)) {
      ADD_FAILURE() << "flow_agent not ready: " << a->process_->stderr_text();
      return nullptr;
    }
    return a;
  }

  ~AgentProcess() {
    if (fd_ >= 0) close(fd_);
  }

  pid_t pid() const { return process_->pid(); }

  absl::Status SendNeed(const client::CredentialNeeded& n) {
    return Write(
        absl::StrCat("need ", n.need_id, " ", n.provider, " ", n.action));
  }
  absl::Status Cancel(const std::string& need_id) {
    return Write(absl::StrCat("cancel ", need_id));
  }
  // "OK" or the status text.
  std::string ReleaseGrant(const std::string& grant_id) {
    size_t before = Lines("released ").size();
    if (!Write(absl::StrCat("release ", grant_id)).ok()) return "write failed";
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      std::vector<std::string> lines = Lines("released ");
      if (lines.size() > before) return lines[before];
      absl::SleepFor(absl::Milliseconds(10));
    }
    return "no answer";
  }

  std::vector<client::NeedUpdate> Updates(const std::string& need_id) {
    std::vector<client::NeedUpdate> out;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    for (const std::string& json : Lines("update ")) {
      v1::NeedUpdate u;
      if (!google::protobuf::util::JsonStringToMessage(json, &u, options).ok())
        continue;
      if (u.need_id() == need_id) out.push_back(client::internal::FromProto(u));
    }
    return out;
  }

  // The next decided update of `need_id` not returned before.
  absl::StatusOr<client::NeedUpdate> WaitFor(const std::string& need_id,
                                             absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    size_t& consumed = consumed_[need_id];
    do {
      size_t seen = 0;
      for (const client::NeedUpdate& u : Updates(need_id)) {
        if (!client::IsDecided(u.state)) continue;
        if (seen++ == consumed) {
          ++consumed;
          return u;
        }
      }
      absl::SleepFor(absl::Milliseconds(10));
    } while (absl::Now() < deadline);
    return absl::DeadlineExceededError(
        absl::StrCat("no decision for ", need_id));
  }

  absl::StatusOr<client::NeedUpdate> WaitForState(const std::string& need_id,
                                                  client::RequestState state,
                                                  absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    do {
      std::vector<client::NeedUpdate> all = Updates(need_id);
      for (auto u = all.rbegin(); u != all.rend(); ++u) {
        if (u->state == state) return *u;
      }
      absl::SleepFor(absl::Milliseconds(10));
    } while (absl::Now() < deadline);
    return absl::DeadlineExceededError(absl::StrCat(
        need_id, " never reached ", client::RequestStateName(state)));
  }

  // Half-closes the session and waits for the process to exit.
  absl::Status Close() {
    if (absl::Status s = Write("close"); !s.ok()) return s;
    absl::StatusOr<int> code = process_->WaitForExit(kWait);
    if (!code.ok()) return code.status();
    return *code == 0
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("flow_agent exited ", *code));
  }
  // Exits without closing the stream: a crashed agent.
  void Abort() {
    process_->Signal(SIGKILL);
    process_->WaitForExit(kWait).IgnoreError();
  }

 private:
  AgentProcess() = default;

  absl::Status Write(const std::string& line) {
    std::string data = line + "\n";
    if (write(fd_, data.data(), data.size()) !=
        static_cast<ssize_t>(data.size())) {
      return absl::InternalError("cannot write to flow_agent");
    }
    return absl::OkStatus();
  }

  // Stdout lines starting with `prefix`, without it.
  std::vector<std::string> Lines(absl::string_view prefix) const {
    std::vector<std::string> out;
    for (absl::string_view line :
         absl::StrSplit(process_->stdout_text(), '\n')) {
      if (absl::ConsumePrefix(&line, prefix)) out.emplace_back(line);
    }
    return out;
  }

  std::string fifo_;
  int fd_ = -1;
  std::unique_ptr<Subprocess> process_;
  std::map<std::string, size_t> consumed_;
};

class FlowTest : public BrokerTest {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  // Restarts the daemon with flags.
  void RestartWith(const std::vector<std::string>& flags) {
    client_.reset();
    absl::StatusOr<int> code = broker_->Stop();
    ASSERT_TRUE(code.ok()) << code.status();
    absl::Status started = broker_->Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
  }

  client::Options OptionsWith(const std::string& token) const {
    client::Options o;
    o.address = broker_->address();
    o.token = token;
    o.timeout = absl::Seconds(15);
    return o;
  }
  client::Options AgentOptions() const {
    return OptionsWith(broker_->agent_token());
  }
  client::Options ApproverOptions() const {
    return OptionsWith(broker_->approver_token());
  }

  std::unique_ptr<AgentProcess> Agent(const std::string& session_key) {
    return AgentProcess::Start(*broker_, tmp_.path(), session_key);
  }
  // An agent in this process (for what needs no approval).
  std::unique_ptr<client::AgentSession> LocalAgent(
      const std::string& session_key) {
    auto s = client::AgentSession::Connect(AgentOptions(), session_key);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<client::ApprovalClient> Approver() {
    auto a = client::ApprovalClient::Connect(ApproverOptions());
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  std::unique_ptr<client::Watcher> Watch(client::ApprovalClient& approver,
                                         EventLog& log) {
    auto w =
        approver.Watch([&log](const client::ApprovalEvent& e) { log.Add(e); },
                       [&log](const absl::Status& s) { log.End(s); });
    EXPECT_TRUE(w.ok()) << w.status();
    if (!w.ok()) return nullptr;
    EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kSnapshotDone, ""));
    return std::move(*w);
  }

  static client::CredentialNeeded Need(
      const std::string& need_id, const std::string& provider = "aws",
      const std::string& action = "deploy to AWS in us-east-1") {
    client::CredentialNeeded n;
    n.need_id = need_id;
    n.provider = provider;
    n.action = action;
    n.context["region"] = "us-east-1";
    return n;
  }

  void PutAws() {
    auto r = Put("aws", "",
                 {{"access_key_id", key_id_}, {"secret_access_key", secret_}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Sends the need and waits for its first update; returns the request id.
  template <typename AgentT>
  std::string Ask(
      AgentT& agent, const client::CredentialNeeded& need,
      client::RequestState expected = client::RequestState::kPendingApproval) {
    absl::Status sent = agent.SendNeed(need);
    EXPECT_TRUE(sent.ok()) << sent;
    auto u = agent.WaitForState(need.need_id, expected, kWait);
    EXPECT_TRUE(u.ok()) << u.status();
    return u.ok() ? u->request_id : "";
  }

  client::Approval ApproveReq(const std::string& request_id,
                              client::Scope scope = client::Scope::kOnce) {
    client::Approval r;
    r.request_id = request_id;
    r.scope = scope;
    return r;
  }

  // Whether the grant carries the AWS values put by PutAws (never printed).
  bool HasAwsValues(const std::optional<client::Grant>& g) const {
    if (!g.has_value()) return false;
    auto id = g->values.find("access_key_id");
    auto secret = g->values.find("secret_access_key");
    return id != g->values.end() && secret != g->values.end() &&
           id->second.Reveal() == key_id_ && secret->second.Reveal() == secret_;
  }

  std::multiset<std::string> AuditKinds() {
    std::multiset<std::string> kinds;
    client::AuditQuery query;
    while (true) {
      auto r = client_->ListAuditEvents(query);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      for (const auto& e : r->events) {
        kinds.insert(e.kind);
        EXPECT_FALSE(absl::StrContains(e.detail, secret_)) << "secret in audit";
      }
      if (r->next_page_token.empty()) break;
      query.page_token = r->next_page_token;
    }
    return kinds;
  }

  void ExpectAudit(const std::vector<std::string>& kinds) {
    std::multiset<std::string> have = AuditKinds();
    for (const auto& k : kinds)
      EXPECT_TRUE(have.count(k) > 0) << "no audit event " << k;
  }

  const std::string key_id_ = NewAwsKeyId();
  const std::string secret_ = NewAwsSecret();
};

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_FLOW_FIXTURE_H_
