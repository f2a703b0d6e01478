#include "broker/core/keyring.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "broker/core/audit.h"
#include "broker/store/sqlite_store.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto().ok());
    char tmpl[] = "/tmp/cbkeys.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::unique_ptr<Store> Open() {
    auto s = OpenSqliteStore(dir_ + "/credbroker.db");
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
  std::string dir_;
};

TEST_F(KeyringTest, KeyFileStoreReopensWithTheSameKey) {
  KeySource source{dir_ + "/master.key", std::nullopt, true};
  std::string sealed;
  {
    auto store = Open();
    auto sealer = OpenDataKey(*store, source);
    ASSERT_TRUE(sealer.ok()) << sealer.status();
    sealed = (*sealer)->Seal(SecretBytes("value"), "ad");
  }
  struct stat st;
  ASSERT_EQ(stat(source.key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto store = Open();
  auto sealer = OpenDataKey(*store, source);
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  auto opened = (*sealer)->Open(sealed, "ad", "test");
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->Reveal() == "value");
}

TEST_F(KeyringTest, WrongKeyFileIsRefusedAndNothingOverwritten) {
  KeySource source{dir_ + "/master.key", std::nullopt, true};
  {
    auto store = Open();
    ASSERT_TRUE(OpenDataKey(*store, source).ok());
  }
  auto original = ReadFile(source.key_file);
  ASSERT_TRUE(original.ok());
  KeySource other{dir_ + "/other.key", std::nullopt, true};
  {
    // A key file for another store.
    auto s2 = OpenSqliteStore(dir_ + "/other.db");
    ASSERT_TRUE(OpenDataKey(**s2, other).ok());
  }
  auto store = Open();
  absl::StatusOr<std::unique_ptr<Sealer>> s = OpenDataKey(*store, other);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StrContains(s.status().message(), "does not open this store"));
  // The right key still works: nothing was replaced.
  EXPECT_TRUE(OpenDataKey(*store, source).ok());
  EXPECT_EQ(*ReadFile(source.key_file), *original);
}

TEST_F(KeyringTest, MissingKeyFileForExistingStoreIsNotRecreated) {
  KeySource source{dir_ + "/master.key", std::nullopt, true};
  {
    auto store = Open();
    ASSERT_TRUE(OpenDataKey(*store, source).ok());
  }
  ASSERT_EQ(unlink(source.key_file.c_str()), 0);
  auto store = Open();
  absl::StatusOr<std::unique_ptr<Sealer>> s = OpenDataKey(*store, source);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "missing"));
  EXPECT_EQ(ReadFile(source.key_file).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KeyringTest, PassphraseStore) {
  KeySource pass{"", SecretBytes("correct horse battery staple"), true};
  std::string sealed;
  {
    auto store = Open();
    auto sealer = OpenDataKey(*store, pass);
    ASSERT_TRUE(sealer.ok()) << sealer.status();
    sealed = (*sealer)->Seal(SecretBytes("v"), "ad");
  }
  auto store = Open();
  auto again = OpenDataKey(*store, pass);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->Open(sealed, "ad", "t").ok());

  KeySource wrong{"", SecretBytes("wrong passphrase"), true};
  auto refused = OpenDataKey(*store, wrong);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "passphrase"));

  KeySource file{dir_ + "/master.key", std::nullopt, true};
  auto mismatch = OpenDataKey(*store, file);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(mismatch.status().message(), "--passphrase"));
}

TEST_F(KeyringTest, TokensAreCreatedOnceAndPrivate) {
  std::string path = dir_ + "/approver.token";
  auto t1 = LoadOrCreateToken(path);
  ASSERT_TRUE(t1.ok()) << t1.status();
  EXPECT_GE(t1->size(), 40u);
  auto t2 = LoadOrCreateToken(path);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t1, *t2);
  // What a user wrote by hand (a trailing newline) is the same token.
  std::string with_newline(t1->Reveal());
  with_newline += "\n";
  std::string other = dir_ + "/typed.token";
  ASSERT_TRUE(WritePrivateFile(other, with_newline, true).ok());
  auto typed = LoadOrCreateToken(other);
  ASSERT_TRUE(typed.ok()) << typed.status();
  EXPECT_EQ(*typed, *t1);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(*LoadOrCreateToken(dir_ + "/agent.token"), *t1);
}

// For a broker that runs as its own user: the clients' group may read the
// token files, nobody else, and no other group.
TEST_F(KeyringTest, TokensSharedWithTheClientsGroupOnly) {
  const gid_t clients = getegid();  // A group this process may give files to.
  std::string path = dir_ + "/approver.token";
  auto made = LoadOrCreateToken(path, clients);
  ASSERT_TRUE(made.ok()) << made.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_gid, clients);
  auto again = LoadOrCreateToken(path, clients);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *made);
  // Without the group setting, a group-readable token is refused.
  EXPECT_EQ(LoadOrCreateToken(path).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Others may never read it.
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(LoadOrCreateToken(path, clients).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // An existing private token is given to the group.
  std::string agent = dir_ + "/agent.token";
  ASSERT_TRUE(LoadOrCreateToken(agent).ok());
  ASSERT_TRUE(LoadOrCreateToken(agent, clients).ok());
  ASSERT_EQ(stat(agent.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  if (geteuid() == 0) {
    // Group-readable by another group than the clients': refused.
    ASSERT_EQ(chown(agent.c_str(), static_cast<uid_t>(-1), clients + 1), 0);
    EXPECT_EQ(LoadOrCreateToken(agent, clients).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

TEST_F(KeyringTest, ARekeyIsAuditedInItsTransactionAndARefusalToo) {
  auto store = Open();
  KeySource file{dir_ + "/master.key", std::nullopt, true};
  auto sealer = OpenDataKey(*store, file);
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  AuditLog audit(store.get(), sealer->get(), [] { return absl::Now(); });
  Caller caller;
  caller.role = "approver";
  caller.peer = "unix:credctl";
  KeyChange change;
  change.current = file;
  change.next.passphrase = SecretBytes("a long passphrase");
  change.next.fast_kdf = true;
  ASSERT_TRUE(ChangeStoreKeyAudited(*store, change, audit, caller).ok());
  // Once more: the store now wants its passphrase.
  absl::Status again = ChangeStoreKeyAudited(*store, change, audit, caller);
  EXPECT_EQ(again.code(), absl::StatusCode::kPermissionDenied) << again;
  absl::StatusOr<AuditPage> page = audit.List({}, 10, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->events[0].kind, "store.rekeyed");
  EXPECT_EQ(page->events[0].role, "approver");
  EXPECT_EQ(page->events[0].detail,
            "the store's key was protected by the key file; now by a "
            "passphrase");
  EXPECT_EQ(page->events[1].kind, "store.rekey_refused");
  EXPECT_EQ(page->events[1].outcome, "PERMISSION_DENIED");
  EXPECT_TRUE(audit.Verify().ok());
}

}  // namespace
}  // namespace credbroker
