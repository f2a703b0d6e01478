// RefusalAudit: refused calls reach the real SQLite audit log at a bounded
// rate per caller, with a summary of the rest, through a bounded queue.
#include "broker/core/refusal_audit.h"

#include <stdlib.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class RefusalAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbrefusal.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteStore(dir_ + "/credbroker.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    log_ = std::make_unique<AuditLog>(store_.get(), &sealer_,
                                      [this] { return Now(); });
  }
  void TearDown() override {
    log_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  static AuditRecord Refusal(const std::string& caller) {
    AuditRecord e;
    e.kind = "call.refused";
    e.peer = caller;
    e.action = "ListProviders";
    e.outcome = "UNAUTHENTICATED";
    return e;
  }
  // Events of `kind` in the log, by peer.
  std::map<std::string, std::vector<AuditRecord>> EventsByPeer(
      const std::string& kind) {
    AuditQuery q;
    q.kind = kind;
    q.limit = 10000;
    auto events = store_->ListAudit(q);
    EXPECT_TRUE(events.ok()) << events.status();
    std::map<std::string, std::vector<AuditRecord>> out;
    if (events.ok()) {
      for (AuditRecord& e : *events) out[e.peer].push_back(std::move(e));
    }
    return out;
  }
  RefusalAuditPolicy Policy() {
    RefusalAuditPolicy p;
    p.per_caller = 3;
    p.interval = absl::Minutes(1);
    return p;
  }

  std::string dir_;
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'800'000'000);
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(RefusalAuditTest, AStormIsRecordedAFewTimesThenSummarizedPerCaller) {
  RefusalAudit audit(
      log_.get(), [this] { return Now(); }, Policy());
  int individually = 0;
  for (int i = 0; i < 500; ++i)
    individually += audit.Refused("uid 1000", Refusal("uid 1000"));
  EXPECT_EQ(individually, 3);
  // Another caller has its own allowance.
  EXPECT_TRUE(audit.Refused("uid 65534", Refusal("uid 65534")));
  audit.Flush();
  auto refused = EventsByPeer("call.refused");
  EXPECT_EQ(refused["uid 1000"].size(), 3u);
  EXPECT_EQ(refused["uid 65534"].size(), 1u);
  auto summaries = EventsByPeer("refusals.summarized");
  ASSERT_EQ(summaries["uid 1000"].size(), 1u);
  EXPECT_TRUE(absl::StrContains(summaries["uid 1000"][0].detail,
                                "497 more refusals from uid 1000"))
      << summaries["uid 1000"][0].detail;
  EXPECT_EQ(summaries.count("uid 65534"), 0u);
  EXPECT_TRUE(log_->Verify().ok());
}

TEST_F(RefusalAuditTest, ANewIntervalGetsANewAllowanceAndTheOldSummary) {
  RefusalAudit audit(
      log_.get(), [this] { return Now(); }, Policy());
  for (int i = 0; i < 5; ++i) audit.Refused("uid 1000", Refusal("uid 1000"));
  Advance(absl::Minutes(1));
  EXPECT_TRUE(audit.Refused("uid 1000", Refusal("uid 1000")));
  audit.Flush();
  EXPECT_EQ(EventsByPeer("call.refused")["uid 1000"].size(), 4u);
  auto summaries = EventsByPeer("refusals.summarized")["uid 1000"];
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_TRUE(absl::StrContains(summaries[0].detail, "2 more refusals"))
      << summaries[0].detail;
}

// A store that holds every audit write until released: the queue fills and
// refusals are dropped and counted, and Refused never waits.
class GatedStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override {
    gate_.WaitForNotification();
    return ForwardingStore::AppendAudit(std::move(event), hash_fn);
  }
  void Open() { gate_.Notify(); }

 private:
  absl::Notification gate_;
};

TEST_F(RefusalAuditTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  log_.reset();
  auto owned = std::make_unique<GatedStore>(std::move(store_));
  GatedStore& gated = *owned;
  store_ = std::move(owned);
  AuditLog gated_log(&gated, &sealer_, [this] { return Now(); });
  RefusalAuditPolicy p = Policy();
  p.per_caller = 1000;
  p.queue_limit = 4;
  RefusalAudit audit(
      &gated_log, [this] { return Now(); }, p);
  // The writer holds one event at the gate, four wait: the rest are dropped.
  for (int i = 0; i < 50; ++i)
    audit.Refused(absl::StrCat("uid ", i), Refusal("x"));
  RefusalAudit::Counts c = audit.counts();
  EXPECT_GE(c.dropped, 50 - 5);
  EXPECT_LE(c.queued, 5);
  gated.Open();
  audit.Flush();
  auto dropped = EventsByPeer("refusals.dropped");
  ASSERT_EQ(dropped[""].size(), 1u);
  EXPECT_TRUE(absl::StrContains(dropped[""][0].detail,
                                absl::StrCat(c.dropped, " refusal")))
      << dropped[""][0].detail;
}

TEST_F(RefusalAuditTest, CallersBeyondTheLimitShareOneCount) {
  RefusalAuditPolicy p = Policy();
  p.per_caller = 1;
  p.max_callers = 2;
  RefusalAudit audit(
      log_.get(), [this] { return Now(); }, p);
  for (int i = 0; i < 10; ++i) {
    audit.Refused(absl::StrCat("ipv4:127.0.0.", i), Refusal("x"));
  }
  audit.Flush();
  auto summaries = EventsByPeer("refusals.summarized");
  ASSERT_EQ(summaries["other callers"].size(), 1u);
  EXPECT_TRUE(absl::StrContains(summaries["other callers"][0].detail,
                                "7 more refusals"))
      << summaries["other callers"][0].detail;
}

TEST_F(RefusalAuditTest, RefusedCallsAndConnectionsAreDescribedByTheCore) {
  RefusalAudit audit(
      log_.get(), [this] { return Now(); }, Policy());
  EXPECT_TRUE(audit.RefusedCall("uid 1000", "agent", "unix:pid 7",
                                "ApprovalService.Approve",
                                absl::PermissionDeniedError("agent token")));
  EXPECT_TRUE(audit.RefusedConnection("uid 1001", "uid 1001 (sh)",
                                      "only uid 1000 may connect"));
  audit.Flush();
  auto calls = EventsByPeer("call.refused");
  ASSERT_EQ(calls["unix:pid 7"].size(), 1u);
  const AuditRecord& call = calls["unix:pid 7"][0];
  EXPECT_EQ(call.role, "agent");
  EXPECT_EQ(call.action, "ApprovalService.Approve");
  EXPECT_EQ(call.outcome, "PERMISSION_DENIED");
  auto connections = EventsByPeer("connection.refused");
  ASSERT_EQ(connections["uid 1001 (sh)"].size(), 1u);
  EXPECT_EQ(connections["uid 1001 (sh)"][0].outcome, "PERMISSION_DENIED");
  EXPECT_EQ(connections["uid 1001 (sh)"][0].detail,
            "only uid 1000 may connect");
}

}  // namespace
}  // namespace credbroker
