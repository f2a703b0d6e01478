// Reliability of the real credbrokerd: SIGKILL at random moments under
// writes and approvals, a soak of hundreds of agent sessions with several
// approvers, a full disk and a data directory turned read-only under the
// daemon. Each test is bounded in time and talks only to a Unix socket in a
// temporary directory. The daemon runs with --allow_self_approval because the
// agent and the scripted approvers share the test process. (The slow
// watcher is FlowTest.SlowWatcherIsEndedOthersKeepReceiving.)
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace credbroker {
namespace testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

client::Options OptionsFor(const BrokerProcess& broker,
                           const std::string& token) {
  client::Options o;
  o.address = broker.address();
  o.token = token;
  o.timeout = absl::Seconds(10);
  return o;
}

client::CredentialInput AwsPut(const std::string& profile) {
  client::CredentialInput r;
  r.provider = "aws";
  r.profile = profile;
  r.values["access_key_id"] = SecretBytes(NewAwsKeyId());
  r.values["secret_access_key"] = SecretBytes(NewAwsSecret());
  return r;
}

client::CredentialNeeded AwsNeed(const std::string& need_id) {
  client::CredentialNeeded n;
  n.need_id = need_id;
  n.provider = "aws";
  n.action = "deploy to AWS in us-east-1";
  return n;
}

// PRAGMA integrity_check on a read-only connection: "ok" or what it found.
std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    std::string err = db != nullptr ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return err;
  }
  std::string result;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    result = sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      absl::StrAppend(
          &result, result.empty() ? "" : "; ",
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    }
    if (result.empty()) result = sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

int OpenFds(pid_t pid) {
  int n = 0;
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      v = absl::StripAsciiWhitespace(v);
      absl::ConsumeSuffix(&v, " kB");
      int64_t kb = -1;
      return absl::SimpleAtoi(v, &kb) ? kb : -1;
    }
  }
  return -1;
}

bool IsTerminal(client::RequestState s) {
  return s == client::RequestState::kGranted ||
         s == client::RequestState::kDenied ||
         s == client::RequestState::kExpired ||
         s == client::RequestState::kCancelled;
}

// ---------------------------------------------------------------------------
// Crash.

// What the clients were told, and so what must survive a SIGKILL.
struct Acknowledged {
  absl::Mutex mu;
  std::map<std::string, std::string> fingerprints
      ABSL_GUARDED_BY(mu);                            // profile ->
  std::set<std::string> pending ABSL_GUARDED_BY(mu);  // request ids
  std::map<std::string, std::string> granted
      ABSL_GUARDED_BY(mu);  // request -> grant
  std::set<std::string> denied ABSL_GUARDED_BY(mu);
};

void VerifyAfterRestart(const BrokerProcess& broker, Acknowledged& ack,
                        int round) {
  SCOPED_TRACE(absl::StrCat("after restart ", round));
  auto client = broker.Client();
  ASSERT_NE(client, nullptr);
  absl::MutexLock lock(&ack.mu);
  for (const auto& [profile, fingerprint] : ack.fingerprints) {
    auto got = client->GetCredential("aws", profile);  // Decrypts the values.
    ASSERT_TRUE(got.ok()) << profile << ": " << got.status();
    EXPECT_EQ(got->fingerprint, fingerprint) << profile;
  }
  auto approver = client::ApprovalClient::Connect(
      OptionsFor(broker, broker.approver_token()));
  ASSERT_TRUE(approver.ok()) << approver.status();
  auto pending = (*approver)->ListPending();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::set<std::string> now_pending;
  for (const client::ApprovalRequest& r : *pending)
    now_pending.insert(r.request_id);
  for (const std::string& id : ack.pending) {
    EXPECT_TRUE(now_pending.count(id))
        << "pending request " << id << " was lost";
  }
  std::set<std::string> grants;
  client::GrantQuery lg;
  lg.include_ended = true;
  lg.page_size = 1000;
  while (true) {
    auto r = client->ListGrants(lg);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const client::GrantInfo& g : r->grants) grants.insert(g.grant_id);
    if (r->next_page_token.empty()) break;
    lg.page_token = r->next_page_token;
  }
  for (const auto& [request, grant] : ack.granted) {
    EXPECT_FALSE(now_pending.count(request))
        << "granted " << request << " is pending again";
    EXPECT_TRUE(grants.count(grant)) << "grant " << grant << " was lost";
  }
  for (const std::string& id : ack.denied) {
    EXPECT_FALSE(now_pending.count(id))
        << "denied " << id << " is pending again";
    client::Approval again;
    again.request_id = id;
    again.scope = client::Scope::kOnce;
    auto r = (*approver)->Approve(again);
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status()))
        << id << ": " << r.status();
  }
}

TEST(CrashTest, SigkillDuringWritesAndApprovalsLosesNothingAcknowledged) {
  TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  BrokerProcess broker(tmp.path() + "/data", tmp.path());
  const std::vector<std::string> flags = {
      "--allow_self_approval", "--grace_period=1h", "--pending_timeout=1h"};
  const unsigned seed = static_cast<unsigned>(absl::ToUnixMicros(absl::Now()));
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  Acknowledged ack;
  constexpr int kRounds = 22;
  for (int round = 0; round < kRounds; ++round) {
    absl::Status started = broker.Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    VerifyAfterRestart(broker, ack, round);
    if (::testing::Test::HasFatalFailure()) return;
    if (round == 0) {
      auto r = broker.Client()->PutCredential(AwsPut("default"));
      ASSERT_TRUE(r.ok()) << r.status();
      absl::MutexLock lock(&ack.mu);
      ack.fingerprints["default"] = r->credential.fingerprint;
    }
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      auto client = broker.Client();
      for (int i = 0; !stop.load(); ++i) {
        const std::string profile = absl::StrCat("r", round, "-", i);
        auto r = client->PutCredential(AwsPut(profile));
        if (!r.ok()) break;
        absl::MutexLock lock(&ack.mu);
        ack.fingerprints[profile] = r->credential.fingerprint;
      }
    });
    std::thread flow([&] {
      auto agent = client::AgentSession::Connect(
          OptionsFor(broker, broker.agent_token()),
          absl::StrCat("crash-", round));
      auto approver = client::ApprovalClient::Connect(
          OptionsFor(broker, broker.approver_token()));
      if (!agent.ok() || !approver.ok()) return;
      for (int i = 0; !stop.load(); ++i) {
        const std::string need_id = absl::StrCat("n", i);
        if (!(*agent)->SendNeed(AwsNeed(need_id)).ok()) break;
        auto u = (*agent)->WaitForState(
            need_id, client::RequestState::kPendingApproval, absl::Seconds(3));
        if (!u.ok()) break;
        const std::string id = u->request_id;
        {
          absl::MutexLock lock(&ack.mu);
          ack.pending.insert(id);
        }
        // Every 8th stays pending (few enough that ListPending's snapshot,
        // which the broker ends past 256 queued events, stays small).
        if (i % 8 == 0) continue;
        {
          // In flight: the decision is unknown until acknowledged.
          absl::MutexLock lock(&ack.mu);
          ack.pending.erase(id);
        }
        if (i % 2 == 1) {
          client::Approval req;
          req.request_id = id;
          req.scope = client::Scope::kOnce;
          auto r = (*approver)->Approve(req);
          if (!r.ok()) break;
          absl::MutexLock lock(&ack.mu);
          ack.granted[id] = r->grant_id;
        } else {
          if (!(*approver)->Deny(id, "crash test").ok()) break;
          absl::MutexLock lock(&ack.mu);
          ack.denied.insert(id);
        }
      }
      (*agent)->Abort();
    });
    absl::SleepFor(
        absl::Milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    broker.Kill();
    stop.store(true);
    writer.join();
    flow.join();
    EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok")
        << "round " << round;
  }
  {
    absl::MutexLock lock(&ack.mu);
    // The run did something worth checking.
    EXPECT_GT(ack.fingerprints.size(), 2u * kRounds / 3);
    EXPECT_GT(ack.granted.size() + ack.denied.size(), 0u);
    std::cout << "crash test: " << kRounds << " SIGKILLs; "
              << ack.fingerprints.size() << " acknowledged writes, "
              << ack.pending.size() << " pending, " << ack.granted.size()
              << " granted, " << ack.denied.size() << " denied\n";
  }
  ASSERT_TRUE(broker.Start(flags).ok());
  VerifyAfterRestart(broker, ack, kRounds);
  auto code = broker.Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok");
}

// ---------------------------------------------------------------------------
// Soak.

TEST(SoakTest, HundredsOfSessionsAndSeveralApprovers) {
  TempDir tmp;
  ASSERT_TRUE(tmp.ok());
  BrokerProcess broker(tmp.path() + "/data", tmp.path());
  ASSERT_TRUE(broker
                  .Start({"--allow_self_approval", "--pending_timeout=3s",
                          "--grace_period=2s"})
                  .ok());
  ASSERT_TRUE(broker.Client()->PutCredential(AwsPut("default")).ok());
  constexpr int kSessions = 200, kApprovers = 4, kDrivers = 4;
  const absl::Duration kRun = absl::Seconds(10);

  std::vector<std::unique_ptr<client::AgentSession>> sessions;
  for (int i = 0; i < kSessions; ++i) {
    auto s = client::AgentSession::Connect(
        OptionsFor(broker, broker.agent_token()), absl::StrCat("soak-", i));
    ASSERT_TRUE(s.ok()) << s.status();
    sessions.push_back(std::move(*s));
  }
  const int fds_start = OpenFds(broker.pid());
  const int64_t rss_start = RssKb(broker.pid());

  // Decisions acknowledged to the approvers, per request id.
  absl::Mutex mu;
  std::map<std::string, int> decisions ABSL_GUARDED_BY(mu);
  std::vector<std::string> unexpected ABSL_GUARDED_BY(mu);
  std::atomic<bool> stop_approvers{false};
  std::vector<std::thread> approvers;
  for (int a = 0; a < kApprovers; ++a) {
    approvers.emplace_back([&, a] {
      auto approver = client::ApprovalClient::Connect(
          OptionsFor(broker, broker.approver_token()));
      if (!approver.ok()) return;
      absl::Mutex qmu;
      std::deque<std::string> queue ABSL_GUARDED_BY(qmu);
      auto watcher = (*approver)->Watch([&](const client::ApprovalEvent& e) {
        if (e.kind != client::ApprovalEvent::Kind::kAdded) return;
        absl::MutexLock lock(&qmu);
        queue.push_back(e.request->request_id);
      });
      if (!watcher.ok()) return;
      std::mt19937 rng(a);
      while (!stop_approvers.load()) {
        std::string id;
        {
          absl::MutexLock lock(&qmu);
          auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(qmu) {
            return !queue.empty();
          };
          if (!qmu.AwaitWithTimeout(absl::Condition(&ready),
                                    absl::Milliseconds(100)))
            continue;
          id = queue.front();
          queue.pop_front();
        }
        const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
        absl::Status s;
        if (roll < 45) {
          client::Approval req;
          req.request_id = id;
          req.scope = client::Scope::kOnce;
          s = (*approver)->Approve(req).status();
        } else if (roll < 80) {
          s = (*approver)->Deny(id, "soak");
        } else {
          continue;  // Left to expire (or to another approver).
        }
        absl::MutexLock lock(&mu);
        if (s.ok()) {
          ++decisions[id];
        } else if (!absl::IsFailedPrecondition(s)) {
          unexpected.push_back(s.ToString());
        }
      }
      (*watcher)->Cancel();
    });
  }

  // Agents: needs on random sessions; some cancelled.
  std::vector<std::vector<std::string>> needs(kSessions);
  absl::Mutex needs_mu;
  std::atomic<int> sent{0};
  std::vector<std::thread> drivers;
  const absl::Time end = absl::Now() + kRun;
  for (int d = 0; d < kDrivers; ++d) {
    drivers.emplace_back([&, d] {
      std::mt19937 rng(100 + d);
      for (int i = 0; absl::Now() < end; ++i) {
        const int s = std::uniform_int_distribution<int>(0, kSessions - 1)(rng);
        const std::string need_id = absl::StrCat("d", d, "-", i);
        if (!sessions[s]->SendNeed(AwsNeed(need_id)).ok()) continue;
        {
          absl::MutexLock lock(&needs_mu);
          needs[s].push_back(need_id);
        }
        sent++;
        if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
          sessions[s]->Cancel(need_id).IgnoreError();
        }
        absl::SleepFor(absl::Milliseconds(15));
      }
    });
  }
  int fds_max = fds_start;
  int64_t rss_max = rss_start;
  while (absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(250));
    fds_max = std::max(fds_max, OpenFds(broker.pid()));
    rss_max = std::max(rss_max, RssKb(broker.pid()));
  }
  for (auto& t : drivers) t.join();

  // Every need ends (expiry is 3 s), each in exactly one terminal state.
  std::set<std::string> grant_ids;
  int granted = 0, denied = 0, expired = 0, cancelled = 0;
  for (int s = 0; s < kSessions; ++s) {
    for (const std::string& need_id : needs[s]) {
      auto decided = sessions[s]->WaitFor(need_id, absl::Seconds(15));
      ASSERT_TRUE(decided.ok()) << need_id << ": " << decided.status();
      int terminal = 0;
      for (const client::NeedUpdate& u : sessions[s]->Updates(need_id)) {
        if (!IsTerminal(u.state)) continue;
        ++terminal;
        switch (u.state) {
          case client::RequestState::kGranted:
            ++granted;
            EXPECT_TRUE(grant_ids.insert(u.grant->grant_id).second)
                << "grant " << u.grant->grant_id << " handed out twice";
            break;
          case client::RequestState::kDenied:
            ++denied;
            break;
          case client::RequestState::kExpired:
            ++expired;
            break;
          default:
            ++cancelled;
            break;
        }
      }
      EXPECT_EQ(terminal, 1) << need_id << " ended " << terminal << " times";
    }
  }
  stop_approvers.store(true);
  for (auto& t : approvers) t.join();
  {
    absl::MutexLock lock(&mu);
    for (const auto& [id, n] : decisions)
      EXPECT_EQ(n, 1) << id << " decided " << n << " times";
    EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  }
  fds_max = std::max(fds_max, OpenFds(broker.pid()));
  rss_max = std::max(rss_max, RssKb(broker.pid()));
  std::cout << "soak: " << sent.load() << " needs on " << kSessions
            << " sessions: " << granted << " granted, " << denied << " denied, "
            << expired << " expired, " << cancelled << " cancelled; fds "
            << fds_start << " -> max " << fds_max << ", RSS "
            << rss_start / 1024 << " MiB -> max " << rss_max / 1024 << " MiB\n";
  EXPECT_GT(sent.load(), 200);
  EXPECT_GT(granted, 0);
  EXPECT_GT(denied, 0);
  EXPECT_GT(expired, 0);
  EXPECT_LE(fds_max, fds_start + 32);
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
  // default) before it is reused, so RSS measures the quarantine; leaks are
  // LeakSanitizer's job there.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int64_t kRssGrowthKb = (96 + 384) * 1024;
#else
  constexpr int64_t kRssGrowthKb = 96 * 1024;
#endif
  EXPECT_LE(rss_max, rss_start + kRssGrowthKb);
  for (auto& s : sessions) s->Close().IgnoreError();
  ASSERT_TRUE(broker.Stop().ok());
  EXPECT_EQ(IntegrityCheck(broker.data_dir() + "/credbroker.db"), "ok");
}

// ---------------------------------------------------------------------------
// Faults.

// Runs a command; its exit code, or -1.
int RunTool(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv, absl::Seconds(20));
  return r.ok() ? r->exit_code : -1;
}

// A write that fails must say why, with a code a client can act on.
void ExpectClearWriteFailure(const absl::Status& s) {
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(s) || absl::IsUnavailable(s) ||
              absl::IsFailedPrecondition(s))
      << s;
  EXPECT_FALSE(s.message().empty());
}

class FaultTest : public ::testing::Test {
 protected:
  // The broker on `data_dir`, a stored credential and its fingerprint.
  void StartWithStored(const std::string& data_dir) {
    broker_ = std::make_unique<BrokerProcess>(data_dir, tmp_.path());
    absl::Status s = broker_->Start({"--allow_self_approval"});
    ASSERT_TRUE(s.ok()) << s;
    client_ = broker_->Client();
    auto put = client_->PutCredential(AwsPut("default"));
    ASSERT_TRUE(put.ok()) << put.status();
    stored_fingerprint_ = put->credential.fingerprint;
  }

  // Reads of the stored credential work.
  void ExpectReadsWork() {
    auto got = client_->GetCredential("aws", "");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->fingerprint, stored_fingerprint_);
    auto listed = client_->ListCredentials();
    ASSERT_TRUE(listed.ok()) << listed.status();
    client::CredentialCandidate validate;
    validate.provider = "aws";
    auto valid = client_->ValidateCredential(validate);
    ASSERT_TRUE(valid.ok()) << valid.status();
    EXPECT_TRUE(valid->valid);
  }

  // A need for the stored credential, approved: GRANTED with the stored
  // values, or a clear failure the agent sees. Returns whether granted.
  bool TryApproval(const std::string& need_id) {
    auto agent = client::AgentSession::Connect(
        OptionsFor(*broker_, broker_->agent_token()), "fault-" + need_id);
    EXPECT_TRUE(agent.ok()) << agent.status();
    if (!agent.ok()) return false;
    EXPECT_TRUE((*agent)->SendNeed(AwsNeed(need_id)).ok());
    auto pending = (*agent)->WaitForState(
        need_id, client::RequestState::kPendingApproval, absl::Seconds(3));
    if (!pending.ok()) {
      // The broker could not record the request: the agent must have been
      // told, not left waiting.
      std::vector<client::NeedUpdate> updates = (*agent)->Updates(need_id);
      std::optional<absl::Status> end = (*agent)->EndStatus();
      EXPECT_TRUE(!updates.empty() || end.has_value())
          << "the agent was told nothing about " << need_id;
      for (const auto& u : updates) last_refusal_ = u.message + u.reason;
      if (end.has_value()) last_refusal_ += end->ToString();
      return false;
    }
    auto approver = client::ApprovalClient::Connect(
        OptionsFor(*broker_, broker_->approver_token()));
    client::Approval req;
    req.request_id = pending->request_id;
    req.scope = client::Scope::kOnce;
    auto approved = (*approver)->Approve(req);
    if (!approved.ok()) {
      ExpectClearWriteFailure(approved.status());
      last_refusal_ = approved.status().ToString();
      return false;
    }
    auto granted = (*agent)->WaitFor(need_id, kWait);
    EXPECT_TRUE(granted.ok()) << granted.status();
    return granted.ok() && granted->state == client::RequestState::kGranted &&
           granted->grant->values.count("secret_access_key") == 1;
  }

  // Writes fail (the first few may still fit in space SQLite holds).
  absl::Status FailingPut() {
    absl::Status last;
    for (int i = 0; i < 50; ++i) {
      last =
          client_->PutCredential(AwsPut(absl::StrCat("blocked-", i))).status();
      if (!last.ok()) return last;
    }
    return last;
  }

  void StopAndCheck() {
    client_.reset();
    auto code = broker_->Stop();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(IntegrityCheck(broker_->data_dir() + "/credbroker.db"), "ok");
  }

  TempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<client::CredentialClient> client_;
  std::string stored_fingerprint_;
  std::string last_refusal_;
};

TEST_F(FaultTest, FullDisk) {
  const std::string mnt = tmp_.path() + "/small";
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << "): the full-disk test needs root and mount permission";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  StartWithStored(mnt + "/data");
  if (HasFatalFailure()) return;
  // Fill the file system.
  const std::string filler = mnt + "/filler";
  {
    int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(64 * 1024, 'x');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    while (write(fd, block.data(), 512) > 0) {
    }
    close(fd);
  }
  absl::Status refused = FailingPut();
  ExpectClearWriteFailure(refused);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "disk full")) << refused;
  ExpectReadsWork();
  // Approvals of a stored credential go on: the daemon releases its disk
  // reserve (--disk_reserve_kib) for the decision and its audit events.
  const bool approved_while_full = TryApproval("full");
  std::cout << "full disk: Put -> " << refused
            << "; approval of the stored credential "
            << (approved_while_full ? "granted" : "refused: " + last_refusal_)
            << "\n";
  EXPECT_TRUE(approved_while_full) << last_refusal_;
  EXPECT_TRUE(TryApproval("full-2")) << last_refusal_;
  // New credential versions still wait for space: the reserve is kept for
  // approvals.
  absl::Status still_refused = FailingPut();
  EXPECT_TRUE(absl::IsResourceExhausted(still_refused)) << still_refused;
  EXPECT_TRUE(absl::StrContains(still_refused.message(), "free some space"))
      << still_refused;
  // Space returns: writes resume.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  auto resumed = client_->PutCredential(AwsPut("after"));
  EXPECT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(TryApproval("after"));
  ExpectReadsWork();
  StopAndCheck();
}

TEST_F(FaultTest, DataDirTurnsReadOnly) {
  const std::string data = tmp_.path() + "/data";
  StartWithStored(data);
  if (HasFatalFailure()) return;
  // chmod does not stop root and a read-only remount is refused while the
  // daemon holds the files open for writing: mark the directory and its
  // files immutable instead (writes through open descriptors then fail with
  // EPERM). The socket stays as it is, or nobody could connect; so does
  // SQLite's memory-mapped wal-index (credbroker.db-shm): a store to a mapped
  // page of an immutable file is a SIGBUS, which no program handles.
  std::vector<std::string> paths = {data};
  for (const std::string& f : ListFiles(data)) {
    if (!absl::EndsWith(f, "-shm")) paths.push_back(data + "/" + f);
  }
  std::vector<std::string> chattr = {"/usr/bin/chattr", "+i"};
  chattr.insert(chattr.end(), paths.begin(), paths.end());
  if (RunTool(chattr) != 0) {
    GTEST_SKIP() << "chattr +i is not available on " << data;
  }
  struct Restore {
    std::vector<std::string> paths;
    ~Restore() {
      std::vector<std::string> argv = {"/usr/bin/chattr", "-i"};
      argv.insert(argv.end(), paths.begin(), paths.end());
      RunTool(argv);
    }
  } restore{paths};
  absl::Status refused = FailingPut();
  ExpectClearWriteFailure(refused);
  // The broker answered (the disk refused the write): no hint to start it.
  EXPECT_FALSE(absl::StrContains(refused.message(), "is credbrokerd running"))
      << refused;
  ExpectReadsWork();
  // Approvals go on, recorded in the spill beside the data directory.
  const std::string spill_db = data + "-spill/spill.db";
  const bool approved_while_ro = TryApproval("ro");
  EXPECT_TRUE(approved_while_ro) << last_refusal_;
  EXPECT_EQ(access(spill_db.c_str(), F_OK), 0);
  std::cout << "read-only data dir: Put -> " << refused
            << "; approval of the stored credential "
            << (approved_while_ro ? "granted" : "refused: " + last_refusal_)
            << "\n";
  std::vector<std::string> undo = {"/usr/bin/chattr", "-i"};
  undo.insert(undo.end(), paths.begin(), paths.end());
  ASSERT_EQ(RunTool(undo), 0);
  restore.paths.clear();
  // Writable again: writes resume (the store may need a moment to reopen).
  absl::Status resumed;
  for (int i = 0; i < 20; ++i) {
    resumed = client_->PutCredential(AwsPut("after")).status();
    if (resumed.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(resumed.ok()) << resumed;
  EXPECT_TRUE(TryApproval("after"));
  ExpectReadsWork();
  // The store took the spill back: the approval made while read-only is in
  // its audit chain, which is intact.
  // (at the broker's next try: every tick, 250 ms, backing off to 8 s while
  // the store refused writes)
  for (int i = 0; i < 200 && access(spill_db.c_str(), F_OK) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(access(spill_db.c_str(), F_OK), 0);
  client::AuditQuery query;
  query.kind = "request.approved";
  query.page_size = 100;
  auto approvals = client_->ListAuditEvents(query);
  ASSERT_TRUE(approvals.ok()) << approvals.status();
  EXPECT_EQ(approvals->events.size(), 2u);
  auto chain = client_->VerifyAuditLog();
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(chain->intact) << chain->problem;
  StopAndCheck();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
