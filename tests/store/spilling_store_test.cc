#include "broker/store/spilling_store.h"

#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

// A real store whose WriteFlow fails while `refuse` is set, as a full disk
// would make it; it counts the flow writes it is asked for. With
// `edit_audit`, the first audit event listed comes back edited.
class TestStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool refuse = false;
  bool edit_audit = false;
  int flow_writes = 0;

  absl::Status WriteFlow(const FlowWrite& w, const AuditHashFn& h) override {
    ++flow_writes;
    if (refuse) return absl::ResourceExhaustedError("disk full (test)");
    return ForwardingStore::WriteFlow(w, h);
  }
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& q) override {
    absl::StatusOr<std::vector<AuditRecord>> events =
        ForwardingStore::ListAudit(q);
    if (edit_audit && events.ok() && !events->empty())
      (*events)[0].detail = "edited";
    return events;
  }
};

// Chains like the audit log's hash, without a key.
std::string TestHash(const AuditRecord& e) {
  return absl::StrCat(e.sequence, "|", e.prev_hash, "|", e.kind, "|", e.detail);
}

RequestRecord Request(const std::string& id, int minute) {
  RequestRecord r;
  r.request_id = id;
  r.session_key = "s1";
  r.need_id = id;
  r.provider = "aws";
  r.profile = "default";
  r.created_at = absl::FromUnixSeconds(1'800'000'000 + 60 * minute);
  r.expires_at = r.created_at + absl::Minutes(10);
  return r;
}

AuditRecord Event(const std::string& kind) {
  AuditRecord e;
  e.kind = kind;
  e.outcome = "ok";
  return e;
}

class SpillingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cbspill.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = absl::FromUnixSeconds(1'800'000'000);
    absl::StatusOr<std::unique_ptr<Store>> primary =
        OpenSqliteStore(dir_ + "/primary.db", [this] { return now_; });
    ASSERT_TRUE(primary.ok()) << primary.status();
    primary_ = std::make_unique<TestStore>(*std::move(primary));
    options_.open =
        [this](bool create) -> absl::StatusOr<std::unique_ptr<Store>> {
      if (!create && !SpillExists()) return absl::NotFoundError("no spill");
      absl::StatusOr<std::unique_ptr<Store>> spill =
          OpenSqliteStore(SpillPath(), [this] { return now_; });
      if (!spill.ok()) return spill.status();
      auto store = std::make_unique<TestStore>(*std::move(spill));
      store->edit_audit = edit_spill_audit_;
      return store;
    };
    options_.remove = [this]() -> absl::Status {
      if (keep_spill_files_) return absl::UnavailableError("kept (test)");
      for (const char* suffix : {"", "-wal", "-shm"})
        unlink((SpillPath() + suffix).c_str());
      return absl::OkStatus();
    };
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    primary_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  // A new SpillingStore over the same primary, as after a restart.
  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<SpillingStore>> opened =
        SpillingStore::Open(primary_.get(), options_, [this] { return now_; });
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }
  std::string SpillPath() const { return dir_ + "/spill.db"; }
  bool SpillExists() const { return access(SpillPath().c_str(), F_OK) == 0; }

  absl::Status Write(const RequestRecord& r, const std::string& kind) {
    FlowWrite w;
    w.requests.push_back(r);
    w.audit.push_back(Event(kind));
    return store_->WriteFlow(w, TestHash);
  }
  SpillingStore::TakeBackChecks Checks() {
    SpillingStore::TakeBackChecks checks;
    checks.hash = TestHash;
    return checks;
  }
  std::vector<std::string> AuditKinds() {
    std::vector<std::string> kinds;
    absl::StatusOr<std::vector<AuditRecord>> events = primary_->ListAudit({});
    EXPECT_TRUE(events.ok()) << events.status();
    if (events.ok()) {
      for (const AuditRecord& e : *events) kinds.push_back(e.kind);
    }
    return kinds;
  }

  std::string dir_;
  absl::Time now_;
  std::unique_ptr<TestStore> primary_;
  SpillOptions options_;
  std::unique_ptr<SpillingStore> store_;
  bool keep_spill_files_ = false;
  bool edit_spill_audit_ = false;
};

TEST_F(SpillingStoreTest, AWriteThePrimaryRefusesGoesToTheSpillAndIsRead) {
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  EXPECT_FALSE(store_->spilling());
  primary_->refuse = true;
  RequestRecord decided = Request("r1", 0);
  decided.decided_at = now_;
  decided.decision = "denied";
  ASSERT_TRUE(Write(decided, "request.denied").ok());
  EXPECT_TRUE(store_->spilling());
  EXPECT_TRUE(SpillExists());

  // The spill's row is read over the primary's.
  absl::StatusOr<RequestRecord> read = store_->GetRequest("r1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->decision, "denied");
  absl::StatusOr<std::vector<RequestRecord>> open =
      store_->ListRequests(/*open_only=*/true);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_TRUE(open->empty());
  absl::StatusOr<RequestRecord> in_primary = primary_->GetRequest("r1");
  ASSERT_TRUE(in_primary.ok()) << in_primary.status();
  EXPECT_EQ(in_primary->decided_at, absl::InfinitePast());
}

TEST_F(SpillingStoreTest, WithoutASpillARefusedWriteFails) {
  options_ = SpillOptions();
  Reopen();
  primary_->refuse = true;
  EXPECT_EQ(Write(Request("r1", 0), "request.created").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(store_->spilling());
}

TEST_F(SpillingStoreTest, OnceRowsWaitInTheSpillFlowWritesGoThereToo) {
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  primary_->refuse = false;
  const int before = primary_->flow_writes;
  ASSERT_TRUE(Write(Request("r2", 1), "request.created").ok());
  EXPECT_EQ(primary_->flow_writes, before);
  EXPECT_TRUE(absl::IsNotFound(primary_->GetRequest("r2").status()));
  absl::StatusOr<std::vector<RequestRecord>> all =
      store_->ListRequests(/*open_only=*/false);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].request_id, "r1");
  EXPECT_EQ((*all)[1].request_id, "r2");
}

TEST_F(SpillingStoreTest, TakeBackCopiesTheSpillInOneWriteAndRemovesIt) {
  ASSERT_TRUE(Write(Request("r0", 0), "request.created").ok());
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("r1", 1), "request.created").ok());
  ASSERT_TRUE(Write(Request("r2", 2), "request.created").ok());
  EXPECT_FALSE(store_->TakeBack(Checks()).ok());  // Still refused.
  EXPECT_TRUE(store_->spilling());

  primary_->refuse = false;
  const int before = primary_->flow_writes;
  ASSERT_TRUE(store_->TakeBack(Checks()).ok());
  EXPECT_EQ(primary_->flow_writes, before + 1);
  EXPECT_FALSE(store_->spilling());
  EXPECT_FALSE(SpillExists());
  EXPECT_TRUE(primary_->GetRequest("r1").ok());
  EXPECT_TRUE(primary_->GetRequest("r2").ok());
  EXPECT_EQ(AuditKinds(),
            (std::vector<std::string>{"request.created", "request.created",
                                      "request.created"}));
  // Writes go to the primary again.
  ASSERT_TRUE(Write(Request("r3", 3), "request.created").ok());
  EXPECT_TRUE(primary_->GetRequest("r3").ok());
  EXPECT_FALSE(SpillExists());
}

TEST_F(SpillingStoreTest, TheChecksDropWhatTheyRefuseAndTheirEventsAreKept) {
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("good", 0), "request.created").ok());
  ASSERT_TRUE(Write(Request("planted", 1), "request.created").ok());
  primary_->refuse = false;
  SpillingStore::TakeBackChecks checks = Checks();
  checks.vet = [](FlowWrite& rows) {
    std::vector<AuditRecord> refused;
    for (auto it = rows.requests.begin(); it != rows.requests.end();) {
      if (it->request_id != "planted") {
        ++it;
        continue;
      }
      refused.push_back(Event("row.refused"));
      it = rows.requests.erase(it);
    }
    return refused;
  };
  ASSERT_TRUE(store_->TakeBack(checks).ok());
  EXPECT_TRUE(primary_->GetRequest("good").ok());
  EXPECT_TRUE(absl::IsNotFound(primary_->GetRequest("planted").status()));
  EXPECT_EQ(AuditKinds(),
            (std::vector<std::string>{"request.created", "request.created",
                                      "row.refused"}));
}

TEST_F(SpillingStoreTest, AnEditedSpillChainIsRecordedAtTakeBack) {
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  edit_spill_audit_ = true;
  Reopen();  // The spill left behind is read again.
  EXPECT_TRUE(store_->spilling());
  EXPECT_TRUE(store_->GetRequest("r1").ok());
  primary_->refuse = false;
  ASSERT_TRUE(store_->TakeBack(Checks()).ok());
  EXPECT_EQ(AuditKinds(), (std::vector<std::string>{
                              "request.created", "audit.spill_chain_broken"}));
}

TEST_F(SpillingStoreTest, ASpillTakenBackBeforeACrashIsRemovedNotCopiedAgain) {
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  primary_->refuse = false;
  keep_spill_files_ = true;  // As if the broker died before removing them.
  EXPECT_FALSE(store_->TakeBack(Checks()).ok());
  EXPECT_FALSE(store_->spilling());
  ASSERT_TRUE(SpillExists());
  keep_spill_files_ = false;
  Reopen();
  EXPECT_FALSE(store_->spilling());
  EXPECT_FALSE(SpillExists());
  EXPECT_EQ(AuditKinds().size(), 1u);
}

TEST_F(SpillingStoreTest, TakeBackWhenDueBacksOffWhileThePrimaryRefuses) {
  primary_->refuse = true;
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  const int before = primary_->flow_writes;
  store_->TakeBackWhenDue(Checks());  // Tries, fails: next in 250 ms.
  EXPECT_EQ(primary_->flow_writes, before + 1);
  now_ += absl::Milliseconds(100);
  store_->TakeBackWhenDue(Checks());
  EXPECT_EQ(primary_->flow_writes, before + 1);
  now_ += absl::Milliseconds(200);
  store_->TakeBackWhenDue(Checks());  // Fails again: next in 500 ms.
  EXPECT_EQ(primary_->flow_writes, before + 2);
  primary_->refuse = false;
  now_ += absl::Milliseconds(300);
  store_->TakeBackWhenDue(Checks());
  EXPECT_EQ(primary_->flow_writes, before + 2);
  now_ += absl::Milliseconds(300);
  store_->TakeBackWhenDue(Checks());
  EXPECT_FALSE(store_->spilling());
}

TEST_F(SpillingStoreTest, AGrantEndedInTheSpillIsNoLongerActive) {
  GrantRecord g;
  g.grant_id = "g1";
  g.request_id = "r1";
  g.created_at = now_;
  g.expires_at = now_ + absl::Hours(1);
  FlowWrite issue;
  issue.grants.push_back(g);
  ASSERT_TRUE(store_->WriteFlow(issue, TestHash).ok());
  primary_->refuse = true;
  g.ended_at = now_;
  g.end_reason = "released";
  FlowWrite end;
  end.grants.push_back(g);
  ASSERT_TRUE(store_->WriteFlow(end, TestHash).ok());
  ListGrantsOptions active;
  active.now = now_;
  absl::StatusOr<std::vector<GrantRecord>> listed = store_->ListGrants(active);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
  active.include_ended = true;
  listed = store_->ListGrants(active);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].end_reason, "released");
}

TEST_F(SpillingStoreTest, TheChangeMarkMovesWithASpilledWrite) {
  primary_->refuse = true;
  const std::optional<Store::ChangeMark> before = store_->CurrentChangeMark();
  ASSERT_TRUE(before.has_value());
  ASSERT_TRUE(Write(Request("r1", 0), "request.created").ok());
  EXPECT_NE(store_->CurrentChangeMark(), before);
}

}  // namespace
}  // namespace credbroker
