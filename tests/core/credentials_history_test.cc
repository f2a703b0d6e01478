// CredentialManager's changes and their audit events: each change is
// written with its event in one store transaction, so neither lands alone.
#include <stdlib.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "broker/core/audit.h"
#include "broker/core/credentials.h"
#include "broker/crypto/crypto.h"
#include "broker/store/forwarding_store.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

constexpr char kKeyId[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// A real store that counts separate audit appends and, with `break_audit`,
// makes the audit event a change carries fail inside the change's
// transaction (no hash function: the store refuses the event).
class AuditCheckingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool break_audit = false;
  int separate_appends = 0;

  absl::StatusOr<CredentialRecord> PutCredential(
      absl::string_view provider, absl::string_view profile,
      absl::Duration rotation_period, const SealFn& seal,
      const AuditOfFn& audit_of, const AuditHashFn& hash_fn) override {
    return ForwardingStore::PutCredential(provider, profile, rotation_period,
                                          seal, audit_of,
                                          break_audit ? nullptr : hash_fn);
  }
  absl::StatusOr<int64_t> DeleteCredential(
      absl::string_view provider, absl::string_view profile,
      const DeleteAuditFn& audit_of, const AuditHashFn& hash_fn) override {
    return ForwardingStore::DeleteCredential(provider, profile, audit_of,
                                             break_audit ? nullptr : hash_fn);
  }
  absl::Status WriteFlow(const FlowWrite& write,
                         const AuditHashFn& hash_fn) override {
    return ForwardingStore::WriteFlow(write, break_audit ? nullptr : hash_fn);
  }
  absl::StatusOr<AuditRecord> AppendAudit(AuditRecord event,
                                          const AuditHashFn& hash_fn) override {
    ++separate_appends;
    return ForwardingStore::AppendAudit(std::move(event), hash_fn);
  }
};

class CredentialChangeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbhist.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto inner =
        OpenSqliteStore(dir_ + "/credbroker.db", [this] { return now_; });
    ASSERT_TRUE(inner.ok()) << inner.status();
    store_ = std::make_unique<AuditCheckingStore>(std::move(*inner));
    Clock clock = [this] { return now_; };
    audit_ = std::make_unique<AuditLog>(store_.get(), &sealer_, clock);
    manager_ = std::make_unique<CredentialManager>(store_.get(), &sealer_,
                                                   &ProviderRegistry::Default(),
                                                   clock, audit_.get());
    approver_.role = "approver";
    approver_.peer = "unix:credctl";
  }
  void TearDown() override {
    manager_.reset();
    audit_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  PutCredentialInput Aws() {
    PutCredentialInput in;
    in.provider = "aws";
    in.values.emplace("access_key_id", SecretBytes(kKeyId));
    in.values.emplace("secret_access_key", SecretBytes(kSecret));
    return in;
  }
  std::vector<AuditRecord> Events() {
    absl::StatusOr<AuditPage> page = audit_->List({}, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->events : std::vector<AuditRecord>();
  }

  std::string dir_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  Sealer sealer_{NewDataKey()};
  std::unique_ptr<AuditCheckingStore> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<CredentialManager> manager_;
  Caller approver_;
};

TEST_F(CredentialChangeAuditTest, PutWritesItsEventInTheVersionsTransaction) {
  absl::StatusOr<PutCredentialResult> put = manager_->Put(Aws(), approver_);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(store_->separate_appends, 0);
  std::vector<AuditRecord> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "credential.put");
  EXPECT_EQ(events[0].role, "approver");
  EXPECT_EQ(events[0].peer, "unix:credctl");
  EXPECT_EQ(events[0].profile, "default");
  EXPECT_EQ(events[0].outcome, "ok");
  EXPECT_EQ(events[0].detail,
            "version 1, fingerprint " + put->credential.fingerprint);
  EXPECT_FALSE(absl::StrContains(events[0].detail, kSecret));

  store_->break_audit = true;
  EXPECT_FALSE(manager_->Put(Aws(), approver_).ok());
  store_->break_audit = false;
  EXPECT_EQ(manager_->Get("aws", "", 0)->version, 1);  // Nothing stored.
}

TEST_F(CredentialChangeAuditTest, DeleteIsAuditedInItsOwnTransaction) {
  ASSERT_TRUE(manager_->Put(Aws(), approver_).ok());
  ASSERT_TRUE(manager_->Put(Aws(), approver_).ok());

  // The event cannot be written: the versions stay.
  store_->break_audit = true;
  EXPECT_FALSE(manager_->Delete("aws", "", approver_).ok());
  store_->break_audit = false;
  ASSERT_TRUE(manager_->Get("aws", "", 0).ok());
  for (const AuditRecord& e : Events()) {
    EXPECT_FALSE(e.kind == "credential.delete" && e.outcome == "ok");
  }

  const int appends_before = store_->separate_appends;
  absl::StatusOr<int64_t> removed = manager_->Delete("aws", "", approver_);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(store_->separate_appends, appends_before);  // No second write.
  const AuditRecord last = Events().back();
  EXPECT_EQ(last.kind, "credential.delete");
  EXPECT_EQ(last.outcome, "ok");
  EXPECT_EQ(last.role, "approver");
  EXPECT_EQ(last.profile, "default");
  EXPECT_EQ(last.detail, "2 versions removed");
  EXPECT_TRUE(audit_->Verify().ok());
}

TEST_F(CredentialChangeAuditTest, RefusedChangesAreAuditedWithTheirCode) {
  EXPECT_EQ(manager_->Delete("aws", "", approver_).status().code(),
            absl::StatusCode::kNotFound);
  PutCredentialInput bad;
  bad.provider = "aws";
  bad.values.emplace("access_key_id", SecretBytes("nope"));
  EXPECT_EQ(manager_->Put(std::move(bad), approver_).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<AuditRecord> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, "credential.delete");
  EXPECT_EQ(events[0].outcome, "NOT_FOUND");
  EXPECT_EQ(events[1].kind, "credential.put");
  EXPECT_EQ(events[1].outcome, "INVALID_ARGUMENT");
}

TEST_F(CredentialChangeAuditTest, RollbackAndDefaultProfileCarryTheirEvents) {
  ASSERT_TRUE(manager_->Put(Aws(), approver_).ok());
  ASSERT_TRUE(manager_->Put(Aws(), approver_).ok());
  absl::StatusOr<RollbackResult> rolled =
      manager_->Rollback("aws", "", 1, approver_);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  ASSERT_TRUE(manager_->SetDefaultProfile("aws", "prod", approver_).ok());
  EXPECT_EQ(store_->separate_appends, 0);
  std::vector<AuditRecord> events = Events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].kind, "credential.rollback");
  EXPECT_EQ(events[2].detail, "version 1 restored as version 3, fingerprint " +
                                  rolled->credential.fingerprint);
  EXPECT_EQ(events[3].kind, "credential.default");
  EXPECT_EQ(events[3].profile, "prod");
  EXPECT_EQ(events[3].detail, "default profile default -> prod");

  // A default whose event cannot be written is not set.
  store_->break_audit = true;
  EXPECT_FALSE(manager_->SetDefaultProfile("aws", "other", approver_).ok());
  store_->break_audit = false;
  EXPECT_EQ(*manager_->DefaultProfile("aws"), "prod");
}

}  // namespace
}  // namespace credbroker
