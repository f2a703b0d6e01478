// The human-presence factor and the passphrase-protected store, through the
// real daemon, played by an adversary that runs commands as the user: it
// can read every file in the data directory (both tokens) and start
// processes that are not descendants of the requesting one, but it does not
// know the approval PIN or the store's passphrase, and has no terminal.
#include <sys/stat.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/credbroker/approval.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_service.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class ApprovalFactorTest : public CredctlFixture {
 protected:
  ApprovalFactorTest() {
    start_in_setup_ = false;
    secrets_.push_back(secret_);
    secrets_.push_back(pin_);
    secrets_.push_back(passphrase_);
  }

  // The broker as a person runs it: the approval factor on.
  void StartWithFactor(std::vector<std::string> flags = {}) {
    flags.push_back("--approval_factor=pin");
    absl::Status started = broker_->Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
  }

  void PutAws() {
    auto r = Put("aws", "",
                 {{"access_key_id", key_id_}, {"secret_access_key", secret_}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  std::unique_ptr<client::ApprovalClient> Approver() {
    client::Options options;
    options.address = broker_->address();
    options.token = broker_->approver_token();
    auto approval = client::ApprovalClient::Connect(options);
    EXPECT_TRUE(approval.ok()) << approval.status();
    return approval.ok() ? std::move(*approval) : nullptr;
  }

  void SetPinAsThePerson() {
    CommandResult set =
        CredctlWithInput({"pin", "set", "--pin_fd", "0"}, pin_ + "\n");
    ASSERT_EQ(set.exit_code, 0) << set.err;
  }

  CommandResult ShellLineAttack(const std::string& approve_prefix,
                                const std::string& approve_input);
  int attacks_ = 0;  // ShellLineAttack's so far: each asks its own action.

  const std::string key_id_ = NewAwsKeyId();
  const std::string secret_ = NewAwsSecret();
  const std::string pin_ = RandomString(10);
  const std::string passphrase_ = RandomString(24);
};

// The attack as one shell line run by the agent: request in the background,
// then approve from a sibling process with the approver token it read.
// `approve_prefix` goes before the approving credctl (e.g. "setsid", which
// leaves the agent's session and process group); `approve_input` is its
// stdin. Returns the shell's output; the request is left pending.
CommandResult ApprovalFactorTest::ShellLineAttack(
    const std::string& approve_prefix, const std::string& approve_input) {
  const std::string credctl = absl::StrCat("'", CredctlPath(), "' --data_dir '",
                                           broker_->data_dir(), "'");
  const std::string action = absl::StrCat("deploy number ", ++attacks_);
  const std::string attack = absl::StrCat(
      credctl, " --token_file '", broker_->data_dir(),
      "/agent.token' request aws --action '", action, "' --timeout 20 > '",
      tmp_.path(), "/agent.out' 2>&1 & ", "for i in $(seq 1 100); do id=$(",
      credctl, " pending | awk '/", action,
      "/ {print $1; exit}'); [ -n \"$id\" ] && break; sleep 0.1; done; ",
      approve_prefix, " ", credctl, " approve \"$id\" --pin_fd 0 < '",
      approve_input, "'; echo \"approve exit $?\"; echo \"id $id\"");
  absl::StatusOr<CommandResult> r =
      RunCommand({"/bin/sh", "-c", attack}, absl::Seconds(60));
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return CommandResult();
  // Still pending, for the person to decide; no grant exists.
  CommandResult pending = Credctl({"pending", "--json"});
  EXPECT_TRUE(absl::StrContains(pending.out, action)) << pending.out;
  CommandResult grants = Credctl({"grants", "--json"});
  EXPECT_FALSE(absl::StrContains(grants.out, "g-")) << grants.out;
  return *r;
}

// The one shell line, approving beside the agent: refused because the
// approver shares the agent's session, before any PIN is looked at.
TEST_F(ApprovalFactorTest, OneShellLineCannotApproveTheAgentsOwnRequest) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  CommandResult r = ShellLineAttack("", "/dev/null");
  EXPECT_TRUE(absl::StrContains(r.out, "approve exit 1")) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "agent's session")) << r.err;
  CommandResult audit = Credctl({"audit", "--kind", "request.approve_refused"});
  EXPECT_TRUE(absl::StrContains(audit.out, "agent's session")) << audit.out;
}

// The same line with the approver escaping into a session of its own
// (`setsid`), where the process checks cannot tell it from a person's
// terminal: the missing PIN refuses it.
TEST_F(ApprovalFactorTest, AnApproverThatLeftTheAgentsSessionStillNeedsThePin) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  CommandResult r = ShellLineAttack("setsid -w", "/dev/null");
  EXPECT_TRUE(absl::StrContains(r.out, "approve exit 1")) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "needs the approval PIN")) << r.err;
  CommandResult audit = Credctl({"audit", "--kind", "pin.refused"});
  EXPECT_TRUE(absl::StrContains(audit.out, "no PIN given")) << audit.out;
}

// The approver double-forked into a session of its own: an orphan the
// broker never saw, reparented away from the agent's tree. Nothing in the
// process table ties it to the agent any more; the missing PIN refuses it.
TEST_F(ApprovalFactorTest, ADoubleForkedOrphanStillNeedsThePin) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  // Runs "$@" as such an orphan, waits for it, and exits with its status.
  const std::string orphan = InputFile("orphan.sh", R"sh(d=$(mktemp -d)
( setsid sh -c '"$@" 2> "$0/err"; echo $? > "$0/code"' "$d" "$@" < /dev/null & )
n=0; while [ ! -s "$d/code" ] && [ "$n" -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
cat "$d/err" >&2; exit "$(cat "$d/code")"
)sh");
  CommandResult r =
      ShellLineAttack(absl::StrCat("sh '", orphan, "'"), "/dev/null");
  EXPECT_TRUE(absl::StrContains(r.out, "approve exit 1")) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "needs the approval PIN")) << r.err;
}

// Guesses from beside the agent are refused before the PIN is checked, so
// they neither count as wrong attempts nor lock the person out.
TEST_F(ApprovalFactorTest, GuessesFromTheAgentsSessionSpendNoPinAttempts) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  const std::string guess = InputFile("guess", "not-the-pin\n");
  for (int i = 0; i < 6; ++i) {
    CommandResult r = ShellLineAttack("", guess);
    EXPECT_TRUE(absl::StrContains(r.err, "agent's session")) << r.err;
  }
  CommandResult status = Credctl({"pin", "status", "--json"});
  EXPECT_TRUE(absl::StrContains(status.out, "\"failed_attempts\": 0"))
      << status.out;
  EXPECT_FALSE(absl::StrContains(status.out, "locked_until")) << status.out;
  // The person, from elsewhere, approves one of them with the right PIN.
  CommandResult pending = Credctl({"pending", "--json"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(pending.out, m, std::regex("r-[0-9a-f]+")))
      << pending.out;
  CommandResult approve =
      CredctlWithInput({"approve", m[0].str(), "--pin_fd", "0"}, pin_ + "\n");
  EXPECT_EQ(approve.exit_code, 0) << approve.err;
}

TEST_F(ApprovalFactorTest, ApprovalsAreRefusedUntilAPinIsSet) {
  StartWithFactor();
  PutAws();
  auto agent =
      StartRequest({"aws", "--action", "deploy to AWS", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  std::string id = WaitForPending("deploy to AWS");
  ASSERT_FALSE(id.empty());
  auto approver = Approver();
  ASSERT_NE(approver, nullptr);
  client::Approval req;
  req.request_id = id;
  absl::Status refused = approver->Approve(req).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "credctl pin set"))
      << refused;
  // At first use credctl has the person choose a PIN, then approves with it.
  CommandResult approve =
      CredctlWithInput({"approve", id, "--pin_fd", "0"}, pin_ + "\n");
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(absl::StrContains(approve.err, "No approval PIN is set yet"))
      << approve.err;
  absl::StatusOr<int> code = agent->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << Clean(agent->stderr_text());
  EXPECT_TRUE(absl::StrContains(agent->stdout_text(), secret_))
      << "the agent got no values";
}

// A correct PIN lets the approving process (the IDE) approve again without
// typing it; a second process holding the same token does not share that.
TEST_F(ApprovalFactorTest, TheUnlockWindowBelongsToTheApprovingProcess) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  auto approver = Approver();
  ASSERT_NE(approver, nullptr);
  for (int i = 0; i < 2; ++i) {
    const std::string action = absl::StrCat("deploy number ", i);
    auto agent = StartRequest({"aws", "--action", action, "--timeout", "30"});
    ASSERT_NE(agent, nullptr);
    std::string id = WaitForPending(action);
    ASSERT_FALSE(id.empty());
    client::Approval req;
    req.request_id = id;
    if (i == 0)
      req.pin = SecretBytes(pin_);  // The second approval rides the window.
    auto approved = approver->Approve(req);
    ASSERT_TRUE(approved.ok()) << approved.status();
    absl::StatusOr<int> code = agent->WaitForExit(kWait);
    ASSERT_TRUE(code.ok() && *code == 0) << Clean(agent->stderr_text());
  }
  // Another process, with the same token and no PIN: refused.
  auto agent =
      StartRequest({"aws", "--action", "deploy elsewhere", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  std::string id = WaitForPending("deploy elsewhere");
  CommandResult other = Credctl({"approve", id});
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(other.err, "PERMISSION_DENIED")) << other.err;
  CommandResult status = Credctl({"pin", "status", "--json"});
  EXPECT_FALSE(absl::StrContains(status.out, "window_until")) << status.out;
  EXPECT_TRUE(absl::StrContains(status.out, "\"required\": true"))
      << status.out;
}

// The default store: a passphrase, no key file; the PIN is sealed, so the
// database holds nothing to guess offline; the first PIN needs the
// passphrase, so the agent cannot choose it first.
TEST_F(ApprovalFactorTest, APassphraseStoreHasNothingToReadOrGuessOffline) {
  broker_->set_stdin_path(InputFile("passphrase", passphrase_ + "\n"));
  StartWithFactor({"--passphrase_fd=0"});
  EXPECT_FALSE(FileExists(broker_->data_dir() + "/master.key"));
  EXPECT_FALSE(absl::StrContains(broker_->stderr_text(), "WARNING"))
      << broker_->stderr_text();
  PutAws();
  // The agent, with the approver token, tries to choose the first PIN.
  CommandResult agent_set =
      CredctlWithInput({"pin", "set", "--pin_fd", "0"}, "\n1234\n");
  EXPECT_NE(agent_set.exit_code, 0);
  CommandResult guess =
      CredctlWithInput({"pin", "set", "--pin_fd", "0"}, "a guess\n1234\n");
  EXPECT_NE(guess.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(guess.err, "wrong store passphrase"))
      << guess.err;
  // The person, who knows the passphrase.
  CommandResult set = CredctlWithInput({"pin", "set", "--pin_fd", "0"},
                                       passphrase_ + "\n" + pin_ + "\n");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  ASSERT_TRUE(broker_->Stop().ok());
  for (const char* file : {"/credbroker.db", "/credbroker.db-wal"}) {
    absl::StatusOr<std::string> bytes =
        ReadFileBytes(broker_->data_dir() + file);
    if (!bytes.ok()) continue;
    // No verifier string to guess against (the KDF parameters are public).
    EXPECT_FALSE(absl::StrContains(*bytes, "$argon2")) << file;
    EXPECT_FALSE(absl::StrContains(*bytes, secret_)) << file;
  }
  // A wrong passphrase does not open it; the key file cannot replace it.
  broker_->set_stdin_path(InputFile("wrong", "not the passphrase\n"));
  absl::StatusOr<int> wrong = broker_->RunExpectingExit({"--passphrase_fd=0"});
  ASSERT_TRUE(wrong.ok());
  EXPECT_NE(*wrong, 0);
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "passphrase does not open this store"))
      << broker_->stderr_text();
  absl::StatusOr<int> file = broker_->RunExpectingExit({"--key_source=file"});
  ASSERT_TRUE(file.ok());
  EXPECT_NE(*file, 0);
}

// A broker started without its passphrase (a user service at login, no
// terminal) serves locked until a person unlocks it; wrong passphrases are
// refused, and nothing but unlocking works meanwhile.
TEST_F(ApprovalFactorTest, ALockedBrokerWaitsForAPersonToUnlockIt) {
  broker_->set_stdin_path(InputFile("passphrase", passphrase_ + "\n"));
  StartWithFactor({"--passphrase_fd=0"});
  PutAws();
  ASSERT_TRUE(broker_->Stop().ok());
  broker_->set_stdin_path("/dev/null");
  StartWithFactor({"--key_source=passphrase"});
  EXPECT_TRUE(absl::StrContains(broker_->stdout_text(), "LOCKED"))
      << broker_->stdout_text();
  absl::StatusOr<client::CredentialPage> locked = client_->ListCredentials();
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kFailedPrecondition)
      << locked.status();
  EXPECT_TRUE(absl::StrContains(locked.status().message(), "credctl unlock"))
      << locked.status();

  CommandResult wrong = CredctlWithInput({"unlock", "--passphrase_fd", "0"},
                                         "not the passphrase\n");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(wrong.err, "PERMISSION_DENIED")) << wrong.err;
  // Guessing from a fresh process each time does not escape the throttle:
  // it counts per user, not per process.
  bool throttled = false;
  for (int i = 0; i < 8 && !throttled; ++i) {
    CommandResult guess = CredctlWithInput({"unlock", "--passphrase_fd", "0"},
                                           absl::StrCat("guess ", i, "\n"));
    EXPECT_NE(guess.exit_code, 0);
    throttled = absl::StrContains(guess.err, "RESOURCE_EXHAUSTED");
  }
  EXPECT_TRUE(throttled)
      << "eight guesses from eight processes were never throttled";
  CommandResult right;
  for (absl::Time deadline = absl::Now() + kWait; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(500))) {
    right = CredctlWithInput({"unlock", "--passphrase_fd", "0"},
                             passphrase_ + "\n");
    if (!absl::StrContains(right.err, "RESOURCE_EXHAUSTED"))
      break;  // Waited out.
  }
  ASSERT_EQ(right.exit_code, 0) << right.err;
  // The broker restarts its listeners unlocked.
  absl::StatusOr<client::CredentialPage> listed =
      absl::UnavailableError("not yet");
  for (absl::Time deadline = absl::Now() + kWait; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    auto c = broker_->Client();
    if (c == nullptr) continue;
    listed = c->ListCredentials();
    if (listed.ok()) break;
  }
  ASSERT_TRUE(listed.ok()) << listed.status() << broker_->stderr_text();
  ASSERT_EQ(listed->credentials.size(), 1u);
  EXPECT_EQ(listed->credentials[0].provider, "aws");
  EXPECT_TRUE(
      absl::StrContains(broker_->stdout_text(), "credbrokerd: unlocked"));
  client_ = broker_->Client();
}

// The attack on the rows: with the broker stopped, the agent inserts a
// standing approval for itself with the sqlite3 shell. At the next start
// it is refused (DATA_LOSS, audited), and its request still waits.
TEST_F(ApprovalFactorTest, AStandingApprovalPlantedInTheDatabaseGrantsNothing) {
  StartWithFactor();
  PutAws();
  ASSERT_TRUE(broker_->Stop().ok());
  const std::string insert = absl::StrCat(
      "INSERT INTO standing_approvals VALUES('st-planted','aws','default','*',",
      absl::ToUnixMicros(absl::Now()), ",",
      absl::ToUnixMicros(absl::Now() + absl::Hours(24)), ",0,'')");
  absl::StatusOr<CommandResult> planted = RunCommand(
      {"/usr/bin/sqlite3", broker_->data_dir() + "/credbroker.db", insert},
      absl::Seconds(30));
  ASSERT_TRUE(planted.ok() && planted->exit_code == 0) << planted->err;
  StartWithFactor();
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "DATA_LOSS: standing approval st-planted"))
      << broker_->stderr_text();
  CommandResult standing = Credctl({"standing", "--json"});
  EXPECT_FALSE(absl::StrContains(standing.out, "st-planted")) << standing.out;
  auto agent =
      StartRequest({"aws", "--action", "exfiltrate", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  EXPECT_FALSE(WaitForPending("exfiltrate").empty())
      << "the planted row granted it";
  CommandResult audit = Credctl({"audit", "--kind", "row.refused"});
  EXPECT_TRUE(absl::StrContains(audit.out, "st-planted")) << audit.out;
}

// The rows an agent could edit while the broker is stopped: the grant it
// was given (its lifetime stretched), the decided request (its action
// rewritten) and the approval PIN record, put back to the one whose PIN it
// may have seen typed. Each is refused at the next start, named on stderr,
// and the old PIN approves nothing.
TEST_F(ApprovalFactorTest,
       RowsEditedOrPutBackWhileTheBrokerWasStoppedAreRefused) {
  StartWithFactor();
  PutAws();
  SetPinAsThePerson();
  auto agent =
      StartRequest({"aws", "--action", "deploy web", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  const std::string id = WaitForPending("deploy web");
  ASSERT_FALSE(id.empty());
  CommandResult approve =
      CredctlWithInput({"approve", id, "--pin_fd", "0"}, pin_ + "\n");
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  ASSERT_TRUE(agent->WaitForExit(kWait).ok());

  const std::string db = broker_->data_dir() + "/credbroker.db";
  auto sql = [&](const std::string& statement) {
    absl::StatusOr<CommandResult> r =
        RunCommand({"/usr/bin/sqlite3", db, statement}, absl::Seconds(30));
    EXPECT_TRUE(r.ok() && r->exit_code == 0)
        << (r.ok() ? r->err : r.status().ToString());
    return r.ok() ? std::string(absl::StripTrailingAsciiWhitespace(r->out))
                  : std::string();
  };
  ASSERT_TRUE(broker_->Stop().ok());
  const std::string old_record =
      sql("SELECT hex(value) FROM meta WHERE key = 'approval_pin'");
  ASSERT_FALSE(old_record.empty());
  // The person changes the PIN: a new record, named in the audit log.
  StartWithFactor();
  ASSERT_EQ(CredctlWithInput({"pin", "clear", "--pin_fd", "0"}, pin_ + "\n")
                .exit_code,
            0);
  const std::string new_pin = RandomString(10);
  secrets_.push_back(new_pin);
  ASSERT_EQ(CredctlWithInput({"pin", "set", "--pin_fd", "0"}, new_pin + "\n")
                .exit_code,
            0);
  ASSERT_TRUE(broker_->Stop().ok());

  sql("UPDATE grants SET expires_at = expires_at + 86400000000");
  sql(
      absl::StrCat("UPDATE requests SET action = 'deploy web (harmless)' WHERE "
                   "request_id = '",
                   id, "'"));
  sql(absl::StrCat("UPDATE meta SET value = X'", old_record,
                   "' WHERE key = 'approval_pin'"));
  StartWithFactor();
  const std::string err = broker_->stderr_text();
  EXPECT_TRUE(absl::StrContains(err, "DATA_LOSS: grant ")) << err;
  EXPECT_TRUE(absl::StrContains(err, absl::StrCat("DATA_LOSS: request ", id)))
      << err;

  auto second =
      StartRequest({"aws", "--action", "deploy api", "--timeout", "30"});
  ASSERT_NE(second, nullptr);
  const std::string id2 = WaitForPending("deploy api");
  ASSERT_FALSE(id2.empty());
  CommandResult with_old =
      CredctlWithInput({"approve", id2, "--pin_fd", "0"}, pin_ + "\n");
  EXPECT_NE(with_old.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(with_old.err, "replaced by an older one"))
      << with_old.err;
  CommandResult with_new =
      CredctlWithInput({"approve", id2, "--pin_fd", "0"}, new_pin + "\n");
  EXPECT_NE(with_new.exit_code, 0)
      << "a put-back record must refuse every approval";
  CommandResult audit = Credctl({"audit", "--kind", "row.refused"});
  EXPECT_TRUE(absl::StrContains(audit.out, id)) << audit.out;
}

TEST_F(ApprovalFactorTest, AKeyFileStoreWarnsAndNeedsToBeAskedFor) {
  StartWithFactor({"--key_source=file"});
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "WARNING: the store's key is the file"))
      << broker_->stderr_text();
  ASSERT_TRUE(broker_->Stop().ok());
  // Started without asking for the key file again: refused, with the fix.
  absl::StatusOr<int> code =
      broker_->RunExpectingExit({"--key_source=passphrase"});
  ASSERT_TRUE(code.ok());
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(), "--key_source=file"))
      << broker_->stderr_text();
}

TEST_F(ApprovalFactorTest, TurningTheFactorOffIsLoudAndAudited) {
  ASSERT_TRUE(
      broker_->Start().ok());  // The test default: --approval_factor=none.
  EXPECT_TRUE(absl::StrContains(broker_->stderr_text(),
                                "WARNING: --approval_factor=none"))
      << broker_->stderr_text();
  CommandResult audit = Credctl({"audit", "--kind", "factor."});
  EXPECT_TRUE(absl::StrContains(audit.out, "factor.disabled")) << audit.out;
  CommandResult status = Credctl({"pin", "status"});
  EXPECT_TRUE(absl::StrContains(status.out, "WARNING")) << status.out;
}

TEST_F(ApprovalFactorTest, ATokenFileOthersCanReadIsRefused) {
  ASSERT_TRUE(broker_->Start().ok());
  ASSERT_TRUE(broker_->Stop().ok());
  const std::string token = broker_->data_dir() + "/approver.token";
  absl::StatusOr<std::string> bytes = ReadFileBytes(token);
  ASSERT_TRUE(bytes.ok());
  EXPECT_NE(bytes->back(), '\n')
      << "clients send the file's bytes as a header value";
  ASSERT_EQ(chmod(token.c_str(), 0644), 0);
  absl::StatusOr<int> code = broker_->RunExpectingExit();
  ASSERT_TRUE(code.ok());
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(
      absl::StrContains(broker_->stderr_text(), "can be read by other users"))
      << broker_->stderr_text();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
