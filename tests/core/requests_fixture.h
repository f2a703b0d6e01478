// The fixture the RequestManager tests (requests_*_test.cc) share: a
// manager over a real SQLite store, written through the spill as the daemon
// does, with an injected clock and a fake process tree.
#ifndef CREDBROKER_TESTS_CORE_REQUESTS_FIXTURE_H_
#define CREDBROKER_TESTS_CORE_REQUESTS_FIXTURE_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "broker/core/requests.h"
#include "broker/core/row_mac.h"
#include "broker/store/spilling_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/core/forwarding_store.h"

namespace credbroker {

inline constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
inline constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

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

inline Caller MakeCaller(const std::string& role, const std::string& peer,
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

}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CORE_REQUESTS_FIXTURE_H_
