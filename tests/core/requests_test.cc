#include "broker/core/requests.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/core/row_mac.h"
#include "broker/store/spilling_store.h"
#include "broker/store/sqlite_store.h"
#include "common/errors.h"
#include "gtest/gtest.h"
#include "tests/core/forwarding_store.h"

namespace credbroker {
namespace {

constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// A real store whose WriteFlow fails while `fail_flow` is set, as a full
// disk or a broken audit table would make it. With `edit_audit`, the first
// audit event listed comes back edited.
class FlakyStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail_flow = false;
  bool edit_audit = false;

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& q) override {
    absl::StatusOr<std::vector<AuditRecord>> events =
        ForwardingStore::ListAudit(q);
    if (edit_audit && events.ok() && !events->empty())
      (*events)[0].action = "edited";
    return events;
  }
  absl::Status WriteFlow(const FlowWrite& w, const AuditHashFn& h) override {
    if (fail_flow) return absl::ResourceExhaustedError("disk full (test)");
    return ForwardingStore::WriteFlow(w, h);
  }
};

Caller MakeCaller(const std::string& role, const std::string& peer,
                  int64_t pid = 0) {
  Caller c;
  c.role = role;
  c.peer = peer;
  c.pid = pid;
  c.start_time = pid == 0 ? 0 : 1000 + pid;
  return c;
}

class RequestManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbreq.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = absl::FromUnixSeconds(1'800'000'000);
    OpenAll();
  }
  void TearDown() override {
    requests_.reset();
    flow_store_.reset();
    audit_.reset();
    credentials_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void OpenAll() {
    requests_.reset();
    flow_store_.reset();
    audit_.reset();
    credentials_.reset();
    store_.reset();
    auto inner =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(inner.ok()) << inner.status();
    store_ = std::make_unique<FlakyStore>(std::move(*inner));
    Clock clock = [this] { return now_; };
    credentials_ = std::make_unique<CredentialManager>(
        store_.get(), &sealer_, &ProviderRegistry::Default(), clock);
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_, clock);
    RequestOptions options;
    options.pending_timeout = absl::Minutes(10);
    options.grace_period = absl::Seconds(60);
    // A fake process tree: pid 300 runs under pid 200.
    options.is_same_or_descendant = [](int64_t pid, const Caller& agent) {
      for (; pid > 1; pid = pid == 300 ? 200 : 1) {
        if (pid == agent.pid) return true;
      }
      return false;
    };
    // As the daemon does: the request manager writes through the spill.
    absl::StatusOr<std::unique_ptr<SpillingStore>> flow =
        SpillingStore::Open(store_.get(), spill_, clock);
    ASSERT_TRUE(flow.ok()) << flow.status();
    flow_store_ = *std::move(flow);
    requests_ = std::make_unique<RequestManager>(
        flow_store_.get(), credentials_.get(), audit_.get(), &sealer_, clock,
        options);
  }
  // What the daemon's core does at start (broker/daemon/open_broker.cc):
  // the store takes a spill left behind, then the manager recovers.
  absl::Status Start() {
    flow_store_->TakeBack(TakeBackChecks()).IgnoreError();
    return requests_->Recover();
  }
  // The daemon's tick.
  void Tick() {
    flow_store_->TakeBackWhenDue(TakeBackChecks());
    requests_->Tick();
  }
  SpillingStore::TakeBackChecks TakeBackChecks() {
    SpillingStore::TakeBackChecks checks;
    checks.vet = [this](FlowWrite& rows) {
      return RowMacs(&sealer_).DropUnverified(rows, "the spill", now_);
    };
    checks.hash = audit_->HashFn();
    return checks;
  }

  // A spill database beside the store (takes effect at the next OpenAll).
  void EnableSpill() {
    spill_path_ = dir_ + "/spill.db";
    spill_.open =
        [this](bool create) -> absl::StatusOr<std::unique_ptr<Store>> {
      if (!create && access(spill_path_.c_str(), F_OK) != 0) {
        return absl::NotFoundError("no spill");
      }
      absl::StatusOr<std::unique_ptr<Store>> spill =
          OpenSqliteStore(spill_path_, [this] { return now_; });
      if (!spill.ok()) return spill.status();
      auto flaky = std::make_unique<FlakyStore>(std::move(*spill));
      flaky->edit_audit = edit_spill_audit_;
      return flaky;
    };
    spill_.remove = [this]() -> absl::Status {
      if (keep_spill_files_)
        return absl::UnavailableError("cannot remove the spill (test)");
      for (const char* suffix : {"", "-wal", "-shm"})
        unlink((spill_path_ + suffix).c_str());
      return absl::OkStatus();
    };
  }
  // A stored AWS credential, session "s1" attached, and the store refusing
  // flow writes from now on: they go to the spill.
  void StartSpilling() {
    EnableSpill();
    OpenAll();
    StoreAws();
    Attach("s1");
    store_->fail_flow = true;
  }
  bool SpillExists() { return access(spill_path_.c_str(), F_OK) == 0; }
  int64_t CountAudit(const std::string& kind) {
    int64_t n = 0;
    absl::StatusOr<AuditPage> page = audit_->List({}, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const auto& e : page->events) n += e.kind == kind;
    }
    return n;
  }

  void StoreAws() {
    PutCredentialInput in;
    in.provider = "aws";
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    ASSERT_TRUE(credentials_->Put(std::move(in)).ok());
  }

  Need AwsNeed(const std::string& id,
               const std::string& action = "deploy to AWS") {
    Need n;
    n.need_id = id;
    n.provider = "aws";
    n.action = action;
    n.context = {{"region", "us-east-1"}};
    return n;
  }

  // Approves `request_id` as a standing approval of `pattern` for a day.
  absl::StatusOr<ApproveResult> ApproveStanding(const std::string& request_id,
                                                const std::string& pattern) {
    ApproveInput in;
    in.request_id = request_id;
    in.scope = Scope::kStanding;
    in.action_pattern = pattern;
    in.ttl = absl::Hours(24);
    return requests_->Approve(in, approver_);
  }

  // Attaches `session` and records every update it receives.
  int64_t Attach(const std::string& session) {
    absl::StatusOr<int64_t> attached = requests_->AttachSession(
        session, agent_, [this, session](const NeedUpdate& u) {
          updates_[session].push_back(u);
        });
    EXPECT_TRUE(attached.ok()) << attached.status();
    return attached.ok() ? *attached : 0;
  }
  void WatchAll() {
    requests_->Watch([this](const WatchEvent& e) { events_.push_back(e); });
  }
  std::vector<std::string> AuditKinds() {
    std::vector<std::string> kinds;
    absl::StatusOr<AuditPage> page = audit_->List({}, 1000, "");
    for (const auto& e : page->events) kinds.push_back(e.kind);
    return kinds;
  }
  bool HasEvent(WatchEventKind kind, const std::string& request_id) {
    for (const auto& e : events_) {
      if (e.kind == kind && e.request.record.request_id == request_id)
        return true;
    }
    return false;
  }

  std::string dir_;
  std::string spill_path_;
  SpillOptions spill_;
  bool keep_spill_files_ = false;
  bool edit_spill_audit_ = false;
  absl::Time now_;
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<FlakyStore> store_;
  std::unique_ptr<SpillingStore> flow_store_;  // Over store_.
  std::unique_ptr<CredentialManager> credentials_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<RequestManager> requests_;
  Caller agent_ = MakeCaller("agent", "unix:test", 100);
  Caller approver_ = MakeCaller("approver", "unix:ide", 400);
  std::map<std::string, std::vector<NeedUpdate>> updates_;
  std::vector<WatchEvent> events_;
};

TEST_F(RequestManagerTest, MissingCredentialNeedsInputNamingTheFields) {
  Attach("s1");
  absl::StatusOr<NeedUpdate> u =
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->state, RequestState::kNeedsInput);
  EXPECT_EQ(u->missing_fields,
            (std::vector<std::string>{"access_key_id", "secret_access_key"}));
  ASSERT_EQ(updates_["s1"].size(), 1u);
  EXPECT_EQ(updates_["s1"][0].request_id, u->request_id);
}

TEST_F(RequestManagerTest, ApproveWithValuesStoresThemAndGrants) {
  WatchAll();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(HasEvent(WatchEventKind::kAdded, pending.request_id));
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes(kKeyId));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(updates_["s1"].size(), 2u);
  const NeedUpdate& granted = updates_["s1"][1];
  EXPECT_EQ(granted.state, RequestState::kGranted);
  ASSERT_TRUE(granted.grant.has_value());
  EXPECT_EQ(granted.grant->record.grant_id, r->grant_id);
  EXPECT_EQ(granted.grant->record.expires_at, now_ + absl::Minutes(15));
  EXPECT_TRUE(granted.grant->values.at("secret_access_key").Reveal() ==
              kSecret);
  EXPECT_TRUE(HasEvent(WatchEventKind::kResolved, pending.request_id));
  EXPECT_TRUE(credentials_->Get("aws", "default", 0).ok());
  EXPECT_EQ(AuditKinds(),
            (std::vector<std::string>{"request.created", "credential.put",
                                      "request.approved", "grant.created"}));
  EXPECT_TRUE(audit_->Verify().ok());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

// An approval with values stores a new version: the next read sees it, and
// no answer read before it still holds (CredentialManager::AnswerLife).
TEST_F(RequestManagerTest, AnApprovalWithValuesIsSeenByTheNextRead) {
  StoreAws();
  Attach("s1");
  CredentialManager::AnswerLife life;
  absl::StatusOr<CredentialSummary> before =
      credentials_->Get("aws", "", 0, &life);
  ASSERT_TRUE(before.ok()) << before.status();
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_FALSE(credentials_->StillHolds(life));  // The request's commit.
  before = credentials_->Get("aws", "", 0, &life);
  ASSERT_TRUE(before.ok()) << before.status();
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes("AKIAI44QH8DHBEXAMPLE"));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  ASSERT_TRUE(requests_->Approve(std::move(in), approver_).ok());
  EXPECT_FALSE(credentials_->StillHolds(life));
  absl::StatusOr<CredentialSummary> after = credentials_->Get("aws", "", 0);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version, before->version + 1);
  EXPECT_NE(after->fingerprint, before->fingerprint);
}

TEST_F(RequestManagerTest, InvalidValuesKeepTheRequestPending) {
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes("AKIA-short"));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(GetFieldViolations(r.status()).empty());
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_EQ(updates_["s1"].size(), 1u);
}

TEST_F(RequestManagerTest, ApproveWithoutValuesNeedsAReadyCredential) {
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  StoreAws();
  EXPECT_TRUE(requests_->Approve(in, approver_).ok());
}

// What the approver sees of the stored credential: none at first, then the
// readiness of the one stored meanwhile.
TEST_F(RequestManagerTest, PendingRequestsShowTheStoredCredentialsReadiness) {
  Attach("s1");
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_FALSE(requests_->PendingRequests()[0].credential_readiness);
  StoreAws();
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_TRUE(pending[0].credential_readiness.has_value());
  EXPECT_EQ(*pending[0].credential_readiness, Readiness::kReady);
}

TEST_F(RequestManagerTest, FirstDecisionWins) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(pending.state, RequestState::kPendingApproval);
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  absl::Status deny =
      requests_->Deny(pending.request_id, "too late", approver_);
  EXPECT_EQ(deny.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(deny.message(), "approved")) << deny.message();
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(requests_->Deny("r-nope", "", approver_).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RequestManagerTest, DenyTellsTheAgentWhy) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(
      requests_->Deny(pending.request_id, "not on a Friday", approver_).ok());
  ASSERT_EQ(updates_["s1"].size(), 2u);
  EXPECT_EQ(updates_["s1"][1].state, RequestState::kDenied);
  EXPECT_EQ(updates_["s1"][1].reason, "not on a Friday");
  EXPECT_FALSE(updates_["s1"][1].grant.has_value());
}

TEST_F(RequestManagerTest, PendingRequestsExpire) {
  StoreAws();
  WatchAll();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  now_ += absl::Minutes(9);
  requests_->Tick();
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(2);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_EQ(updates_["s1"].back().state, RequestState::kExpired);
  EXPECT_TRUE(HasEvent(WatchEventKind::kExpired, pending.request_id));
  ApproveInput in;
  in.request_id = pending.request_id;
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RequestManagerTest, DisconnectedAgentIsCancelledAfterTheGracePeriod) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  EXPECT_TRUE(HasEvent(WatchEventKind::kAgentDisconnected, pending.request_id));
  EXPECT_FALSE(requests_->PendingRequests()[0].agent_connected);
  now_ += absl::Seconds(59);
  requests_->Tick();
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Seconds(2);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_TRUE(HasEvent(WatchEventKind::kCancelled, pending.request_id));
}

TEST_F(RequestManagerTest, GraceCountsFromTheLatestDisconnect) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  now_ += absl::Seconds(40);
  a = Attach("s1");
  now_ += absl::Seconds(10);
  requests_->DetachSession("s1", a);
  // 70 s after the first disconnect, 20 s after the second: still waiting.
  now_ += absl::Seconds(20);
  requests_->Tick();
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  // 61 s after the second disconnect the need is cancelled; a need of a
  // connected session is left alone until it expires.
  Attach("s2");
  NeedUpdate other = *requests_->SubmitNeed("s2", agent_, AwsNeed("n2"));
  now_ += absl::Seconds(41);
  requests_->Tick();
  EXPECT_TRUE(HasEvent(WatchEventKind::kCancelled, pending.request_id));
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(10);
  requests_->Tick();
  EXPECT_TRUE(requests_->PendingRequests().empty());
  EXPECT_TRUE(HasEvent(WatchEventKind::kExpired, other.request_id));
  EXPECT_FALSE(HasEvent(WatchEventKind::kCancelled, other.request_id));
}

TEST_F(RequestManagerTest, ReattachWithinGraceGetsTheDecisionMadeMeanwhile) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  now_ += absl::Seconds(30);
  updates_.clear();
  Attach("s1");
  absl::StatusOr<NeedUpdate> again =
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->request_id, pending.request_id);
  EXPECT_EQ(again->state, RequestState::kGranted);
  ASSERT_TRUE(again->grant.has_value());
  EXPECT_TRUE(again->grant->values.at("access_key_id").Reveal() == kKeyId);
  ASSERT_EQ(updates_["s1"].size(), 1u);  // The listener heard it too.
}

TEST_F(RequestManagerTest, ReattachWhilePendingKeepsTheSameRequest) {
  StoreAws();
  WatchAll();
  int64_t a = Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", a);
  Attach("s1");
  EXPECT_TRUE(HasEvent(WatchEventKind::kAgentReconnected, pending.request_id));
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(again.request_id, pending.request_id);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  now_ += absl::Minutes(5);
  requests_->Tick();  // Connected again: no cancellation.
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
}

TEST_F(RequestManagerTest, SessionScopeGrantsLaterNeedsOfTheSameSession) {
  StoreAws();
  Attach("s1");
  Attach("s2");
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = first.request_id;
  in.scope = Scope::kSession;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  NeedUpdate second =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "anything else"));
  EXPECT_EQ(second.state, RequestState::kGranted);
  ASSERT_TRUE(second.grant.has_value());
  EXPECT_EQ(second.grant->record.scope, static_cast<int>(Scope::kSession));
  NeedUpdate other = *requests_->SubmitNeed("s2", agent_, AwsNeed("n1"));
  EXPECT_EQ(other.state, RequestState::kPendingApproval);
}

// Another process with the agent token and the session key cannot take a
// live session over, and one that takes over a session left behind is
// asked again for what the first process was allowed for the session.
TEST_F(RequestManagerTest, ASessionIsNotABearerCapability) {
  StoreAws();
  WatchAll();
  int64_t first = Attach("s1");
  Caller other = MakeCaller("agent", "python, pid 500", 500);
  absl::StatusOr<int64_t> taken =
      requests_->AttachSession("s1", other, [](const NeedUpdate&) {});
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists)
      << taken.status();
  EXPECT_EQ(CountAudit("session.attach_refused"), 1);

  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = asked.request_id;
  in.scope = Scope::kSession;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  // The session approval covers the process that was approved.
  EXPECT_EQ(
      requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "anything"))->state,
      RequestState::kGranted);
  Need staging = AwsNeed("n-open", "deploy to staging");
  staging.profile =
      "staging";  // Not stored: stays open while the agent is away.
  ASSERT_EQ(requests_->SubmitNeed("s1", agent_, staging)->state,
            RequestState::kNeedsInput);
  requests_->DetachSession("s1", first);
  ASSERT_TRUE(
      requests_->AttachSession("s1", other, [](const NeedUpdate&) {}).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s1", other, AwsNeed("n3", "anything else"))->state,
      RequestState::kPendingApproval);
  bool shown = false;
  for (const WatchEvent& e : events_) {
    if (e.kind == WatchEventKind::kAgentReconnected &&
        absl::StrContains(e.message, "another process: python, pid 500")) {
      shown = true;
    }
  }
  EXPECT_TRUE(shown) << "approvers were not told another process re-attached";
}

// A ONCE grant's values reach one process: a third process that re-sends
// the need id gets a refusal, not the values.
TEST_F(RequestManagerTest, AGrantIsHandedToOneProcessOnly) {
  StoreAws();
  int64_t first = Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = asked.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  ASSERT_TRUE(updates_["s1"].back().grant.has_value());
  // The same process asking again gets it again.
  EXPECT_TRUE(
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"))->grant.has_value());
  requests_->DetachSession("s1", first);
  Caller third = MakeCaller("agent", "curl, pid 600", 600);
  ASSERT_TRUE(
      requests_->AttachSession("s1", third, [](const NeedUpdate&) {}).ok());
  NeedUpdate resent = *requests_->SubmitNeed("s1", third, AwsNeed("n1"));
  EXPECT_FALSE(resent.grant.has_value());
  EXPECT_EQ(resent.state, RequestState::kCancelled);
  EXPECT_TRUE(absl::StrContains(resent.reason, "was handed to another process"))
      << resent.reason;
  EXPECT_EQ(CountAudit("grant.handover_refused"), 1);
}

// A grant decided while no process was attached goes to the first process
// of the session that asks again, and to no other.
TEST_F(RequestManagerTest, AGrantDecidedWhileAwayGoesToTheFirstToAskAgain) {
  StoreAws();
  int64_t first = Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  requests_->DetachSession("s1", first);
  ApproveInput in;
  in.request_id = asked.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  Caller back = MakeCaller("agent", "agent again, pid 700", 700);
  int64_t again =
      *requests_->AttachSession("s1", back, [](const NeedUpdate&) {});
  EXPECT_TRUE(
      requests_->SubmitNeed("s1", back, AwsNeed("n1"))->grant.has_value());
  requests_->DetachSession("s1", again);
  Caller late = MakeCaller("agent", "late, pid 800", 800);
  ASSERT_TRUE(
      requests_->AttachSession("s1", late, [](const NeedUpdate&) {}).ok());
  EXPECT_FALSE(
      requests_->SubmitNeed("s1", late, AwsNeed("n1"))->grant.has_value());
}

// Not knowing which process calls (loopback TCP) is not "someone else".
TEST_F(RequestManagerTest, AnUnidentifiedCallerCannotDecideOrRelease) {
  StoreAws();
  Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  Caller tcp = MakeCaller("approver", "ipv4:127.0.0.1:5555");
  ApproveInput in;
  in.request_id = asked.request_id;
  EXPECT_EQ(requests_->Approve(in, tcp).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(requests_->Deny(asked.request_id, "no", tcp).code(),
            absl::StatusCode::kPermissionDenied);
  Caller with_cert = tcp;
  with_cert.client_certificate = true;
  ApproveResult r = *requests_->Approve(in, with_cert);
  Caller tcp_agent = MakeCaller("agent", "ipv4:127.0.0.1:5556");
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, tcp_agent).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(requests_->ReleaseGrant(r.grant_id, agent_).ok());
}

// A request that expired while nothing swept it (the broker was down, or
// the tick has not run yet) cannot be approved.
TEST_F(RequestManagerTest, ARequestPastItsExpiryCannotBeApproved) {
  StoreAws();
  Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  now_ += absl::Minutes(10);  // The pending timeout; no Tick() yet.
  ApproveInput in;
  in.request_id = asked.request_id;
  absl::Status late = requests_->Approve(in, approver_).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition) << late;
  EXPECT_TRUE(absl::StrContains(late.message(), "expired")) << late;
}

TEST_F(RequestManagerTest, StandingApprovalGrantsMatchingActionsUntilRevoked) {
  StoreAws();
  Attach("s1");
  NeedUpdate first =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n1", "deploy web"));
  absl::StatusOr<ApproveResult> r =
      ApproveStanding(first.request_id, "deploy *");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(r->standing_id.empty());

  Attach("s2");
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("a", "deploy api"))->state,
      RequestState::kGranted);
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("b", "destroy everything"))
          ->state,
      RequestState::kPendingApproval);
  ASSERT_TRUE(requests_->RevokeStanding(r->standing_id, approver_).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("c", "deploy db"))->state,
      RequestState::kPendingApproval);
  EXPECT_EQ(requests_->RevokeStanding(r->standing_id, approver_).code(),
            absl::StatusCode::kFailedPrecondition);

  // Longer than 90 days is refused.
  NeedUpdate next =
      *requests_->SubmitNeed("s2", agent_, AwsNeed("d", "deploy x"));
  ApproveInput long_in;
  long_in.request_id = next.request_id;
  long_in.scope = Scope::kStanding;
  long_in.ttl = absl::Hours(24 * 91);
  EXPECT_EQ(requests_->Approve(long_in, approver_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// An agent that can write the database (it runs as the user) adds a
// standing approval for itself, widens a real one and rewrites the action
// of an open request while the broker is stopped: none of it is acted on.
TEST_F(RequestManagerTest, RowsWrittenBehindTheBrokersBackAreRefusedAtLoad) {
  StoreAws();
  Attach("s1");
  NeedUpdate first =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n1", "deploy web"));
  ASSERT_TRUE(ApproveStanding(first.request_id, "deploy *").ok());
  NeedUpdate pending =
      *requests_->SubmitNeed("s1", agent_, AwsNeed("n2", "rotate keys"));
  ASSERT_EQ(pending.state, RequestState::kPendingApproval);

  absl::StatusOr<std::vector<StandingRecord>> standing = store_->ListStanding();
  ASSERT_TRUE(standing.ok() && standing->size() == 1u);
  StandingRecord widened = (*standing)[0];
  widened.action_pattern = "*";  // The old MAC kept.
  StandingRecord planted = (*standing)[0];
  planted.id = "st-planted";
  planted.mac.clear();
  absl::StatusOr<std::vector<RequestRecord>> open =
      store_->ListRequests(/*open_only=*/true);
  ASSERT_TRUE(open.ok() && open->size() == 1u);
  RequestRecord rewritten = (*open)[0];
  rewritten.action = "rotate keys (harmless)";
  FlowWrite write;
  write.standing = {widened, planted};
  write.requests = {rewritten};
  ASSERT_TRUE(store_->WriteFlow(write, audit_->HashFn()).ok());

  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  EXPECT_TRUE(requests_->ListStanding()->empty());
  Attach("s2");
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("x", "exfiltrate"))->state,
      RequestState::kPendingApproval);
  EXPECT_EQ(
      requests_->SubmitNeed("s2", agent_, AwsNeed("y", "deploy api"))->state,
      RequestState::kPendingApproval);
  ApproveInput late;
  late.request_id = rewritten.request_id;
  EXPECT_FALSE(requests_->Approve(late, approver_).ok());
  EXPECT_EQ(CountAudit("row.refused"), 3);
}

TEST_F(RequestManagerTest, StandingApprovalEndsAtItsExpiry) {
  StoreAws();
  Attach("s1");
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = first.request_id;
  in.scope = Scope::kStanding;
  in.ttl = absl::Hours(1);
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  Attach("s2");
  EXPECT_EQ(requests_->SubmitNeed("s2", agent_, AwsNeed("a"))->state,
            RequestState::kGranted);
  now_ += absl::Hours(2);
  EXPECT_EQ(requests_->SubmitNeed("s2", agent_, AwsNeed("b"))->state,
            RequestState::kPendingApproval);
}

TEST_F(RequestManagerTest, AnExpiredGrantIsNeverHandedOutAgain) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  now_ += absl::Minutes(16);
  requests_->Tick();
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_NE(again.state, RequestState::kGranted);
  EXPECT_FALSE(again.grant.has_value());
}

TEST_F(RequestManagerTest, RevokeReachesTheAgentAndEndsTheGrant) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, approver_);
  ASSERT_TRUE(requests_->RevokeGrant(r.grant_id, "key leaked", approver_).ok());
  EXPECT_EQ(updates_["s1"].back().state, RequestState::kRevoked);
  EXPECT_EQ(updates_["s1"].back().need_id, "n1");
  EXPECT_EQ(requests_->RevokeGrant(r.grant_id, "", approver_).code(),
            absl::StatusCode::kFailedPrecondition);
  ListGrantsOptions active;
  active.now = now_;
  EXPECT_TRUE(requests_->ListGrants(active)->empty());
  ListGrantsOptions all = active;
  all.include_ended = true;
  ASSERT_EQ(requests_->ListGrants(all)->size(), 1u);
  EXPECT_EQ((*requests_->ListGrants(all))[0].end_reason, "revoked: key leaked");
}

TEST_F(RequestManagerTest, ReleaseEndsAGrant) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, approver_);
  ASSERT_TRUE(requests_->ReleaseGrant(r.grant_id, agent_).ok());
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, agent_).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(requests_->ReleaseGrant("g-unknown", agent_).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RequestManagerTest, PendingRequestsSurviveARestart) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  std::vector<RequestView> open = requests_->PendingRequests();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].record.request_id, pending.request_id);
  EXPECT_EQ(open[0].record.context.size(), 1u);
  // The agent comes back with the same need and the same session.
  Attach("s1");
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, AwsNeed("n1"))->request_id,
            pending.request_id);
}

// Restart keeps the broker's word: a denied need stays denied under its
// id, and a grant approved while the agent was away reaches it after the
// restart instead of a second request.
TEST_F(RequestManagerTest, DecisionsSurviveARestart) {
  StoreAws();
  int64_t a = Attach("s1");
  NeedUpdate denied = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(requests_->Deny(denied.request_id, "not today", approver_).ok());
  NeedUpdate approved = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  requests_->DetachSession("s1", a);
  ApproveInput in;
  in.request_id = approved.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  Attach("s1");
  NeedUpdate again = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(again.state, RequestState::kDenied);
  EXPECT_EQ(again.request_id, denied.request_id);
  EXPECT_TRUE(absl::StrContains(again.reason, "not today")) << again.reason;
  NeedUpdate delivered = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  EXPECT_EQ(delivered.state, RequestState::kGranted);
  EXPECT_TRUE(delivered.grant.has_value());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

TEST_F(RequestManagerTest, ReleaseFailsClosedWhenTheDecisionCannotBeRecorded) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  store_->fail_flow = true;
  ApproveInput in;
  in.request_id = pending.request_id;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, approver_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "nothing was released"));
  ASSERT_EQ(updates_["s1"].size(), 1u);  // No grant reached the agent.
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  store_->fail_flow = false;
  EXPECT_TRUE(requests_->Approve(in, approver_).ok());
}

TEST_F(RequestManagerTest, ApprovalsGoOnInTheSpillWhileTheStoreRefusesWrites) {
  StartSpilling();
  WatchAll();
  NeedUpdate first = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(first.state, RequestState::kPendingApproval);
  EXPECT_TRUE(SpillExists());
  ApproveInput in;
  in.request_id = first.request_id;
  absl::StatusOr<ApproveResult> approved = requests_->Approve(in, approver_);
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_EQ(updates_["s1"].back().state, RequestState::kGranted);
  EXPECT_TRUE(
      updates_["s1"].back().grant->values.at("secret_access_key").Reveal() ==
      kSecret);
  NeedUpdate second = *requests_->SubmitNeed("s1", agent_, AwsNeed("n2"));
  // Reads see the spilled rows: the grant in the history, the decision of
  // the first request.
  ListGrantsOptions history;
  history.include_ended = true;
  history.now = now_;
  absl::StatusOr<std::vector<GrantRecord>> grants =
      requests_->ListGrants(history);
  ASSERT_TRUE(grants.ok()) << grants.status();
  ASSERT_EQ(grants->size(), 1u);
  EXPECT_EQ((*grants)[0].grant_id, approved->grant_id);
  absl::Status again = requests_->Deny(first.request_id, "", approver_);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  const int64_t created_before = CountAudit("request.created");

  // A restart while the store still refuses writes: the spill is laid over
  // what the store has.
  OpenAll();
  store_->fail_flow = true;
  ASSERT_TRUE(Start().ok());
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].record.request_id, second.request_id);
  EXPECT_TRUE(requests_->ReleaseGrant(approved->grant_id, agent_).ok());
  // Ended in the spill: no longer listed as active, though the store still
  // has it active.
  ListGrantsOptions active;
  active.now = now_;
  absl::StatusOr<std::vector<GrantRecord>> listed =
      requests_->ListGrants(active);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());

  // The store writes again: the next tick copies the spill in, once.
  store_->fail_flow = false;
  Tick();
  EXPECT_FALSE(SpillExists());
  absl::StatusOr<RequestRecord> decided = store_->GetRequest(first.request_id);
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_NE(decided->decided_at, absl::InfinitePast());
  absl::StatusOr<GrantRecord> released = store_->GetGrant(approved->grant_id);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_NE(released->ended_at, absl::InfiniteFuture());
  EXPECT_EQ(CountAudit("request.created"), created_before + 2);
  EXPECT_EQ(CountAudit("audit.spill_chain_broken"), 0);
  absl::StatusOr<AuditLog::Verification> chain = audit_->VerifyChain();
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(chain->intact()) << chain->problem;
}

TEST_F(RequestManagerTest, AGrantEndedInTheSpillLeavesTheActivePageFull) {
  EnableSpill();
  OpenAll();
  StoreAws();
  Attach("s1");
  std::vector<std::string> grants;
  for (const char* need : {"n1", "n2"}) {
    ApproveInput in;
    in.request_id =
        requests_->SubmitNeed("s1", agent_, AwsNeed(need))->request_id;
    absl::StatusOr<ApproveResult> approved = requests_->Approve(in, approver_);
    ASSERT_TRUE(approved.ok()) << approved.status();
    grants.push_back(approved->grant_id);
    now_ += absl::Seconds(1);
  }
  store_->fail_flow = true;
  ASSERT_TRUE(
      requests_->ReleaseGrant(grants[0], agent_).ok());  // In the spill.
  ListGrantsOptions page;
  page.now = now_;
  page.limit = 1;
  absl::StatusOr<std::vector<GrantRecord>> listed = requests_->ListGrants(page);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].grant_id, grants[1]);
}

TEST_F(RequestManagerTest, ASpillTakenBackBeforeACrashIsNotCopiedTwice) {
  StartSpilling();
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  store_->fail_flow = false;
  const int64_t before = CountAudit("request.created");
  keep_spill_files_ = true;  // As if the broker died before removing them.
  Tick();
  EXPECT_EQ(CountAudit("request.created"), before + 1);
  ASSERT_TRUE(SpillExists());
  keep_spill_files_ = false;
  // The store refuses writes again: the files left are not reused (their
  // rows are older than the store's), a new spill is.
  store_->fail_flow = true;
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n2")).ok());
  store_->fail_flow = false;
  now_ += absl::Seconds(1);  // Past the back-off of the failed removal.
  Tick();
  EXPECT_FALSE(SpillExists());
  EXPECT_EQ(CountAudit("request.created"), before + 2);
  // A restart finds nothing more to copy.
  OpenAll();
  ASSERT_TRUE(Start().ok());
  EXPECT_EQ(CountAudit("request.created"), before + 2);
  EXPECT_EQ(requests_->PendingRequests().size(), 2u);
}

TEST_F(RequestManagerTest, LeftoverSpillFilesAreNotReadAgainAtStart) {
  StartSpilling();
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  store_->fail_flow = false;
  keep_spill_files_ = true;
  Tick();
  keep_spill_files_ = false;
  ASSERT_TRUE(SpillExists());
  // Decided in the store after the take-back; the stale spill still says
  // pending.
  ASSERT_TRUE(requests_->Deny(pending.request_id, "no", approver_).ok());
  OpenAll();
  store_->fail_flow = true;  // Even while the store refuses writes again.
  ASSERT_TRUE(Start().ok());
  EXPECT_FALSE(SpillExists());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

TEST_F(RequestManagerTest, AnEditedSpillIsTakenBackWithARecordOfTheBreak) {
  StartSpilling();
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  // Reopened (as after a restart) with its first audit event edited.
  edit_spill_audit_ = true;
  OpenAll();
  ASSERT_TRUE(Start().ok());
  EXPECT_EQ(CountAudit("audit.spill_chain_broken"), 1);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_FALSE(SpillExists());
}

TEST_F(RequestManagerTest, MalformedNeedsAndLimits) {
  Attach("s1");
  Need bad = AwsNeed("");
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  Need unknown = AwsNeed("x");
  unknown.provider = "ibm";
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, unknown).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(
        requests_->SubmitNeed("s1", agent_, AwsNeed("n" + std::to_string(i)))
            .ok());
  }
  EXPECT_EQ(
      requests_->SubmitNeed("s1", agent_, AwsNeed("one-more")).status().code(),
      absl::StatusCode::kResourceExhausted);
}

TEST_F(RequestManagerTest, WatchersGetASnapshotFirst) {
  StoreAws();
  Attach("s1");
  requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).IgnoreError();
  requests_->SubmitNeed("s1", agent_, AwsNeed("n2")).IgnoreError();
  WatchAll();
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].kind, WatchEventKind::kSnapshot);
  EXPECT_EQ(events_[1].kind, WatchEventKind::kSnapshot);
  EXPECT_EQ(events_[2].kind, WatchEventKind::kSnapshotDone);
}

TEST_F(RequestManagerTest, FormShowsPlainValuesAndOnlyWhetherSecretsAreSet) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  absl::StatusOr<Form> form = requests_->GetForm(pending.request_id, "", "");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->provider->id, "aws");
  ASSERT_TRUE(form->request.has_value());
  for (const FormField& f : form->fields) {
    if (f.spec.name == "access_key_id") {
      EXPECT_EQ(f.current_value, kKeyId);
    }
    if (f.spec.name == "secret_access_key") {
      EXPECT_TRUE(f.is_set);
      EXPECT_TRUE(f.current_value.empty());
    }
  }
}

TEST_F(RequestManagerTest, TheAgentCannotApproveOrDenyItsOwnRequest) {
  StoreAws();
  Caller agent = MakeCaller("agent", "node, pid 200, /usr/bin/node", 200);
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  // The agent itself, and a shell it started (pid 300).
  for (int64_t pid : {200, 300}) {
    Caller self = MakeCaller("approver", "sh", pid);
    self.start_time = pid == 200 ? agent.start_time : 1300;
    absl::StatusOr<ApproveResult> r = requests_->Approve(in, self);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << pid;
    EXPECT_EQ(requests_->Deny(pending.request_id, "x", self).code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "request.approve_refused"),
            kinds.end());
  // Another process may decide.
  EXPECT_TRUE(requests_->Approve(in, MakeCaller("approver", "ide", 400)).ok());
}

// `agent & credctl approve`: the approver is no descendant of the agent but
// runs in its terminal session, or in its process group.
TEST_F(RequestManagerTest,
       AnApproverInTheAgentsSessionOrProcessGroupIsRefused) {
  StoreAws();
  Caller agent = MakeCaller("agent", "agent", 200);
  agent.session_id = 150;
  agent.process_group = 160;
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  Caller sibling = MakeCaller("approver", "credctl, pid 500", 500);
  sibling.session_id = 150;
  sibling.process_group = 510;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, sibling);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "agent's session (sid 150"))
      << r.status();
  Caller same_group = MakeCaller("approver", "credctl, pid 501", 501);
  same_group.session_id = 170;
  same_group.process_group = 160;
  r = requests_->Approve(in, same_group);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "process group (160"))
      << r.status();
  EXPECT_EQ(requests_->Deny(pending.request_id, "x", sibling).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  Caller ide = MakeCaller("approver", "ide", 400);
  ide.session_id = 390;
  ide.process_group = 390;
  EXPECT_TRUE(requests_->Approve(in, ide).ok());
}

// An IDE's extension host that started the agent (an MCP server, say)
// shares its session and process group, and is its parent: it may decide.
TEST_F(RequestManagerTest, TheProcessTheAgentRunsUnderMayDecide) {
  StoreAws();
  Caller agent = MakeCaller("agent", "mcp server", 300);  // Runs under 200.
  agent.session_id = 150;
  agent.process_group = 160;
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  Caller host = MakeCaller("approver", "extension host", 200);
  host.session_id = 150;
  host.process_group = 160;
  absl::StatusOr<ApproveResult> r = requests_->Approve(in, host);
  EXPECT_TRUE(r.ok()) << r.status();
}

// An agent that re-attached its session from a new process has not shed its
// first one: a shell the first process started still counts as the agent.
TEST_F(RequestManagerTest, EveryProcessRecordedForTheSessionCountsAsTheAgent) {
  StoreAws();
  Caller first = MakeCaller("agent", "agent", 200);
  int64_t a = *requests_->AttachSession("s1", first, [](const NeedUpdate&) {});
  requests_->DetachSession("s1", a);
  Caller second = MakeCaller("agent", "agent again", 600);
  ASSERT_TRUE(
      requests_->AttachSession("s1", second, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", second, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  // pid 300 runs under pid 200, the session's first process.
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(in, MakeCaller("approver", "sh", 300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied)
      << r.status();
  EXPECT_TRUE(requests_->Approve(in, MakeCaller("approver", "ide", 400)).ok());
}

TEST_F(RequestManagerTest, OnlyTheProcessThatReceivedAGrantMayReleaseIt) {
  StoreAws();
  Caller agent = MakeCaller("agent", "agent", 200);
  ASSERT_TRUE(
      requests_->AttachSession("s1", agent, [](const NeedUpdate&) {}).ok());
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  ApproveResult r = *requests_->Approve(in, MakeCaller("approver", "ide", 400));
  EXPECT_EQ(
      requests_->ReleaseGrant(r.grant_id, MakeCaller("agent", "other", 500))
          .code(),
      absl::StatusCode::kPermissionDenied);
  Caller recycled = agent;  // Same pid, another process (pid reused).
  recycled.start_time += 1;
  EXPECT_EQ(requests_->ReleaseGrant(r.grant_id, recycled).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(requests_->ReleaseGrant(r.grant_id, agent).ok());
}

TEST(ActionMatchesTest, Globs) {
  EXPECT_TRUE(ActionMatches("deploy *", "deploy web"));
  EXPECT_TRUE(ActionMatches("DEPLOY *", "deploy web"));
  EXPECT_TRUE(ActionMatches("deploy to AWS in us-east-?",
                            "deploy to AWS in us-east-1"));
  EXPECT_TRUE(ActionMatches("*", "anything"));
  EXPECT_FALSE(ActionMatches("deploy *", "destroy web"));
  EXPECT_FALSE(ActionMatches("deploy", "deploy web"));
  EXPECT_TRUE(ActionMatches("*web*", "deploy web now"));
}

// --- Default profiles, resource bindings and rotation events. ---

constexpr char kKeyId2[] = "AKIAI44QH8DHBEXAMPLE";
constexpr char kSecret2[] = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

class BindingTest : public RequestManagerTest {
 protected:
  void Store(const std::string& profile, const char* id, const char* secret) {
    PutCredentialInput in;
    in.provider = "aws";
    in.profile = profile;
    in.values.emplace("access_key_id", SecretBytes(id));
    in.values.emplace("secret_access_key", SecretBytes(secret));
    ASSERT_TRUE(credentials_->Put(std::move(in)).ok());
  }
  Need ClusterNeed(const std::string& id, const std::string& key = "cluster") {
    Need n = AwsNeed(id, "deploy cluster");
    n.context = {{key, "prod-eu"}, {"region", "eu-west-1"}};
    return n;
  }
  // The open request `request_id` (an empty record when it is not open).
  RequestRecord Pending(const std::string& request_id) {
    for (const RequestView& v : requests_->PendingRequests()) {
      if (v.record.request_id == request_id) return v.record;
    }
    ADD_FAILURE() << "request " << request_id << " is not open";
    return RequestRecord();
  }
  // Submits `need` and approves it once; returns the grant's update.
  NeedUpdate Grant(const Need& need) {
    NeedUpdate u = *requests_->SubmitNeed("s1", agent_, need);
    EXPECT_EQ(u.state, RequestState::kPendingApproval) << u.message;
    ApproveInput in;
    in.request_id = u.request_id;
    EXPECT_TRUE(requests_->Approve(std::move(in), approver_).ok());
    return updates_["s1"].back();
  }
};

TEST_F(BindingTest, EmptyProfileUsesTheProvidersDefault) {
  Attach("s1");
  Store("staging", kKeyId2, kSecret2);
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "staging").ok());
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(u.state, RequestState::kPendingApproval);
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].record.profile, "staging");
  absl::StatusOr<Form> form = requests_->GetForm("", "aws", "");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form->profile, "staging");
}

TEST_F(BindingTest, ABindingRecordedInTheSpillChoosesTheProfile) {
  EnableSpill();
  OpenAll();
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  store_->fail_flow = true;
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);
  ASSERT_TRUE(SpillExists());
  // The default is written with its audit event (WriteFlow, which this
  // store fails), straight to the store; flow writes stay in the spill.
  store_->fail_flow = false;
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "other").ok());
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, ClusterNeed("n2"));
  EXPECT_EQ(Pending(u.request_id).profile, "default");
}

TEST_F(BindingTest, GrantBindsTheResourceAndTheBindingSurvivesADefaultChange) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  NeedUpdate g = Grant(ClusterNeed("n1"));
  ASSERT_EQ(g.state, RequestState::kGranted);
  ASSERT_TRUE(g.grant.has_value());
  EXPECT_EQ(g.grant->record.profile, "default");

  std::vector<BindingView> bindings = *credentials_->ListBindings("");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].record.resource, "prod-eu");
  EXPECT_EQ(bindings[0].record.profile, "default");
  EXPECT_EQ(bindings[0].record.grant_id, g.grant->record.grant_id);
  EXPECT_EQ(bindings[0].record.fingerprint,
            credentials_->Get("aws", "default", 0)->fingerprint);
  EXPECT_EQ(bindings[0].state, BindingState::kCurrent);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "binding.created"),
            kinds.end());

  // The default moves to "other"; a need naming the cluster (by any of the
  // resource keys) still resolves to "default", with nothing to note.
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "other").ok());
  for (const char* key : {"cluster", "resource", "cluster_id"}) {
    SCOPED_TRACE(key);
    NeedUpdate u = *requests_->SubmitNeed(
        "s1", agent_, ClusterNeed(std::string("n-") + key, key));
    RequestRecord r = Pending(u.request_id);
    EXPECT_EQ(r.profile, "default");
    EXPECT_TRUE(r.binding_note.empty()) << r.binding_note;
    ASSERT_TRUE(
        requests_->CancelNeed("s1", std::string("n-") + key, agent_).ok());
  }
  // A need naming no resource gets the new default.
  EXPECT_EQ(
      Pending(requests_->SubmitNeed("s1", agent_, AwsNeed("plain"))->request_id)
          .profile,
      "other");
  // The binding survives a restart.
  requests_.reset();
  OpenAll();
  EXPECT_EQ(credentials_->ListBindings("aws")->size(), 1u);
}

TEST_F(BindingTest, ApproverIsToldWhenTheBoundCredentialRotatedOrWasDeleted) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);

  Store("default", kKeyId2, kSecret2);  // Rotated.
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, ClusterNeed("n2"));
  RequestView v;
  v.record = Pending(u.request_id);
  EXPECT_TRUE(absl::StrContains(v.record.binding_note, "different credential"))
      << v.record.binding_note;
  absl::StatusOr<Form> form = requests_->GetForm(u.request_id, "", "");
  ASSERT_TRUE(form.ok());
  bool noted = false;
  for (const std::string& n : form->notes) noted |= n == v.record.binding_note;
  EXPECT_TRUE(noted);
  // The note survives a restart (it is stored with the request).
  requests_.reset();
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  EXPECT_EQ(Pending(u.request_id).binding_note, v.record.binding_note);
  Attach("s1");
  // Approving refreshes the binding to the new fingerprint.
  ApproveInput in;
  in.request_id = u.request_id;
  ASSERT_TRUE(requests_->Approve(std::move(in), approver_).ok());
  std::vector<BindingView> b = *credentials_->ListBindings("aws");
  EXPECT_EQ(b[0].state, BindingState::kCurrent);
  EXPECT_EQ(b[0].record.credential_version, 2);

  ASSERT_TRUE(credentials_->Delete("aws", "default").ok());
  RequestRecord d = Pending(
      requests_->SubmitNeed("s1", agent_, ClusterNeed("n3"))->request_id);
  EXPECT_EQ(d.profile, "default");
  EXPECT_EQ(d.state, static_cast<int>(RequestState::kNeedsInput));
  EXPECT_TRUE(absl::StrContains(d.binding_note, "deleted"));
}

TEST_F(BindingTest, ExplicitOtherProfileKeepsTheBindingAndIsNoted) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);
  Need n = ClusterNeed("n2");
  n.profile = "other";
  NeedUpdate g = Grant(n);
  ASSERT_EQ(g.state, RequestState::kGranted);
  EXPECT_EQ(g.grant->record.profile, "other");
  EXPECT_EQ(credentials_->ListBindings("aws")->at(0).record.profile, "default");
}

TEST_F(BindingTest, RotationDueEventOncePerCredentialVersion) {
  WatchAll();
  Attach("s1");
  Store("default", kKeyId, kSecret);
  now_ += absl::Hours(24 * 91);
  auto rotation_events = [this] {
    int n = 0;
    for (const WatchEvent& e : events_) {
      if (e.kind != WatchEventKind::kRotationDue) continue;
      ++n;
      EXPECT_TRUE(e.credential.has_value());
      if (e.credential.has_value()) {
        EXPECT_EQ(e.credential->readiness, Readiness::kRotationDue);
        EXPECT_EQ(e.credential->version, 1);
      }
      EXPECT_TRUE(absl::StrContains(e.message, "rotation period"));
      EXPECT_FALSE(absl::StrContains(e.message, kSecret));
    }
    return n;
  };
  ASSERT_EQ(Grant(AwsNeed("n1")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 1);
  ASSERT_EQ(Grant(AwsNeed("n2")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 1);  // Same version: not again.
  // Not again after a restart either.
  requests_.reset();
  OpenAll();
  events_.clear();
  WatchAll();
  Attach("s1");
  ASSERT_EQ(Grant(AwsNeed("n3")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 0);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "credential.rotation_due"),
            1);
}

TEST_F(RequestManagerTest, RedisFormSaysTheBrokerGeneratesThePassword) {
  Attach("s1");
  Need n;
  n.need_id = "r1";
  n.provider = "redis-cloud";
  n.action = "use Redis Cloud";
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, n);
  ASSERT_EQ(u.state, RequestState::kNeedsInput);
  absl::StatusOr<Form> form = requests_->GetForm(u.request_id, "", "");
  ASSERT_TRUE(form.ok());
  bool says = false;
  for (const std::string& note : form->notes) {
    says |= absl::StrContains(note, "generate") &&
            absl::StrContains(note, "database_password");
  }
  EXPECT_TRUE(says);
  ApproveInput in;
  in.request_id = u.request_id;
  in.values.emplace("account_key", SecretBytes(std::string(50, 'a')));
  in.values.emplace("user_key", SecretBytes(std::string(50, 'b')));
  in.generate = {"database_password"};
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  ASSERT_TRUE(r.ok()) << r.status();
  const NeedUpdate& g = updates_["s1"].back();
  ASSERT_TRUE(g.grant.has_value());
  EXPECT_EQ(g.grant->values.at("database_password").size(), 32u);
}

// The per-session bound counts only that session's open needs, including
// for session keys that are prefixes of one another.
TEST_F(RequestManagerTest, OpenNeedsAreBoundedPerSession) {
  StoreAws();
  for (const std::string s : {"s", "s1", "t"}) Attach(s);
  const int limit = 64;  // RequestOptions::max_open_per_session's default.
  for (int i = 0; i < limit; ++i) {
    ASSERT_TRUE(
        requests_->SubmitNeed("s", agent_, AwsNeed(absl::StrCat("n", i))).ok());
  }
  absl::StatusOr<NeedUpdate> over =
      requests_->SubmitNeed("s", agent_, AwsNeed("one-more"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(over.status().message(),
                                "already has 64 needs waiting"))
      << over.status();
  // Repeating a need that is already open is not a new one.
  EXPECT_TRUE(requests_->SubmitNeed("s", agent_, AwsNeed("n7")).ok());
  // Other sessions (one whose key starts with this one's) are not affected.
  EXPECT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  EXPECT_TRUE(requests_->SubmitNeed("t", agent_, AwsNeed("n1")).ok());
  // A cancelled need frees a place.
  ASSERT_TRUE(requests_->CancelNeed("s", "n3", agent_).ok());
  EXPECT_TRUE(requests_->SubmitNeed("s", agent_, AwsNeed("one-more")).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s", agent_, AwsNeed("two-more")).status().code(),
      absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace credbroker
