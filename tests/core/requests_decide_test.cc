// RequestManager::Approve with values (requests_decide.cc): the new
// credential version, the decision, the grant and their audit events are
// one transaction; fields left empty are filled in from the need and the
// provider's defaults.
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/core/requests.h"
#include "broker/store/spilling_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"
#include "tests/core/forwarding_store.h"

namespace credbroker {
namespace {

constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kKeyId2[] = "AKIAI44QH8DHBEXAMPLE";
constexpr char kSecret2[] = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

// A real store that records the flow writes it is given, and can fail them
// (`fail_flow`, as a full disk would) or store another version of the same
// credential just before one (`put_first`, as a concurrent PutCredential).
class RecordingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail_flow = false;
  bool put_first = false;
  int credential_puts = 0;
  std::vector<FlowWrite> flows;

  absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of, const AuditHashFn& hash_fn) override {
    ++credential_puts;
    return ForwardingStore::PutCredential(provider, profile, rotation_period,
                                          seal, audit_of, hash_fn);
  }
  absl::Status WriteFlow(const FlowWrite& w, const AuditHashFn& h) override {
    if (fail_flow) return absl::ResourceExhaustedError("disk full (test)");
    if (put_first && w.credential.has_value()) {
      put_first = false;
      const CredentialRecord& c = *w.credential;
      absl::StatusOr<CredentialRecord> other = ForwardingStore::PutCredential(
          c.provider, c.profile, absl::ZeroDuration(), [&c](int64_t) {
            return absl::StatusOr<std::pair<std::string, std::string>>(
                std::make_pair(c.sealed, std::string("other")));
          });
      if (!other.ok()) return other.status();
    }
    flows.push_back(w);
    return ForwardingStore::WriteFlow(w, h);
  }
};

class ApproveWithValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbdecide.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto inner =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(inner.ok()) << inner.status();
    store_ = std::make_unique<RecordingStore>(std::move(*inner));
    Clock clock = [this] { return now_; };
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_, clock);
    credentials_ = std::make_unique<CredentialManager>(
        store_.get(), &sealer_, &ProviderRegistry::Default(), clock,
        audit_.get());
    spill_path_ = dir_ + "/spill.db";
    SpillOptions spill;
    spill.open = [this](bool create) -> absl::StatusOr<std::unique_ptr<Store>> {
      if (!create && access(spill_path_.c_str(), F_OK) != 0)
        return absl::NotFoundError("no spill");
      return OpenSqliteStore(spill_path_, [this] { return now_; });
    };
    spill.remove = [this] {
      for (const char* suffix : {"", "-wal", "-shm"})
        unlink((spill_path_ + suffix).c_str());
      return absl::OkStatus();
    };
    // The request manager writes through the spill, as the daemon wires it.
    absl::StatusOr<std::unique_ptr<SpillingStore>> flow =
        SpillingStore::Open(store_.get(), std::move(spill), clock);
    ASSERT_TRUE(flow.ok()) << flow.status();
    flow_store_ = *std::move(flow);
    requests_ = std::make_unique<RequestManager>(
        flow_store_.get(), credentials_.get(), audit_.get(), &sealer_, clock,
        RequestOptions());
    agent_.role = "agent";
    agent_.peer = "unix:agent";
    agent_.pid = 100;
    agent_.start_time = 1100;
    approver_.role = "approver";
    approver_.peer = "unix:ide";
    approver_.pid = 400;
    approver_.start_time = 1400;
    ASSERT_TRUE(requests_
                    ->AttachSession(
                        "s1", agent_,
                        [this](const NeedUpdate& u) { updates_.push_back(u); })
                    .ok());
    requests_->Watch([this](const WatchEvent& e) { events_.push_back(e); });
  }
  void TearDown() override {
    requests_.reset();
    flow_store_.reset();
    credentials_.reset();
    audit_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  void StoreAws() {
    PutCredentialInput in;
    in.provider = "aws";
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    in.values.emplace("region", SecretBytes("eu-central-1"));
    ASSERT_TRUE(credentials_->Put(std::move(in), approver_).ok());
  }
  std::string Ask(const std::string& need_id,
                  std::vector<std::pair<std::string, std::string>> context) {
    Need n;
    n.need_id = need_id;
    n.provider = "aws";
    n.action = "deploy to AWS";
    n.context = std::move(context);
    absl::StatusOr<NeedUpdate> u = requests_->SubmitNeed("s1", agent_, n);
    EXPECT_TRUE(u.ok()) << u.status();
    return u.ok() ? u->request_id : "";
  }
  absl::StatusOr<ApproveResult> ApproveKeys(const std::string& request_id,
                                            const std::string& region = "") {
    ApproveInput in;
    in.request_id = request_id;
    in.values.emplace("access_key_id", SecretBytes(kKeyId2));
    in.values.emplace("secret_access_key", SecretBytes(kSecret2));
    if (!region.empty()) in.values.emplace("region", SecretBytes(region));
    return requests_->Approve(std::move(in), approver_);
  }
  std::vector<std::string> AuditKinds() {
    std::vector<std::string> kinds;
    absl::StatusOr<AuditPage> page = audit_->List({}, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const AuditRecord& e : page->events) kinds.push_back(e.kind);
    }
    return kinds;
  }
  int64_t Versions() {
    absl::StatusOr<CredentialHistory> h = credentials_->ListVersions("aws", "");
    return h.ok() ? static_cast<int64_t>(h->versions.size()) : 0;
  }
  size_t Grants() {
    ListGrantsOptions all;
    all.include_ended = true;
    all.now = now_;
    absl::StatusOr<std::vector<GrantRecord>> grants =
        requests_->ListGrants(all);
    EXPECT_TRUE(grants.ok()) << grants.status();
    return grants.ok() ? grants->size() : 0;
  }
  std::string GrantedValue(const std::string& field) {
    if (updates_.empty() || !updates_.back().grant.has_value()) return "";
    auto it = updates_.back().grant->values.find(field);
    return it == updates_.back().grant->values.end()
               ? ""
               : std::string(it->second.Reveal());
  }

  std::string dir_;
  std::string spill_path_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<RecordingStore> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<CredentialManager> credentials_;
  std::unique_ptr<SpillingStore> flow_store_;  // Over store_.
  std::unique_ptr<RequestManager> requests_;
  Caller agent_;
  Caller approver_;
  std::vector<NeedUpdate> updates_;
  std::vector<WatchEvent> events_;
};

TEST_F(ApproveWithValuesTest, TheVersionCommitsWithTheDecisionAndTheGrant) {
  StoreAws();
  const std::string id = Ask("n1", {});
  const int puts_before = store_->credential_puts;
  absl::StatusOr<ApproveResult> approved = ApproveKeys(id);
  ASSERT_TRUE(approved.ok()) << approved.status();

  // One store write holds all of it: nothing went through PutCredential.
  EXPECT_EQ(store_->credential_puts, puts_before);
  ASSERT_EQ(store_->flows.size(), 2u);  // The request, then the decision.
  const FlowWrite& decision = store_->flows[1];
  ASSERT_TRUE(decision.credential.has_value());
  EXPECT_EQ(decision.credential->version, 2);
  ASSERT_EQ(decision.grants.size(), 1u);
  ASSERT_EQ(decision.requests.size(), 1u);
  std::vector<std::string> kinds;
  for (const AuditRecord& e : decision.audit) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{
                       "credential.put", "request.approved", "grant.created"}));

  // The grant names the version that transaction stored, and carries it.
  EXPECT_EQ(decision.grants[0].credential_version, 2);
  absl::StatusOr<CredentialSummary> current = credentials_->Get("aws", "", 0);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->version, 2);
  ASSERT_FALSE(updates_.empty());
  EXPECT_EQ(updates_.back().state, RequestState::kGranted);
  EXPECT_EQ(updates_.back().grant->record.credential_version, 2);
  EXPECT_EQ(GrantedValue("access_key_id"), kKeyId2);
  EXPECT_EQ(GrantedValue("region"), "eu-central-1");  // Kept from version 1.
  EXPECT_EQ(AuditKinds(),
            (std::vector<std::string>{"credential.put", "request.created",
                                      "credential.put", "request.approved",
                                      "grant.created"}));
  EXPECT_TRUE(audit_->Verify().ok());
}

TEST_F(ApproveWithValuesTest, AFailedCommitStoresAndReleasesNothing) {
  StoreAws();
  const std::string id = Ask("n1", {});
  const std::vector<std::string> kinds_before = AuditKinds();
  store_->fail_flow = true;
  absl::StatusOr<ApproveResult> approved = ApproveKeys(id);
  EXPECT_EQ(approved.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StrContains(approved.status().message(), "nothing was released"))
      << approved.status();
  store_->fail_flow = false;

  EXPECT_EQ(Versions(), 1);        // No new version,
  EXPECT_EQ(Grants(), 0u);         // no grant,
  ASSERT_EQ(updates_.size(), 1u);  // nothing sent to the agent,
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);  // still pending,
  EXPECT_EQ(AuditKinds(), kinds_before);  // and no orphan audit event.
  // A credential version is never spilled, so no spill was opened for it.
  EXPECT_NE(access(spill_path_.c_str(), F_OK), 0);

  ASSERT_TRUE(ApproveKeys(id).ok());
  EXPECT_EQ(Versions(), 2);
  EXPECT_EQ(Grants(), 1u);
}

TEST_F(ApproveWithValuesTest, ValuesAreRefusedWhileDecisionsGoToTheSpill) {
  StoreAws();
  const std::string first = Ask("n1", {});
  const std::string second = Ask("n2", {});
  store_->fail_flow = true;
  ApproveInput stored_values;
  stored_values.request_id = first;
  ASSERT_TRUE(requests_->Approve(stored_values, approver_).ok());
  ASSERT_EQ(access(spill_path_.c_str(), F_OK), 0);  // Spilled.
  store_->fail_flow = false;  // Rows wait in the spill: they go first.

  absl::StatusOr<ApproveResult> approved = ApproveKeys(second);
  EXPECT_EQ(approved.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StrContains(approved.status().message(), "new credential values"))
      << approved.status();
  EXPECT_EQ(Versions(), 1);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_EQ(updates_.back().request_id, first);  // Only the first granted.
}

TEST_F(ApproveWithValuesTest, AVersionStoredMeanwhileAbortsTheApproval) {
  StoreAws();
  const std::string id = Ask("n1", {});
  store_->put_first = true;
  absl::StatusOr<ApproveResult> approved = ApproveKeys(id);
  EXPECT_EQ(approved.status().code(), absl::StatusCode::kAborted)
      << approved.status();
  EXPECT_EQ(Versions(), 2);  // Only the other writer's.
  EXPECT_EQ(Grants(), 0u);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);

  ASSERT_TRUE(ApproveKeys(id).ok());  // Approving again works.
  EXPECT_EQ(updates_.back().grant->record.credential_version, 3);
}

TEST_F(ApproveWithValuesTest, EmptyFieldsTakeTheNeedsContextThenTheDefault) {
  // No credential yet: the need asks for one in eu-west-1.
  const std::string in_eu = Ask("n1", {{"region", "eu-west-1"}});
  ASSERT_TRUE(ApproveKeys(in_eu).ok());
  EXPECT_EQ(GrantedValue("region"), "eu-west-1");
  absl::StatusOr<CredentialManager::StoredValues> stored =
      credentials_->GetValues("aws", "", 0);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(stored->values.at("region").Reveal() == "eu-west-1");

  // The approver's own value wins over the need's.
  ASSERT_TRUE(credentials_->Delete("aws", "", approver_).ok());
  const std::string typed = Ask("n2", {{"region", "eu-west-1"}});
  ASSERT_TRUE(ApproveKeys(typed, "ap-south-1").ok());
  EXPECT_EQ(GrantedValue("region"), "ap-south-1");

  // Neither: the provider's default region.
  ASSERT_TRUE(credentials_->Delete("aws", "", approver_).ok());
  const std::string plain = Ask("n3", {});
  ASSERT_TRUE(ApproveKeys(plain).ok());
  EXPECT_EQ(GrantedValue("region"), "us-east-1");
}

TEST_F(ApproveWithValuesTest, TheAgentsContextNeverFillsASecretField) {
  const std::string id =
      Ask("n1", {{"secret_access_key", kSecret}, {"region", "eu-west-1"}});
  ApproveInput in;
  in.request_id = id;
  in.values.emplace("access_key_id", SecretBytes(kKeyId));
  absl::StatusOr<ApproveResult> approved =
      requests_->Approve(std::move(in), approver_);
  EXPECT_EQ(approved.status().code(), absl::StatusCode::kInvalidArgument)
      << approved.status();
  EXPECT_EQ(Versions(), 0);
  EXPECT_EQ(requests_->PendingRequests().size(), 1u);
}

TEST_F(ApproveWithValuesTest, AGrantedRequestListsNoMissingFields) {
  const std::string id = Ask("n1", {});
  ASSERT_EQ(updates_.back().state, RequestState::kNeedsInput);
  ASSERT_FALSE(updates_.back().missing_fields.empty());
  ASSERT_TRUE(ApproveKeys(id).ok());
  EXPECT_TRUE(updates_.back().missing_fields.empty());
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.back().kind, WatchEventKind::kResolved);
  EXPECT_TRUE(events_.back().request.record.missing_fields.empty());
  // The need sent again gets the decision, with nothing missing either.
  Need again;
  again.need_id = "n1";
  again.provider = "aws";
  again.action = "deploy to AWS";
  absl::StatusOr<NeedUpdate> u = requests_->SubmitNeed("s1", agent_, again);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->state, RequestState::kGranted);
  EXPECT_TRUE(u->missing_fields.empty());
}

}  // namespace
}  // namespace credbroker
