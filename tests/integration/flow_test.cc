// The approval flow on the real credbrokerd, driven through the client
// library: an agent's AgentSession, approvers' ApprovalClient and
// CredentialClient. Secret values are compared, never printed.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/internal/convert.h"
#include "common/secret.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

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

TEST_F(FlowTest, ApproveWithNewValues) {
  auto agent = Agent("s-new-values");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  ASSERT_NE(approver, nullptr);
  std::string id = Ask(*agent, Need("n1"), client::RequestState::kNeedsInput);
  ASSERT_FALSE(id.empty());
  std::vector<client::NeedUpdate> updates = agent->Updates("n1");
  ASSERT_FALSE(updates.empty());
  EXPECT_FALSE(updates[0].missing_fields.empty());

  // Bad values: field violations, and the request stays pending.
  client::Approval bad = ApproveReq(id);
  bad.values["access_key_id"] = SecretBytes("not-a-key");
  bad.values["secret_access_key"] = SecretBytes(secret_);
  auto refused = approver->Approve(bad);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status()))
      << refused.status().code();
  EXPECT_TRUE(HasViolation(refused.status(), "access_key_id"))
      << ViolationFields(refused.status());
  EXPECT_FALSE(absl::StrContains(refused.status().ToString(), secret_));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, id);

  // The form names the fields; nothing is stored yet.
  client::FormQuery fr;
  fr.request_id = id;
  auto form = approver->GetForm(fr);
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->provider, "aws");
  EXPECT_EQ(form->request->request_id, id);
  bool secret_field = false;
  for (const auto& f : form->fields) {
    if (f.spec.name == "secret_access_key") {
      secret_field = f.spec.sensitive;
      EXPECT_FALSE(f.is_set);
    }
  }
  EXPECT_TRUE(secret_field);

  client::Approval good = ApproveReq(id);
  good.values["access_key_id"] = SecretBytes(key_id_);
  good.values["secret_access_key"] = SecretBytes(secret_);
  auto approved = approver->Approve(good);
  ASSERT_TRUE(approved.ok()) << approved.status();
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_EQ(granted->request_id, id);
  EXPECT_EQ(granted->grant->grant_id, approved->grant_id);
  EXPECT_EQ(granted->grant->scope, client::Scope::kOnce);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";
  EXPECT_GT(granted->grant->expires_at, absl::Now());

  // The values are stored now, and the form shows the secret only as set.
  auto stored = Get("aws", "");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version, 1);
  ExpectAudit({"request.created", "credential.put", "request.approved",
               "grant.created"});
}

TEST_F(FlowTest, ApproveStoredCredentialWithoutValues) {
  PutAws();
  auto agent = Agent("s-stored");
  auto approver = Approver();
  ASSERT_NE(agent, nullptr);
  ASSERT_NE(approver, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok()) << approved.status();
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";
  EXPECT_EQ(granted->grant->credential_version, 1);

  auto grants = client_->ListGrants(client::GrantQuery());
  ASSERT_TRUE(grants.ok()) << grants.status();
  ASSERT_EQ(grants->grants.size(), 1u);
  EXPECT_EQ(grants->grants[0].grant_id, approved->grant_id);
  EXPECT_EQ(grants->grants[0].request_id, id);

  // Released by the agent: ended, and a second release is refused.
  EXPECT_EQ(agent->ReleaseGrant(approved->grant_id), "OK");
  std::string again = agent->ReleaseGrant(approved->grant_id);
  EXPECT_TRUE(absl::StartsWith(again, "FAILED_PRECONDITION")) << again;
  ExpectAudit({"request.created", "request.approved", "grant.created",
               "grant.released"});
  EXPECT_TRUE(agent->Close().ok());
}

TEST_F(FlowTest, DenyTellsTheAgentWhy) {
  PutAws();
  auto agent = Agent("s-deny");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(approver->Deny(id, "use the staging account").ok());
  auto denied = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->state, client::RequestState::kDenied);
  EXPECT_EQ(denied->reason, "use the staging account");
  EXPECT_FALSE(denied->grant.has_value());
  // The session's callback saw both updates, in order.
  std::vector<client::NeedUpdate> seen = agent->Updates("n1");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].state, client::RequestState::kPendingApproval);
  EXPECT_EQ(seen[1].state, client::RequestState::kDenied);
  // A later approval names the decision.
  auto late = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << late.status();
  EXPECT_TRUE(absl::StrContains(late.status().message(), "denied"))
      << late.status();
  ExpectAudit({"request.created", "request.denied"});
}

// What the person reads is what the agent sent: an action or context that
// could redraw, hide or reorder the approval prompt is refused, that need
// alone, and the session goes on.
TEST_F(FlowTest, AMisleadingNeedIsRejectedAloneAndTheSessionGoesOn) {
  PutAws();
  auto agent = LocalAgent("s-text");
  ASSERT_NE(agent, nullptr);
  client::CredentialNeeded bad = Need("n-bad");
  bad.action = "read logs\x1b[1A\x1b[2K\rdeploy to staging";
  bad.context["region"] = "us-east-1\xE2\x80\xAE";
  ASSERT_TRUE(agent->SendNeed(bad).ok());
  auto rejected = agent->WaitFor("n-bad", kWait);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state, client::RequestState::kRejected);
  EXPECT_EQ(rejected->error_code, "INVALID_ARGUMENT");
  std::vector<std::string> fields;
  for (const client::Finding& f : rejected->field_errors)
    fields.push_back(f.field);
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("need.action",
                                                      "need.context.region"));
  EXPECT_TRUE(absl::StrContains(rejected->field_errors[0].message, "U+001B"))
      << rejected->field_errors[0].message;

  client::CredentialNeeded blank = Need("n-blank");
  blank.action = " \t ";
  ASSERT_TRUE(agent->SendNeed(blank).ok());
  auto refused = agent->WaitFor("n-blank", kWait);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->state, client::RequestState::kRejected);

  // The same stream still carries needs; nothing bad became a request.
  ASSERT_TRUE(agent->SendNeed(Need("n-good")).ok());
  auto pending = agent->WaitForState(
      "n-good", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_FALSE(agent->EndStatus().has_value());
  auto approver = Approver();
  auto listed = approver->ListPending();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].need.need_id, "n-good");
}

TEST_F(FlowTest, PendingRequestExpires) {
  RestartWith({"--pending_timeout=2s"});
  PutAws();
  auto agent = Agent("s-expire");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  auto expired = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->state, client::RequestState::kExpired);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kExpired, id));
  auto late = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << late.status();
  ExpectAudit({"request.created", "request.expired"});
}

TEST_F(FlowTest, CancelledAfterGracePeriod) {
  RestartWith({"--grace_period=1s"});
  PutAws();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  auto agent = Agent("s-gone");
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_FALSE(id.empty());
  agent->Abort();  // The agent crashes.
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kAgentDisconnected, id));
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kCancelled, id));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_TRUE(pending->empty());
  ExpectAudit({"request.created", "request.cancelled"});
}

TEST_F(FlowTest, ReattachWithinGracePeriod) {
  RestartWith({"--grace_period=30s"});
  PutAws();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  auto first = Agent("s-reattach");
  std::string decided_id = Ask(*first, Need("n1"));
  std::string open_id = Ask(*first, Need("n2"));
  ASSERT_FALSE(decided_id.empty());
  ASSERT_FALSE(open_id.empty());
  ASSERT_TRUE(first->Close().ok());
  EXPECT_TRUE(
      log.WaitFor(client::ApprovalEvent::Kind::kAgentDisconnected, open_id));

  // Decided while the agent is away.
  ASSERT_TRUE(approver->Approve(ApproveReq(decided_id)).ok());

  auto second = Agent("s-reattach");
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->SendNeed(Need("n1")).ok());
  auto granted = second->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_EQ(granted->request_id, decided_id);
  EXPECT_TRUE(HasAwsValues(granted->grant)) << "grant values differ";

  ASSERT_TRUE(second->SendNeed(Need("n2")).ok());
  auto still =
      second->WaitForState("n2", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->request_id, open_id);  // Nothing asked twice.
  EXPECT_TRUE(
      log.WaitFor(client::ApprovalEvent::Kind::kAgentReconnected, open_id));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, open_id);
  EXPECT_TRUE((*pending)[0].agent_connected);

  ASSERT_TRUE(approver->Deny(open_id, "no").ok());
  auto denied = second->WaitFor("n2", kWait);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->state, client::RequestState::kDenied);
}

TEST_F(FlowTest, TwoApproversRaceAndTheFirstDecisionWins) {
  PutAws();
  auto agent = Agent("s-race");
  auto a = Approver();
  auto b = Approver();
  for (int round = 0; round < 5; ++round) {
    std::string need_id = absl::StrCat("n", round);
    std::string id = Ask(*agent, Need(need_id));
    ASSERT_FALSE(id.empty());
    absl::Notification go;
    absl::Status approve_status, deny_status;
    std::thread t1([&] {
      go.WaitForNotification();
      approve_status = a->Approve(ApproveReq(id)).status();
    });
    std::thread t2([&] {
      go.WaitForNotification();
      deny_status = b->Deny(id, "raced");
    });
    go.Notify();
    t1.join();
    t2.join();
    EXPECT_NE(approve_status.ok(), deny_status.ok())
        << approve_status << " / " << deny_status;
    const absl::Status& loser =
        approve_status.ok() ? deny_status : approve_status;
    EXPECT_TRUE(absl::IsFailedPrecondition(loser)) << loser;
    EXPECT_TRUE(absl::StrContains(loser.message(),
                                  approve_status.ok() ? "approved" : "denied"))
        << loser;
    auto decided = agent->WaitFor(need_id, kWait);
    ASSERT_TRUE(decided.ok()) << decided.status();
    EXPECT_EQ(decided->state, approve_status.ok()
                                  ? client::RequestState::kGranted
                                  : client::RequestState::kDenied);
  }
}

TEST_F(FlowTest, SessionScopeGrantsLaterNeedsWithoutAsking) {
  PutAws();
  auto agent = Agent("s-session");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_TRUE(approver->Approve(ApproveReq(id, client::Scope::kSession)).ok());
  auto first = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->grant->scope, client::Scope::kSession);
  // The watcher hears of the decision asynchronously: count from after it.
  ASSERT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kResolved, id));
  size_t events_before = log.Count();

  ASSERT_TRUE(agent->SendNeed(Need("n2", "aws", "create a VPC")).ok());
  auto second = agent->WaitFor("n2", kWait);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state, client::RequestState::kGranted);
  EXPECT_EQ(second->grant->scope, client::Scope::kSession);
  EXPECT_TRUE(HasAwsValues(second->grant)) << "grant values differ";
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  EXPECT_EQ(log.Count(), events_before);  // No approver was asked.

  // Another session is not covered.
  auto other = Agent("s-session-other");
  Ask(*other, Need("n1"));
}

TEST_F(FlowTest, StandingApprovalGrantsUntilRevoked) {
  PutAws();
  auto approver = Approver();
  auto agent = Agent("s-standing-1");
  std::string id = Ask(*agent, Need("n1", "aws", "deploy to AWS in us-east-1"));
  client::Approval req = ApproveReq(id, client::Scope::kStanding);
  req.action_pattern = "deploy *";
  req.ttl = absl::Seconds(3600);
  auto approved = approver->Approve(req);
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_FALSE(approved->standing_approval_id.empty());
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());

  auto fresh = Agent("s-standing-2");
  ASSERT_TRUE(fresh->SendNeed(Need("n1", "aws", "deploy to eu-west-1")).ok());
  auto auto_granted = fresh->WaitFor("n1", kWait);
  ASSERT_TRUE(auto_granted.ok()) << auto_granted.status();
  EXPECT_EQ(auto_granted->state, client::RequestState::kGranted);
  EXPECT_EQ(auto_granted->grant->scope, client::Scope::kStanding);

  // Outside the pattern: asks.
  Ask(*fresh, Need("n2", "aws", "delete the production database"));

  auto listed = client_->ListStandingApprovals(/*include_ended=*/false);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, approved->standing_approval_id);
  EXPECT_EQ((*listed)[0].action_pattern, "deploy *");

  ASSERT_TRUE(
      client_->RevokeStandingApproval(approved->standing_approval_id).ok());
  auto after = Agent("s-standing-3");
  Ask(*after, Need("n1", "aws", "deploy to eu-west-1"));
  ExpectAudit({"standing.created", "grant.created", "standing.revoked"});
}

TEST_F(FlowTest, StandingApprovalLongerThan90DaysIsRefused) {
  PutAws();
  auto approver = Approver();
  auto agent = Agent("s-standing-long");
  std::string id = Ask(*agent, Need("n1"));
  client::Approval req = ApproveReq(id, client::Scope::kStanding);
  req.ttl = absl::Hours(91 * 24);
  auto refused = approver->Approve(req);
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_TRUE(HasViolation(refused.status(), "ttl"))
      << ViolationFields(refused.status());
}

TEST_F(FlowTest, PendingRequestsSurviveARestart) {
  PutAws();
  std::string id;
  {
    auto agent = Agent("s-restart");
    id = Ask(*agent, Need("n1"));
    ASSERT_FALSE(id.empty());
    agent->Close().IgnoreError();
  }
  Restart();
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kSnapshot, id));
  // The agent comes back within the grace period and is granted.
  auto agent = Agent("s-restart");
  ASSERT_TRUE(agent->SendNeed(Need("n1")).ok());
  auto again =
      agent->WaitForState("n1", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->request_id, id);
  ASSERT_TRUE(approver->Approve(ApproveReq(id)).ok());
  auto granted = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  watcher.reset();
}

TEST_F(FlowTest, RoleMatrix) {
  // The agent token on the approver's services.
  auto as_agent = client::ApprovalClient::Connect(AgentOptions());
  ASSERT_TRUE(as_agent.ok());
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->ListPending().status()))
      << (*as_agent)->ListPending().status();
  client::FormQuery fr;
  fr.provider = "aws";
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->GetForm(fr).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      (*as_agent)->Approve(ApproveReq("r-x")).status()));
  EXPECT_TRUE(absl::IsPermissionDenied((*as_agent)->Deny("r-x", "")));
  auto agent_credentials = broker_->ClientWithToken(broker_->agent_token());
  ASSERT_NE(agent_credentials, nullptr);
  EXPECT_TRUE(
      absl::IsPermissionDenied(agent_credentials->ListProviders().status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      agent_credentials->ListGrants(client::GrantQuery()).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      agent_credentials->ListAuditEvents(client::AuditQuery()).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(agent_credentials->RevokeGrant("", "")));

  // The approver token on the agent's service.
  auto rc_status = client::RequestCredential(ApproverOptions(), Need("n1"), "",
                                             absl::Seconds(10))
                       .status();
  EXPECT_TRUE(absl::IsPermissionDenied(rc_status)) << rc_status;
  auto session =
      client::AgentSession::Connect(ApproverOptions(), "s-wrong-role");
  if (session.ok()) {
    (*session)->SendNeed(Need("n1")).IgnoreError();
    auto u = (*session)->WaitFor("n1", kWait);
    EXPECT_FALSE(u.ok());
    auto end = (*session)->EndStatus();
    ASSERT_TRUE(end.has_value());
    EXPECT_TRUE(absl::IsPermissionDenied(*end)) << *end;
  } else {
    EXPECT_TRUE(absl::IsPermissionDenied(session.status())) << session.status();
  }
  // No token at all.
  auto anonymous = client::ApprovalClient::Connect(OptionsWith(""));
  ASSERT_TRUE(anonymous.ok());
  EXPECT_TRUE(absl::IsUnauthenticated((*anonymous)->ListPending().status()));
  // Refused calls are audited.
  std::multiset<std::string> kinds = AuditKinds();
  EXPECT_FALSE(kinds.empty());
}

TEST_F(FlowTest, RevokeGrantReachesTheAgent) {
  PutAws();
  auto agent = Agent("s-revoke");
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok());
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());
  ASSERT_TRUE(client_->RevokeGrant(approved->grant_id, "key rotated").ok());
  auto revoked = agent->WaitFor("n1", kWait);  // The next decided update.
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->state, client::RequestState::kRevoked);
  EXPECT_TRUE(absl::StrContains(revoked->reason, "key rotated"))
      << revoked->reason;
  EXPECT_FALSE(revoked->grant.has_value());
  absl::Status twice = client_->RevokeGrant(approved->grant_id, "key rotated");
  EXPECT_TRUE(absl::IsFailedPrecondition(twice)) << twice;
  client::GrantQuery lg;
  lg.include_ended = true;
  auto grants = client_->ListGrants(lg);
  ASSERT_TRUE(grants.ok());
  ASSERT_EQ(grants->grants.size(), 1u);
  EXPECT_TRUE(grants->grants[0].revoked);
  // Re-sending the need never hands the revoked grant out again.
  ASSERT_TRUE(agent->SendNeed(Need("n1")).ok());
  auto resent = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_NE(resent->state, client::RequestState::kGranted);
  ExpectAudit({"grant.revoked"});
}

TEST_F(FlowTest, AgentCancelsANeed) {
  PutAws();
  auto agent = Agent("s-cancel");
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  std::string id = Ask(*agent, Need("n1"));
  ASSERT_TRUE(agent->Cancel("n1").ok());
  auto cancelled = agent->WaitFor("n1", kWait);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, client::RequestState::kCancelled);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kCancelled, id));
}

// A watcher that never reads is ended with RESOURCE_EXHAUSTED; another
// watcher keeps receiving every event.
TEST_F(FlowTest, SlowWatcherIsEndedOthersKeepReceiving) {
  auto approver = Approver();
  EventLog fast_log;
  auto fast = Watch(*approver, fast_log);
  absl::Notification release;
  std::atomic<int> slow_events{0};
  EventLog slow_log;
  auto slow = approver->Watch(
      [&](const client::ApprovalEvent&) {
        if (slow_events.fetch_add(1) == 0) {
          // Stops reading after its first event, until the test ends.
          release.WaitForNotificationWithTimeout(absl::Seconds(60));
        }
      },
      [&](const absl::Status& s) { slow_log.End(s); });
  ASSERT_TRUE(slow.ok());
  // Each need is an ADDED and then a CANCELLED event of about 30 KB (a
  // large context): 10 sessions x 60 needs x 2 = 1200 events, 36 MB, past
  // the stream's queue of 256 and the transport's flow-control windows.
  constexpr int kSessions = 10, kNeeds = 60;
  std::vector<std::unique_ptr<client::AgentSession>> agents;
  for (int s = 0; s < kSessions; ++s) {
    agents.push_back(LocalAgent(absl::StrCat("s-flood-", s)));
    ASSERT_NE(agents.back(), nullptr);
    for (int n = 0; n < kNeeds; ++n) {
      client::CredentialNeeded need =
          Need(absl::StrCat("n", n), "github", "deploy");
      for (int k = 0; k < 30; ++k) {
        need.context[absl::StrCat("k", k)] = RandomString(1000);
      }
      ASSERT_TRUE(agents.back()->SendNeed(need).ok());
    }
  }
  for (auto& a : agents) {
    for (int n = 0; n < kNeeds; ++n) {
      ASSERT_TRUE(a->WaitForState(absl::StrCat("n", n),
                                  client::RequestState::kNeedsInput, kWait)
                      .ok());
      ASSERT_TRUE(a->Cancel(absl::StrCat("n", n)).ok());
    }
  }
  for (auto& a : agents) {
    ASSERT_TRUE(a->WaitFor(absl::StrCat("n", kNeeds - 1), kWait).ok());
  }
  // The broker dropped the slow watcher's queue when it overflowed; the
  // status follows the messages already in the transport, so the watcher
  // sees it once it reads again.
  release.Notify();
  std::optional<absl::Status> slow_end = (*slow)->WaitForEnd(absl::Seconds(20));
  ASSERT_TRUE(slow_end.has_value()) << "the slow watcher was not ended";
  EXPECT_TRUE(absl::IsResourceExhausted(*slow_end)) << *slow_end;
  EXPECT_LT(slow_events.load(), 2 * kSessions * kNeeds);
  // The fast watcher saw every ADDED and CANCELLED.
  int added = 0, cancelled = 0;
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    added = cancelled = 0;
    for (const auto& e : fast_log.Events()) {
      added += e.kind == client::ApprovalEvent::Kind::kAdded;
      cancelled += e.kind == client::ApprovalEvent::Kind::kCancelled;
    }
    if (cancelled == kSessions * kNeeds) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(added, kSessions * kNeeds);
  EXPECT_EQ(cancelled, kSessions * kNeeds);
  for (auto& a : agents) a->Close().IgnoreError();
}

// The approver sees who asked, as the kernel says: the agent's pid and
// executable, not anything the agent claims.
TEST_F(FlowTest, ApproversSeeTheAgentProcessFromTheKernel) {
  PutAws();
  auto agent = Agent("s-peer");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto pending = approver->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  const std::string& peer = (*pending)[0].agent_peer;
  EXPECT_TRUE(absl::StrContains(peer, absl::StrCat("pid ", agent->pid())))
      << peer;
  EXPECT_TRUE(absl::StrContains(peer, "flow_agent")) << peer;
  // Audit events carry the same identity.
  client::AuditQuery query;
  query.kind = "request.created";
  auto events = client_->ListAuditEvents(query);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_TRUE(absl::StrContains(events->events[0].peer,
                                absl::StrCat("pid ", agent->pid())));
}

// An agent that can run commands must not approve its own request: the
// agent's process (here: this test process) and anything it starts are
// refused, and the refusal is audited.
TEST_F(FlowTest, TheRequestingProcessCannotApproveItself) {
  PutAws();
  auto agent = LocalAgent("s-self");
  ASSERT_NE(agent, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  auto approver = Approver();
  auto approved = approver->Approve(ApproveReq(id));
  EXPECT_TRUE(absl::IsPermissionDenied(approved.status())) << approved.status();
  EXPECT_TRUE(
      absl::StrContains(approved.status().message(), "requesting agent"));
  EXPECT_TRUE(absl::IsPermissionDenied(approver->Deny(id, "no")));
  // credctl started by the agent's process is a descendant: refused too.
  Subprocess::Options o;
  o.argv = {CredctlPath(), "--data_dir", broker_->data_dir(), "approve", id};
  o.stdin_path = "/dev/null";
  auto credctl = Subprocess::Spawn(o);
  ASSERT_TRUE(credctl.ok()) << credctl.status();
  absl::StatusOr<int> code = (*credctl)->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(
      absl::StrContains((*credctl)->stderr_text(), "PERMISSION_DENIED"));
  auto still = approver->ListPending();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->size(), 1u);
  ExpectAudit({"request.approve_refused", "request.deny_refused"});
}

// A grant is bound to the process it was released to.
TEST_F(FlowTest, OnlyTheReceivingProcessCanReleaseItsGrant) {
  PutAws();
  auto agent = Agent("s-bound");
  ASSERT_NE(agent, nullptr);
  auto approver = Approver();
  std::string id = Ask(*agent, Need("n1"));
  auto approved = approver->Approve(ApproveReq(id));
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_TRUE(agent->WaitFor("n1", kWait).ok());
  // This process holds the agent token too, but is not the grant's holder.
  auto other = LocalAgent("s-thief");
  ASSERT_NE(other, nullptr);
  absl::Status stolen = other->ReleaseGrant(approved->grant_id);
  EXPECT_TRUE(absl::IsPermissionDenied(stolen)) << stolen;
  EXPECT_TRUE(absl::StrContains(agent->ReleaseGrant(approved->grant_id), "OK"));
}

// Another user's process is refused at the door, even when the socket's mode
// would let it connect.
TEST_F(FlowTest, ConnectionsFromAnotherUserAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  // A directory another user can traverse (the test's own is 0700).
  char tmpl[] = "/tmp/cbopen.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string open_dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::system(("rm -rf " + dir).c_str()); }
  } cleanup{open_dir};
  ASSERT_EQ(chmod(open_dir.c_str(), 0755), 0);
  std::string sock = open_dir + "/b.sock";
  RestartWith({"--listen", absl::StrCat("unix:", broker_->data_dir(),
                                        "/broker.sock,unix:", sock)});
  ASSERT_EQ(chmod(sock.c_str(), 0666), 0);
  std::string token = open_dir + "/approver.token";
  { std::ofstream(token) << broker_->approver_token() << "\n"; }
  ASSERT_EQ(chmod(token.c_str(), 0644), 0);
  Subprocess::Options o;
  o.argv = {"/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            CredctlPath(),
            "--broker",
            "unix:" + sock,
            "--token_file",
            token,
            "--timeout",
            "5",
            "list"};
  o.stdin_path = "/dev/null";
  auto credctl = Subprocess::Spawn(o);
  ASSERT_TRUE(credctl.ok()) << credctl.status();
  absl::StatusOr<int> code = (*credctl)->WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(absl::StrContains((*credctl)->stderr_text(), "UNAVAILABLE"))
      << (*credctl)->stderr_text();
  absl::Time deadline = absl::Now() + kWait;
  while (!absl::StrContains(broker_->stderr_text(),
                            "refused a connection from uid 65534") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "refused a connection from uid 65534"))
      << broker_->stderr_text();
  // The owner still gets in on the same socket.
  client::Options own = ApproverOptions();
  own.address = "unix:" + sock;
  auto c = client::CredentialClient::Connect(own);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->ListProviders().ok());
}

// SIGTERM ends every open stream with UNAVAILABLE before the broker exits 0.
TEST_F(FlowTest, ShutdownEndsOpenStreamsWithUnavailable) {
  PutAws();
  auto agent = LocalAgent("s-shutdown");
  ASSERT_NE(agent, nullptr);
  std::string id = Ask(*agent, Need("n1"));
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  ASSERT_NE(watcher, nullptr);
  client_.reset();
  absl::StatusOr<int> code = broker_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  std::optional<absl::Status> watch_end = watcher->WaitForEnd(kWait);
  ASSERT_TRUE(watch_end.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*watch_end)) << *watch_end;
  absl::Time deadline = absl::Now() + kWait;
  while (!agent->EndStatus().has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(agent->EndStatus().has_value());
  EXPECT_TRUE(absl::IsUnavailable(*agent->EndStatus())) << *agent->EndStatus();
  // Channels to the stopped broker go first: gRPC shares their (dead)
  // connection with new channels to the same address.
  watcher.reset();
  approver.reset();
  agent.reset();
  // The pending need survives for the next start.
  ASSERT_TRUE(broker_->Start().ok());
  client_ = broker_->Client();
  auto again = Approver();
  ASSERT_NE(again, nullptr);
  auto pending = again->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, id);
}

// A snapshot larger than a stream's queue bound is delivered whole: only
// live events a slow reader lets pile up count toward the bound.
TEST_F(FlowTest, AWatcherGetsASnapshotLargerThanTheQueueBound) {
  constexpr int kSessions = 5;
  constexpr int kNeeds = 60;  // 300 pending, more than the bound of 256.
  std::vector<std::unique_ptr<client::AgentSession>> agents;
  for (int s = 0; s < kSessions; ++s) {
    agents.push_back(LocalAgent(absl::StrCat("s-big-", s)));
    ASSERT_NE(agents.back(), nullptr);
    for (int n = 0; n < kNeeds; ++n) {
      Ask(*agents.back(), Need(absl::StrCat("n", n)),
          client::RequestState::kNeedsInput);
    }
  }
  auto approver = Approver();
  EventLog log;
  auto watcher = Watch(*approver, log);
  ASSERT_NE(watcher, nullptr);
  int snapshot = 0;
  for (const auto& e : log.Events())
    snapshot += e.kind == client::ApprovalEvent::Kind::kSnapshot;
  EXPECT_EQ(snapshot, kSessions * kNeeds);
  // Still live afterwards.
  auto extra = LocalAgent("s-big-extra");
  ASSERT_NE(extra, nullptr);
  std::string id = Ask(*extra, Need("late"), client::RequestState::kNeedsInput);
  EXPECT_TRUE(log.WaitFor(client::ApprovalEvent::Kind::kAdded, id));
  EXPECT_FALSE(watcher->WaitForEnd(absl::Milliseconds(100)).has_value());
  for (auto& a : agents) a->Close().IgnoreError();
  extra->Close().IgnoreError();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
