// SqliteStore: the approval flow's rows (requests, grants, standing
// approvals, bindings) and WriteFlow.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/sqlite_store_fixture.h"

namespace credbroker {
namespace testing {
namespace {

using ::testing::HasSubstr;

TEST_F(SqliteStoreTest, RequestRoundTripsEveryField) {
  RequestRecord open = Request("r-odd", absl::FromUnixMicros(1700000000123456));
  // Separators, digits, NULs, invalid UTF-8 and empty strings all survive.
  open.context = {{"region", "us-east-1"},
                  {std::string("k\0:3:", 5), std::string("\xff\0v", 3)},
                  {"", ""},
                  {"12:", "0:"},
                  {"cluster", std::string(3000, 'c')}};
  open.missing_fields = {"api_key", "", std::string("\0\xfe", 2), "4:abcd"};
  open.session_key = std::string("sess\0ion", 8);
  open.action = "deploy \xe2\x9c\x93";
  open.requested_ttl = absl::Microseconds(90 * 60 * 1000000LL + 7);
  open.agent_peer = "pid=42 uid=1000";
  open.state = 3;
  open.expires_at = absl::InfiniteFuture();
  // Decided, with both infinities and no context at all.
  RequestRecord decided = Request("r-inf", absl::InfinitePast());
  decided.expires_at = absl::InfiniteFuture();
  decided.decided_at = absl::FromUnixMicros(-5);  // Before the epoch.
  decided.requested_ttl = absl::InfiniteDuration();
  decided.decision = "denied: not today";
  decided.grant_id = "g-none";
  FlowWrite write;
  write.requests = {open, decided};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "before reopen" : "after reopen");
    absl::StatusOr<RequestRecord> got = store_->GetRequest("r-odd");
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameRequest(*got, open);
    EXPECT_EQ(got->decided_at, absl::InfinitePast());
    got = store_->GetRequest("r-inf");
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameRequest(*got, decided);
    EXPECT_EQ(got->created_at, absl::InfinitePast());
    EXPECT_EQ(got->expires_at, absl::InfiniteFuture());
    EXPECT_TRUE(got->context.empty());
    Reopen();
  }

  absl::StatusOr<RequestRecord> missing = store_->GetRequest("r-missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no request r-missing"));
}

TEST_F(SqliteStoreTest, RequestsUpsertAndListOldestFirst) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  FlowWrite write;
  // Same created_at for r-b and r-a: request_id breaks the tie.
  write.requests = {Request("r-c", t0 + absl::Seconds(2)), Request("r-b", t0),
                    Request("r-a", t0)};
  // A need_id may come back in the same session once decided.
  write.requests[0].need_id = write.requests[1].need_id;
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  EXPECT_THAT(RequestIds(*store_->ListRequests(false)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));
  EXPECT_THAT(RequestIds(*store_->ListRequests(true)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));

  // Deciding r-b updates it in place.
  RequestRecord decided = Request("r-b", t0);
  decided.state = 4;
  decided.decided_at = t0 + absl::Seconds(1);
  decided.decision = "approved";
  decided.grant_id = "g-1";
  decided.context = {{"region", "eu-west-1"}};
  FlowWrite decide;
  decide.requests = {decided};
  ASSERT_TRUE(store_->WriteFlow(decide, ChainHash).ok());
  absl::StatusOr<RequestRecord> got = store_->GetRequest("r-b");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameRequest(*got, decided);
  EXPECT_THAT(RequestIds(*store_->ListRequests(false)),
              ::testing::ElementsAre("r-a", "r-b", "r-c"));
  EXPECT_THAT(RequestIds(*store_->ListRequests(true)),
              ::testing::ElementsAre("r-a", "r-c"));
  EXPECT_EQ(RawQuery("SELECT count(*) FROM requests"), "3");
}

TEST_F(SqliteStoreTest, GrantRoundTripsAndUpserts) {
  GrantRecord active = Grant("g-1", absl::FromUnixMicros(1700000000654321),
                             absl::InfiniteFuture());
  active.session_key = std::string("s\0\xff", 3);
  active.credential_version = int64_t{1} << 40;
  active.scope = -2;
  FlowWrite write;
  write.grants = {active};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  absl::StatusOr<GrantRecord> got = store_->GetGrant("g-1");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameGrant(*got, active);
  EXPECT_EQ(got->ended_at, absl::InfiniteFuture());

  GrantRecord released = active;
  released.ended_at = active.created_at + absl::Microseconds(1);
  released.end_reason = "released";
  write.grants = {released};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  Reopen();
  got = store_->GetGrant("g-1");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameGrant(*got, released);
  EXPECT_EQ(RawQuery("SELECT count(*) FROM grants"), "1");

  absl::StatusOr<GrantRecord> missing = store_->GetGrant("g-missing");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no grant g-missing"));
}

TEST_F(SqliteStoreTest, ListGrantsFiltersAndPages) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  const absl::Time now = t0 + absl::Hours(1);
  FlowWrite write;
  write.grants = {
      Grant("g-active-b", t0, now + absl::Minutes(1)),
      Grant("g-active-a", t0, absl::InfiniteFuture()),
      Grant("g-expired", t0 + absl::Seconds(1), now),  // Expires at `now`.
      Grant("g-released", t0 + absl::Seconds(2), now + absl::Hours(1)),
      Grant("g-old", absl::InfinitePast(), now + absl::Hours(1)),
      Grant("g-late", t0 + absl::Seconds(3), now + absl::Seconds(1)),
  };
  write.grants[3].ended_at = now - absl::Minutes(1);
  write.grants[3].end_reason = "released";
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());

  ListGrantsOptions active;
  active.now = now;
  EXPECT_THAT(
      GrantIds(*store_->ListGrants(active)),
      ::testing::ElementsAre("g-old", "g-active-a", "g-active-b", "g-late"));
  ListGrantsOptions all = active;
  all.include_ended = true;
  EXPECT_THAT(GrantIds(*store_->ListGrants(all)),
              ::testing::ElementsAre("g-old", "g-active-a", "g-active-b",
                                     "g-expired", "g-released", "g-late"));

  // Pages of two, resuming after the last (created_at, grant_id) seen;
  // the cursor splits a tie on created_at.
  std::vector<std::string> seen;
  ListGrantsOptions page = all;
  page.limit = 2;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::vector<GrantRecord>> got = store_->ListGrants(page);
    ASSERT_TRUE(got.ok()) << got.status();
    if (got->empty()) break;
    EXPECT_LE(got->size(), 2u);
    for (const GrantRecord& g : *got) seen.push_back(g.grant_id);
    page.after_created_at = got->back().created_at;
    page.after_grant_id = got->back().grant_id;
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre("g-old", "g-active-a", "g-active-b",
                                     "g-expired", "g-released", "g-late"));
  ListGrantsOptions after_tie = active;
  after_tie.after_created_at = t0;
  after_tie.after_grant_id = "g-active-a";
  EXPECT_THAT(GrantIds(*store_->ListGrants(after_tie)),
              ::testing::ElementsAre("g-active-b", "g-late"));

  // Later, fewer are active.
  ListGrantsOptions later = active;
  later.now = now + absl::Minutes(30);
  EXPECT_THAT(GrantIds(*store_->ListGrants(later)),
              ::testing::ElementsAre("g-old", "g-active-a"));

  ListGrantsOptions bad = active;
  bad.limit = 0;
  EXPECT_EQ(store_->ListGrants(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, StandingApprovalsRoundTripOldestFirst) {
  StandingRecord newer;
  newer.id = "s-2";
  newer.provider = "github";
  newer.profile = "bot";
  newer.action_pattern = "push to *";
  newer.created_at = absl::FromUnixMicros(1700000000000002);
  newer.expires_at = absl::InfiniteFuture();
  StandingRecord older = newer;
  older.id = "s-1";
  older.provider = "aws";
  older.action_pattern = std::string("deploy\0*", 8);
  older.created_at = absl::InfinitePast();
  older.expires_at = absl::FromUnixSeconds(1800000000);
  FlowWrite write;
  write.standing = {newer, older};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  older.revoked = true;
  write.standing = {older};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  Reopen();

  absl::StatusOr<std::vector<StandingRecord>> listed = store_->ListStanding();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const StandingRecord& want = i == 0 ? older : newer;
    const StandingRecord& got = (*listed)[i];
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.provider, want.provider);
    EXPECT_EQ(got.profile, want.profile);
    EXPECT_EQ(got.action_pattern, want.action_pattern);
    EXPECT_EQ(got.created_at, want.created_at);
    EXPECT_EQ(got.expires_at, want.expires_at);
    EXPECT_EQ(got.revoked, want.revoked);
  }
}

TEST_F(SqliteStoreTest, WriteFlowChainsAuditWithAppendAudit) {
  ASSERT_TRUE(store_->AppendAudit(Event("credential.put"), ChainHash).ok());
  std::vector<AuditRecord> hashed;
  auto recording_hash = [&](const AuditRecord& e) {
    hashed.push_back(e);
    return ChainHash(e);
  };
  FlowWrite write;
  write.requests = {Request("r-1", absl::FromUnixSeconds(1700000000))};
  write.audit = {Event("request.approved"), Event("grant.created")};
  ASSERT_TRUE(store_->WriteFlow(write, recording_hash).ok());
  ASSERT_EQ(hashed.size(), 2u);
  EXPECT_EQ(hashed[0].sequence, 2);
  EXPECT_EQ(hashed[0].prev_hash, "h1credential.put<");
  EXPECT_EQ(hashed[1].sequence, 3);
  EXPECT_EQ(hashed[1].prev_hash, ChainHash(hashed[0]));
  absl::StatusOr<AuditRecord> last =
      store_->AppendAudit(Event("grant.released"), ChainHash);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->sequence, 4);
  EXPECT_EQ(last->prev_hash, ChainHash(hashed[1]));

  Reopen();
  absl::StatusOr<std::vector<AuditRecord>> listed =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 4u);
  std::string prev;
  for (size_t i = 0; i < listed->size(); ++i) {
    const AuditRecord& e = (*listed)[i];
    EXPECT_EQ(e.sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ(e.prev_hash, prev);
    EXPECT_EQ(e.hash, ChainHash(e));
    prev = e.hash;
  }
  EXPECT_EQ((*listed)[1].kind, "request.approved");
  EXPECT_EQ((*listed)[1].request_id, "r-1");
  EXPECT_EQ((*listed)[1].time, absl::FromUnixMicros(1700000000000001));
}

TEST_F(SqliteStoreTest, FailedWriteFlowAppliesNothing) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  FlowWrite setup;
  setup.requests = {Request("r-1", t0)};
  setup.audit = {Event("request.added")};
  ASSERT_TRUE(store_->WriteFlow(setup, ChainHash).ok());

  // The decision, its grant, a standing rule and two audit events; the
  // second event's insert fails (a test trigger), after everything else was
  // written inside the transaction.
  RequestRecord decided = Request("r-1", t0);
  decided.decided_at = t0 + absl::Seconds(1);
  decided.decision = "approved";
  decided.grant_id = "g-1";
  StandingRecord standing;
  standing.id = "s-1";
  standing.provider = "aws";
  standing.profile = "default";
  standing.action_pattern = "*";
  FlowWrite write;
  write.requests = {decided};
  write.grants = {Grant("g-1", t0, absl::InfiniteFuture())};
  write.standing = {standing};
  write.audit = {Event("request.approved"), Event("test.fail")};
  RawExec(
      "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events"
      " WHEN NEW.kind = 'test.fail'"
      " BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END");
  absl::Status failed = store_->WriteFlow(write, ChainHash);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.message(), HasSubstr("injected audit failure"));

  auto expect_untouched = [&] {
    absl::StatusOr<RequestRecord> request = store_->GetRequest("r-1");
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_EQ(request->decided_at, absl::InfinitePast());
    EXPECT_EQ(request->grant_id, "");
    EXPECT_EQ(store_->ListRequests(true)->size(), 1u);
    EXPECT_EQ(store_->GetGrant("g-1").status().code(),
              absl::StatusCode::kNotFound);
    ListGrantsOptions all;
    all.include_ended = true;
    EXPECT_TRUE(store_->ListGrants(all)->empty());
    EXPECT_TRUE(store_->ListStanding()->empty());
    absl::StatusOr<std::vector<AuditRecord>> audit =
        store_->ListAudit(AuditQuery());
    ASSERT_TRUE(audit.ok()) << audit.status();
    ASSERT_EQ(audit->size(), 1u);
    EXPECT_EQ(audit->front().kind, "request.added");
  };
  expect_untouched();

  // Invalid parts are refused before anything is written.
  FlowWrite no_grant_id = write;
  no_grant_id.audit = {Event("request.approved")};
  no_grant_id.grants[0].grant_id = "";
  absl::Status refused = store_->WriteFlow(no_grant_id, ChainHash);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("grant id"));
  FlowWrite no_hash = no_grant_id;
  no_hash.grants[0].grant_id = "g-1";
  EXPECT_EQ(store_->WriteFlow(no_hash, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  FlowWrite no_request_id = no_hash;
  no_request_id.requests[0].request_id = "";
  EXPECT_EQ(store_->WriteFlow(no_request_id, ChainHash).code(),
            absl::StatusCode::kInvalidArgument);
  FlowWrite no_standing_id = no_hash;
  no_standing_id.standing[0].id = "";
  EXPECT_EQ(store_->WriteFlow(no_standing_id, ChainHash).code(),
            absl::StatusCode::kInvalidArgument);
  expect_untouched();
  Reopen();
  expect_untouched();

  // Without the fault the same write lands whole, chained after the first
  // event with no gap.
  RawExec("DROP TRIGGER fail_audit");
  write.audit = {Event("request.approved"), Event("grant.created")};
  ASSERT_TRUE(store_->WriteFlow(write, ChainHash).ok());
  EXPECT_TRUE(store_->ListRequests(true)->empty());
  EXPECT_TRUE(store_->GetGrant("g-1").ok());
  EXPECT_EQ(store_->ListStanding()->size(), 1u);
  absl::StatusOr<std::vector<AuditRecord>> audit =
      store_->ListAudit(AuditQuery());
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 3u);
  EXPECT_EQ((*audit)[1].sequence, 2);
  EXPECT_EQ((*audit)[1].prev_hash, (*audit)[0].hash);
}

TEST_F(SqliteStoreTest, ConcurrentFlowWritesKeepOneChain) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        FlowWrite write;
        write.grants = {Grant(absl::StrCat("g-", t, "-", i),
                              absl::FromUnixSeconds(1700000000 + i),
                              absl::InfiniteFuture())};
        write.audit = {Event("grant.created"), Event("grant.sent")};
        if (!store_->WriteFlow(write, ChainHash).ok()) ++failures;
        if (!store_->AppendAudit(Event("call.ok"), ChainHash).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ListGrantsOptions all;
  all.include_ended = true;
  all.limit = 1000;
  EXPECT_EQ(store_->ListGrants(all)->size(),
            static_cast<size_t>(kThreads * kWrites));
  AuditQuery query;
  query.limit = 1000;
  absl::StatusOr<std::vector<AuditRecord>> audit = store_->ListAudit(query);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), static_cast<size_t>(3 * kThreads * kWrites));
  std::string prev;
  for (size_t i = 0; i < audit->size(); ++i) {
    EXPECT_EQ((*audit)[i].sequence, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*audit)[i].prev_hash, prev);
    prev = (*audit)[i].hash;
  }
}

TEST_F(SqliteStoreTest, BindingsUpsertByProviderAndResource) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetBinding("aws", "prod-eu").status()));
  BindingRecord b;
  b.provider = "aws";
  b.resource = "prod-eu";
  b.profile = "default";
  b.fingerprint = "fp1";
  b.credential_version = 1;
  b.grant_id = "g-1";
  b.created_at = b.updated_at = absl::FromUnixSeconds(1700000000);
  BindingRecord gcp = b;
  gcp.provider = "gcp";
  FlowWrite w;
  w.bindings = {b, gcp};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());

  // An update keeps created_at and replaces the rest.
  b.fingerprint = "fp2";
  b.credential_version = 2;
  b.grant_id = "g-2";
  b.created_at = b.updated_at = absl::FromUnixSeconds(1700000100);
  w.bindings = {b};
  ASSERT_TRUE(store_->WriteFlow(w, nullptr).ok());
  absl::StatusOr<BindingRecord> got = store_->GetBinding("aws", "prod-eu");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->fingerprint, "fp2");
  EXPECT_EQ(got->credential_version, 2);
  EXPECT_EQ(got->grant_id, "g-2");
  EXPECT_EQ(got->created_at, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(got->updated_at, absl::FromUnixSeconds(1700000100));

  EXPECT_EQ(store_->ListBindings("")->size(), 2u);
  ASSERT_EQ(store_->ListBindings("gcp")->size(), 1u);
  EXPECT_EQ(store_->ListBindings("gcp")->at(0).fingerprint, "fp1");
  EXPECT_TRUE(store_->ListBindings("azure")->empty());

  // A binding without a resource is the caller's mistake; nothing is written.
  BindingRecord bad = b;
  bad.resource = "";
  w.bindings = {bad};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->WriteFlow(w, nullptr)));

  // Requests keep their binding note.
  FlowWrite rw;
  RequestRecord r;
  r.request_id = "r-1";
  r.binding_note = "prod-eu was created with aws/default";
  rw.requests = {r};
  ASSERT_TRUE(store_->WriteFlow(rw, nullptr).ok());
  EXPECT_EQ(store_->GetRequest("r-1")->binding_note, r.binding_note);
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
