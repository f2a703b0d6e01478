// The store's key on the real daemon: changing what protects it (rekey) in
// each direction without losing a version, the lock and the auto-lock, and
// what a locked broker still does (the catalog, an agent's need kept until
// the unlock). The adversary runs commands as the user: it can read every
// file and the approver token, but knows neither the store's passphrase nor
// the approval PIN, and has no terminal.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/client.h"
#include "credbroker/v1/credential_service.pb.h"
#include "credbroker/v1/lock_service.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class StoreLockTest : public CredctlFixture {
 protected:
  StoreLockTest() {
    start_in_setup_ = false;
    secrets_ = {passphrase_, new_passphrase_, pin_};
  }

  // Starts the daemon on a passphrase store, the passphrase on stdin.
  void StartWithPassphrase(const std::string& passphrase,
                           std::vector<std::string> flags = {}) {
    broker_->set_stdin_path(
        InputFile(absl::StrCat("start-", ++starts_), passphrase + "\n"));
    flags.push_back("--passphrase_fd=0");
    absl::Status started = broker_->Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
  }

  void Restart(std::vector<std::string> flags) {
    client_.reset();
    absl::StatusOr<int> code = broker_->Stop();
    ASSERT_TRUE(code.ok() && *code == 0) << broker_->stderr_text();
    absl::Status started = broker_->Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
  }

  // The lock state once the broker (which restarts its listeners at each
  // change) answers with `locked`; a failure when it never does.
  client::LockState WaitForLockState(bool locked) {
    absl::StatusOr<client::LockState> state =
        absl::UnavailableError("not asked yet");
    for (absl::Time deadline = absl::Now() + kWait; absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(100))) {
      client_ = broker_->Client();
      if (client_ == nullptr) continue;
      state = client_->GetLockState();
      if (state.ok() && state->locked == locked) return *state;
    }
    ADD_FAILURE() << "never " << (locked ? "locked" : "unlocked") << ": "
                  << state.status() << broker_->AllOutput();
    return client::LockState();
  }

  // Three AWS profiles with 3, 2 and 1 versions; remembers each version's
  // key id (shown in clear) to check that every version still opens.
  void StoreVersions() {
    for (const auto& [profile, count] :
         std::map<std::string, int>{{"default", 3}, {"ci", 2}, {"prod", 1}}) {
      for (int v = 1; v <= count; ++v) {
        const std::string key_id = NewAwsKeyId();
        const std::string secret = NewAwsSecret();
        secrets_.push_back(secret);
        auto put =
            Put("aws", profile,
                {{"access_key_id", key_id}, {"secret_access_key", secret}});
        ASSERT_TRUE(put.ok()) << put.status();
        ASSERT_EQ(put->credential.version, v);
        key_ids_[{profile, v}] = key_id;
      }
    }
  }

  // Every stored version decrypts to the key id it was stored with.
  void ExpectEveryVersionReadable(const std::string& when) {
    ASSERT_FALSE(key_ids_.empty());
    for (const auto& [which, key_id] : key_ids_) {
      absl::StatusOr<client::CredentialSummary> got =
          Get("aws", which.first, which.second);
      ASSERT_TRUE(got.ok()) << when << ": " << which.first << " v"
                            << which.second << ": " << got.status();
      const client::MaskedField* id = FindField(*got, "access_key_id");
      ASSERT_NE(id, nullptr);
      // Shown as "AKIA…" and the last four characters, which differ per
      // version.
      EXPECT_TRUE(absl::EndsWith(id->display, key_id.substr(key_id.size() - 4)))
          << when << ": " << which.first << " v" << which.second;
    }
    CommandResult verify = Credctl({"audit", "verify"});
    EXPECT_EQ(verify.exit_code, 0) << when << ": " << verify.out << verify.err;
  }

  void SetPin() {
    CommandResult set = CredctlWithInput({"pin", "set", "--pin_fd", "0"},
                                         passphrase_ + "\n" + pin_ + "\n");
    ASSERT_EQ(set.exit_code, 0) << set.err;
  }

  const std::string key_file() const {
    return broker_->data_dir() + "/master.key";
  }

  const std::string passphrase_ = RandomString(24);
  const std::string new_passphrase_ = RandomString(24);
  const std::string pin_ = RandomString(10);
  std::map<std::pair<std::string, int>, std::string> key_ids_;
  int starts_ = 0;  // StartWithPassphrase's input files so far.
};

// Passphrase -> new passphrase -> key file -> passphrase: each time the
// broker restarted with the matching key source reads every version, and
// the audit chain (keyed from the same data key) is intact.
TEST_F(StoreLockTest, RekeyInEachDirectionKeepsEveryVersion) {
  StartWithPassphrase(passphrase_, {"--approval_factor=pin"});
  StoreVersions();
  SetPin();

  CommandResult to_new = CredctlWithInput(
      {"rekey", "--passphrase_fd", "0", "--new_passphrase_fd", "0", "--pin_fd",
       "0"},
      passphrase_ + "\n" + new_passphrase_ + "\n" + pin_ + "\n");
  ASSERT_EQ(to_new.exit_code, 0) << to_new.err;
  client_.reset();
  ASSERT_TRUE(broker_->Stop().ok());
  broker_->set_stdin_path(InputFile("old", passphrase_ + "\n"));
  absl::StatusOr<int> old = broker_->RunExpectingExit({"--passphrase_fd=0"});
  ASSERT_TRUE(old.ok());
  EXPECT_NE(*old, 0) << "the old passphrase still opens the store";
  StartWithPassphrase(new_passphrase_, {"--approval_factor=pin"});
  ExpectEveryVersionReadable("after a new passphrase");

  CommandResult to_file = CredctlWithInput(
      {"rekey", "--to=file", "--passphrase_fd", "0", "--pin_fd", "0"},
      new_passphrase_ + "\n" + pin_ + "\n");
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_TRUE(absl::StrContains(to_file.out, "WARNING")) << to_file.out;
  EXPECT_EQ(FileMode(key_file()), 0600);
  Restart({"--key_source=file", "--approval_factor=pin"});
  ExpectEveryVersionReadable("in key-file mode");
  EXPECT_EQ(WaitForLockState(false).key_source, client::KeySource::kKeyFile);

  CommandResult back = CredctlWithInput(
      {"rekey", "--to=passphrase", "--new_passphrase_fd", "0", "--pin_fd", "0"},
      passphrase_ + "\n" + pin_ + "\n");
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_FALSE(FileExists(key_file())) << "the key file was left behind";
  client_.reset();
  ASSERT_TRUE(broker_->Stop().ok());
  StartWithPassphrase(passphrase_, {"--approval_factor=pin"});
  ExpectEveryVersionReadable("back on a passphrase");
  EXPECT_EQ(WaitForLockState(false).key_source, client::KeySource::kPassphrase);
  CommandResult audit = Credctl({"audit", "--kind", "store.rekeyed"});
  const std::vector<absl::string_view> parts =
      absl::StrSplit(audit.out, "store.rekeyed");
  EXPECT_EQ(parts.size(), 4u) << "three rekeys audited: " << audit.out;
}

// The agent holds the approver token but neither the passphrase nor the
// PIN: a wrong passphrase, a wrong PIN or none changes nothing; wrong
// passphrases are throttled per user.
TEST_F(StoreLockTest, RekeyWithoutThePassphraseOrThePinChangesNothing) {
  StartWithPassphrase(passphrase_, {"--approval_factor=pin"});
  StoreVersions();
  SetPin();
  CommandResult wrong_pass = CredctlWithInput(
      {"rekey", "--to=file", "--passphrase_fd", "0", "--pin_fd", "0"},
      "not the passphrase\n" + pin_ + "\n");
  EXPECT_NE(wrong_pass.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(wrong_pass.err, "PERMISSION_DENIED"))
      << wrong_pass.err;
  CommandResult wrong_pin = CredctlWithInput(
      {"rekey", "--to=file", "--passphrase_fd", "0", "--pin_fd", "0"},
      passphrase_ + "\nnot the pin\n");
  EXPECT_NE(wrong_pin.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(wrong_pin.err, "PERMISSION_DENIED"))
      << wrong_pin.err;
  // Straight to the API with no PIN at all.
  client::KeyChange no_pin;
  no_pin.to = client::KeySource::kKeyFile;
  no_pin.current_passphrase = SecretBytes(passphrase_);
  EXPECT_EQ(client_->Rekey(no_pin).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(FileExists(key_file()));
  EXPECT_EQ(WaitForLockState(false).key_source, client::KeySource::kPassphrase);

  bool throttled = false;
  for (int i = 0; i < 8 && !throttled; ++i) {
    CommandResult guess = CredctlWithInput(
        {"rekey", "--to=file", "--passphrase_fd", "0", "--pin_fd", "0"},
        absl::StrCat("guess ", i, "\n", pin_, "\n"));
    EXPECT_NE(guess.exit_code, 0);
    throttled = absl::StrContains(guess.err, "RESOURCE_EXHAUSTED");
  }
  EXPECT_TRUE(throttled) << "eight wrong passphrases were never throttled";
  EXPECT_FALSE(FileExists(key_file()));
  CommandResult refused = Credctl({"audit", "--kind", "store.rekey_refused"});
  EXPECT_TRUE(absl::StrContains(refused.out, "store.rekey_refused"))
      << refused.out;
  Restart({"--passphrase_fd=0", "--approval_factor=pin"});
  ExpectEveryVersionReadable("after the refused rekeys");
}

// GetLockState says what protects the key; doctor warns about a key file.
TEST_F(StoreLockTest, DoctorWarnsAboutAKeyFileStore) {
  ASSERT_TRUE(broker_->Start({"--key_source=file"}).ok());
  client_ = broker_->Client();
  absl::StatusOr<client::LockState> state = client_->GetLockState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->locked);
  EXPECT_EQ(state->key_source, client::KeySource::kKeyFile);
  EXPECT_EQ(state->key_file, key_file());
  CommandResult doctor = Credctl({"doctor"});
  EXPECT_TRUE(
      absl::StrContains(doctor.out, "an agent running as you can read it"))
      << doctor.out;
  EXPECT_TRUE(absl::StrContains(doctor.out, "credctl rekey --to=passphrase"))
      << doctor.out;
  // Nothing to lock: the key is on disk.
  CommandResult lock = Credctl({"lock"});
  EXPECT_NE(lock.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(lock.err, "FAILED_PRECONDITION")) << lock.err;

  TempDir other;
  BrokerProcess passphrase_broker(other.path() + "/data", other.path());
  passphrase_broker.set_stdin_path(InputFile("pass", passphrase_ + "\n"));
  ASSERT_TRUE(passphrase_broker.Start({"--passphrase_fd=0"}).ok());
  absl::StatusOr<client::LockState> pass_state =
      passphrase_broker.Client()->GetLockState();
  ASSERT_TRUE(pass_state.ok()) << pass_state.status();
  EXPECT_EQ(pass_state->key_source, client::KeySource::kPassphrase);
  absl::StatusOr<CommandResult> quiet = RunCommand(
      {CredctlPath(), "--data_dir", passphrase_broker.data_dir(), "doctor"},
      absl::Seconds(30));
  ASSERT_TRUE(quiet.ok());
  EXPECT_FALSE(absl::StrContains(quiet->out, "warning: the store's key"))
      << quiet->out;
  ASSERT_TRUE(passphrase_broker.Stop().ok());
}

// After --auto_lock_after without a call the key is wiped: reads name the
// unlock; the unlock brings everything back, the pending request too.
TEST_F(StoreLockTest, AutoLockWipesTheKeyAndTheUnlockRestoresEverything) {
  StartWithPassphrase(passphrase_, {"--auto_lock_after=3s"});
  StoreVersions();
  auto agent = StartRequest(
      {"aws", "--action", "deploy before the lock", "--timeout", "60"});
  ASSERT_NE(agent, nullptr);
  ASSERT_FALSE(WaitForPending("deploy before the lock").empty());

  client::LockState locked = WaitForLockState(true);
  EXPECT_TRUE(absl::StrContains(locked.message, "credctl unlock"))
      << locked.message;
  EXPECT_EQ(locked.auto_lock_after, absl::Seconds(3));
  absl::StatusOr<client::CredentialSummary> read = Get("aws", "default");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition)
      << read.status();
  EXPECT_TRUE(absl::StrContains(read.status().message(), "credctl unlock"))
      << read.status();
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(), "auto-locked"))
      << broker_->stdout_text();

  CommandResult unlock =
      CredctlWithInput({"unlock", "--passphrase_fd", "0"}, passphrase_ + "\n");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  WaitForLockState(false);
  // Each call below keeps it unlocked (the auto-lock counts from the last).
  ExpectEveryVersionReadable("after the unlock");
  CommandResult pending = Credctl({"pending", "--json"});
  EXPECT_TRUE(absl::StrContains(pending.out, "deploy before the lock"))
      << pending.out;
}

// credctl lock locks at once; the catalog is still served while locked.
TEST_F(StoreLockTest, LockLocksAtOnceAndTheCatalogStaysServed) {
  StartWithPassphrase(passphrase_);
  StoreVersions();
  CommandResult lock = Credctl({"lock"});
  ASSERT_EQ(lock.exit_code, 0) << lock.err;
  WaitForLockState(true);
  EXPECT_EQ(Get("aws", "ci").status().code(),
            absl::StatusCode::kFailedPrecondition);
  CommandResult providers = Credctl({"providers"});
  EXPECT_EQ(providers.exit_code, 0) << providers.err;
  EXPECT_TRUE(absl::StrContains(providers.out, "aws")) << providers.out;
  CommandResult form = Credctl({"form", "aws"});
  EXPECT_EQ(form.exit_code, 0) << form.err;
  EXPECT_TRUE(absl::StrContains(form.out, "access_key_id")) << form.out;
  CommandResult again = Credctl({"lock"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(absl::StrContains(again.out, "already locked")) << again.out;
  CommandResult unlock =
      CredctlWithInput({"unlock", "--passphrase_fd", "0"}, passphrase_ + "\n");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  WaitForLockState(false);
  ExpectEveryVersionReadable("after lock and unlock");
}

// A broker started without its passphrase keeps an agent's need: the agent
// hears "locked", the person unlocks, the need reaches the request manager
// and the normal flow completes.
TEST_F(StoreLockTest, ALockedBrokerKeepsTheAgentsNeedUntilTheUnlock) {
  StartWithPassphrase(passphrase_);
  const std::string secret = NewAwsSecret();
  secrets_.push_back(secret);
  ASSERT_TRUE(
      Put("aws", "",
          {{"access_key_id", NewAwsKeyId()}, {"secret_access_key", secret}})
          .ok());
  client_.reset();
  ASSERT_TRUE(broker_->Stop().ok());
  broker_->set_stdin_path("/dev/null");
  ASSERT_TRUE(broker_->Start({"--key_source=passphrase"}).ok());
  ASSERT_TRUE(absl::StrContains(broker_->stdout_text(), "LOCKED"))
      << broker_->stdout_text();

  auto agent = StartRequest(
      {"aws", "--action", "deploy while locked", "--timeout", "90"});
  ASSERT_NE(agent, nullptr);
  bool heard = false;
  for (absl::Time deadline = absl::Now() + kWait;
       !heard && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    heard = absl::StrContains(agent->stderr_text(),
                              "locked — unlock in the IDE or with");
  }
  ASSERT_TRUE(heard) << agent->stderr_text();

  CommandResult unlock =
      CredctlWithInput({"unlock", "--passphrase_fd", "0"}, passphrase_ + "\n");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  WaitForLockState(false);  // The listeners are back, unlocked.
  const std::string id = WaitForPending("deploy while locked");
  ASSERT_FALSE(id.empty()) << agent->stderr_text();
  CommandResult approve = Credctl({"approve", id});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  absl::StatusOr<int> code = agent->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << Clean(agent->stderr_text());
  EXPECT_TRUE(absl::StrContains(agent->stdout_text(), secret))
      << "the agent got no values";
}

// The same with the client library's AgentSession: its stream to the
// locked broker ends at the unlock, and it reconnects and sends the need
// again by itself. (The agent here is this test process, which also runs
// the approver: --allow_self_approval.)
TEST_F(StoreLockTest, AnAgentSessionSendsItsNeedAgainAfterTheUnlock) {
  StartWithPassphrase(passphrase_);
  ASSERT_TRUE(Put("aws", "",
                  {{"access_key_id", NewAwsKeyId()},
                   {"secret_access_key", NewAwsSecret()}})
                  .ok());
  client_.reset();
  ASSERT_TRUE(broker_->Stop().ok());
  broker_->set_stdin_path("/dev/null");
  ASSERT_TRUE(
      broker_->Start({"--key_source=passphrase", "--allow_self_approval"})
          .ok());

  client::Options options;
  options.address = broker_->address();
  options.token = broker_->agent_token();
  auto session = client::AgentSession::Connect(options, "");
  ASSERT_TRUE(session.ok()) << session.status();
  client::CredentialNeeded need;
  need.need_id = "n-locked";
  need.provider = "aws";
  need.action = "deploy from a session";
  ASSERT_TRUE((*session)->SendNeed(need).ok());
  absl::StatusOr<client::NeedUpdate> locked = (*session)->WaitForState(
      "n-locked", client::RequestState::kPendingApproval, kWait);
  ASSERT_TRUE(locked.ok()) << locked.status();
  EXPECT_TRUE(locked->request_id.empty());
  EXPECT_TRUE(absl::StrContains(locked->message, "credctl unlock"))
      << locked->message;

  CommandResult unlock =
      CredctlWithInput({"unlock", "--passphrase_fd", "0"}, passphrase_ + "\n");
  ASSERT_EQ(unlock.exit_code, 0) << unlock.err;
  WaitForLockState(false);  // The listeners are back, unlocked.
  const std::string id = WaitForPending("deploy from a session");
  ASSERT_FALSE(id.empty()) << broker_->AllOutput();
  CommandResult approve = Credctl({"approve", id});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  absl::StatusOr<client::NeedUpdate> granted =
      (*session)->WaitFor("n-locked", kWait);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->state, client::RequestState::kGranted);
  EXPECT_EQ(granted->request_id, id);
  (*session)->Close().IgnoreError();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
