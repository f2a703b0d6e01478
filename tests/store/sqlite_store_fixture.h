// The SqliteStore tests' fixture (a fresh store in a temporary directory,
// raw SQL beside it) and the records they write.
#ifndef CREDBROKER_TESTS_STORE_SQLITE_STORE_FIXTURE_H_
#define CREDBROKER_TESTS_STORE_SQLITE_STORE_FIXTURE_H_

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/store/sqlite_store.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace testing {

inline std::string SealedFor(absl::string_view provider,
                             absl::string_view profile, int64_t version) {
  return absl::StrCat("sealed:", provider, "/", profile, "/", version,
                      std::string("\0\xff", 2));
}

// A SealFn that records the version it was asked for.
inline Store::SealFn FakeSeal(std::string provider, std::string profile,
                              int64_t* seen = nullptr) {
  return [=](int64_t version)
             -> absl::StatusOr<std::pair<std::string, std::string>> {
    if (seen != nullptr) *seen = version;
    return std::make_pair(SealedFor(provider, profile, version),
                          absl::StrCat("fp", version));
  };
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/credbroker.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::string cmd = absl::StrCat("rm -rf '", dir_, "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  CredentialRecord Put(const std::string& provider, const std::string& profile,
                       absl::Duration rotation = absl::ZeroDuration()) {
    absl::StatusOr<CredentialRecord> r = store_->PutCredential(
        provider, profile, rotation, FakeSeal(provider, profile));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CredentialRecord{};
  }

  // Runs `sql` on the database file through a separate raw connection.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  std::string RawQuery(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
  }

  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 0777;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

// An audit hash that shows the chain: "h<sequence><kind><<prev_hash>".
inline std::string ChainHash(const AuditRecord& e) {
  return absl::StrCat("h", e.sequence, e.kind, "<", e.prev_hash);
}

inline AuditRecord Event(absl::string_view kind) {
  AuditRecord e;
  e.time = absl::FromUnixMicros(1700000000000001);
  e.kind = std::string(kind);
  e.role = "approver";
  e.request_id = "r-1";
  e.outcome = "ok";
  return e;
}

inline RequestRecord Request(absl::string_view id, absl::Time created_at) {
  RequestRecord r;
  r.request_id = std::string(id);
  r.session_key = "session-1";
  r.need_id = absl::StrCat("need-", id);
  r.provider = "aws";
  r.profile = "default";
  r.action = "deploy to AWS in us-east-1";
  r.created_at = created_at;
  r.expires_at = created_at + absl::Minutes(5);
  return r;
}

inline GrantRecord Grant(absl::string_view id, absl::Time created_at,
                         absl::Time expires_at) {
  GrantRecord g;
  g.grant_id = std::string(id);
  g.request_id = "r-1";
  g.session_key = "session-1";
  g.provider = "aws";
  g.profile = "default";
  g.action = "deploy";
  g.credential_version = 3;
  g.scope = 1;
  g.created_at = created_at;
  g.expires_at = expires_at;
  return g;
}

inline void ExpectSameRequest(const RequestRecord& a, const RequestRecord& b) {
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.session_key, b.session_key);
  EXPECT_EQ(a.need_id, b.need_id);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.requested_ttl, b.requested_ttl);
  EXPECT_EQ(a.agent_peer, b.agent_peer);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.missing_fields, b.missing_fields);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.decided_at, b.decided_at);
  EXPECT_EQ(a.decision, b.decision);
  EXPECT_EQ(a.grant_id, b.grant_id);
}

inline void ExpectSameGrant(const GrantRecord& a, const GrantRecord& b) {
  EXPECT_EQ(a.grant_id, b.grant_id);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.session_key, b.session_key);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.credential_version, b.credential_version);
  EXPECT_EQ(a.scope, b.scope);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.end_reason, b.end_reason);
}

inline std::vector<std::string> GrantIds(
    const std::vector<GrantRecord>& grants) {
  std::vector<std::string> ids;
  for (const GrantRecord& g : grants) ids.push_back(g.grant_id);
  return ids;
}

inline std::vector<std::string> RequestIds(
    const std::vector<RequestRecord>& requests) {
  std::vector<std::string> ids;
  for (const RequestRecord& r : requests) ids.push_back(r.request_id);
  return ids;
}

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_STORE_SQLITE_STORE_FIXTURE_H_
