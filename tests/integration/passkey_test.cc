// Passkeys as the human-presence factor, on the real daemon: a software
// authenticator written for the test (ES256 keys it generates) registers
// and approves; the agent, holding the approver token and no authenticator,
// cannot. The person's PIN is typed through --pin_fd, never argv.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/credbroker/approval.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_service.pb.h"
#include "gtest/gtest.h"
#include "tests/crypto/soft_authenticator.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

constexpr char kOrigin[] = "http://localhost:4100";

class PasskeyTest : public CredctlFixture {
 protected:
  PasskeyTest() {
    start_in_setup_ = false;
    secrets_.push_back(secret_);
    secrets_.push_back(pin_);
  }

  void Start(std::vector<std::string> flags = {}) {
    flags.push_back("--approval_factor=pin");
    flags.push_back(absl::StrCat("--passkey_origins=", kOrigin));
    absl::Status started = broker_->Start(flags);
    ASSERT_TRUE(started.ok()) << started;
    client_ = broker_->Client();
    ASSERT_NE(client_, nullptr);
    auto put =
        Put("aws", "",
            {{"access_key_id", key_id_}, {"secret_access_key", secret_}});
    ASSERT_TRUE(put.ok()) << put.status();
    CommandResult set = CredctlWithPin({"pin", "set"}, pin_ + "\n");
    ASSERT_EQ(set.exit_code, 0) << set.err;
    client::Options options;
    options.address = broker_->address();
    options.token = broker_->approver_token();
    auto approval = client::ApprovalClient::Connect(options);
    ASSERT_TRUE(approval.ok()) << approval.status();
    approver_ = std::move(*approval);
  }

  // credctl reading the PIN from a file on descriptor 0 (--pin_fd 0).
  CommandResult CredctlWithPin(std::vector<std::string> args,
                               const std::string& input) {
    const std::string path = tmp_.path() + "/pin-input";
    EXPECT_TRUE(WriteFileBytes(path, input).ok());
    std::string cmd = absl::StrCat("exec '", CredctlPath(), "' --data_dir '",
                                   broker_->data_dir(), "'");
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    absl::StrAppend(&cmd, " --pin_fd 0 < '", path, "'");
    absl::StatusOr<CommandResult> r =
        RunCommand({"/bin/sh", "-c", cmd}, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult();
  }

  absl::StatusOr<client::Passkey> Register(SoftAuthenticator& key,
                                           const std::string& pin) {
    auto challenge = client_->BeginPasskeyRegistration();
    if (!challenge.ok()) return challenge.status();
    SoftRegistration reg =
        key.Register(challenge->rp_id, kOrigin, challenge->challenge);
    client::PasskeyRegistration registration;
    registration.pin = SecretBytes(pin);
    registration.name = "test key";
    registration.client_data_json = reg.client_data_json;
    registration.attestation_object = reg.attestation_object;
    return client_->FinishPasskeyRegistration(registration);
  }

  // The passkey's answer for approving `request_id`, from a challenge the
  // approver fetched for it.
  client::PasskeyAssertion Assert(SoftAuthenticator& key,
                                  const std::string& request_id,
                                  const std::string& origin = kOrigin) {
    auto challenge = approver_->BeginPasskeyAssertion(request_id);
    EXPECT_TRUE(challenge.ok()) << challenge.status();
    SoftAssertion a = key.Assert("localhost", origin,
                                 challenge.ok() ? challenge->challenge : "");
    client::PasskeyAssertion out;
    out.credential_id = key.credential_id();
    out.client_data_json = a.client_data_json;
    out.authenticator_data = a.authenticator_data;
    out.signature = a.signature;
    return out;
  }

  absl::Status ApproveWith(const std::string& request_id,
                           const client::PasskeyAssertion& a) {
    client::Approval req;
    req.request_id = request_id;
    req.passkey = a;
    return approver_->Approve(req).status();
  }

  void ExpectGranted(Subprocess& agent) {
    absl::StatusOr<int> code = agent.WaitForExit(kWait);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << Clean(agent.stderr_text());
    EXPECT_TRUE(absl::StrContains(agent.stdout_text(), secret_))
        << "the agent got no values";
  }

  const std::string key_id_ = NewAwsKeyId();
  const std::string secret_ = NewAwsSecret();
  const std::string pin_ = RandomString(10);
  std::unique_ptr<client::ApprovalClient> approver_;
  SoftAuthenticator key_{-7};
};

TEST_F(PasskeyTest, ARegisteredPasskeyApprovesAndTheAgentGetsTheGrant) {
  Start();
  auto registered = Register(key_, pin_);
  ASSERT_TRUE(registered.ok()) << registered.status();
  CommandResult list = Credctl({"passkey", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, registered->id)) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "ES256")) << list.out;

  auto agent = StartRequest(
      {"aws", "--action", "deploy with a passkey", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  const std::string id = WaitForPending("deploy with a passkey");
  ASSERT_FALSE(id.empty());
  const client::PasskeyAssertion assertion = Assert(key_, id);
  ASSERT_TRUE(ApproveWith(id, assertion).ok());
  ExpectGranted(*agent);
  CommandResult audit = Credctl({"audit", "--kind", "passkey.used"});
  EXPECT_TRUE(absl::StrContains(audit.out, "with passkey")) << audit.out;
}

TEST_F(PasskeyTest,
       ReplayedForeignAndMisdirectedAssertionsAreRefusedNamingTheReason) {
  Start();
  ASSERT_TRUE(Register(key_, pin_).ok());
  auto first =
      StartRequest({"aws", "--action", "first deploy", "--timeout", "30"});
  const std::string first_id = WaitForPending("first deploy");
  const client::PasskeyAssertion used = Assert(key_, first_id);
  ASSERT_TRUE(ApproveWith(first_id, used).ok());
  ExpectGranted(*first);

  auto agent =
      StartRequest({"aws", "--action", "second deploy", "--timeout", "30"});
  const std::string id = WaitForPending("second deploy");
  ASSERT_FALSE(id.empty());
  // The assertion that approved the first request, replayed.
  absl::Status replayed = ApproveWith(id, used);
  EXPECT_EQ(replayed.code(), absl::StatusCode::kPermissionDenied) << replayed;
  EXPECT_TRUE(absl::StrContains(replayed.message(), "challenge")) << replayed;
  // A challenge fetched for another request.
  auto third =
      StartRequest({"aws", "--action", "third deploy", "--timeout", "30"});
  const std::string third_id = WaitForPending("third deploy");
  absl::Status misdirected = ApproveWith(id, Assert(key_, third_id));
  EXPECT_EQ(misdirected.code(), absl::StatusCode::kPermissionDenied)
      << misdirected;
  EXPECT_TRUE(absl::StrContains(misdirected.message(), "challenge"))
      << misdirected;
  // A ceremony on an origin the broker does not allow.
  absl::Status foreign =
      ApproveWith(id, Assert(key_, id, "http://localhost:6666"));
  EXPECT_EQ(foreign.code(), absl::StatusCode::kPermissionDenied) << foreign;
  EXPECT_TRUE(absl::StrContains(foreign.message(), "origin")) << foreign;
  // A copy of the key whose counter is behind the one the broker saw.
  key_.sign_count = 0;
  absl::Status cloned = ApproveWith(id, Assert(key_, id));
  EXPECT_EQ(cloned.code(), absl::StatusCode::kPermissionDenied) << cloned;
  EXPECT_TRUE(absl::StrContains(cloned.message(), "cloned")) << cloned;
  CommandResult audit = Credctl({"audit", "--kind", "passkey.refused"});
  EXPECT_TRUE(absl::StrContains(audit.out, "possibly a cloned authenticator"))
      << audit.out;
  // Still pending: the person approves with the real key.
  key_.sign_count = 10;
  ASSERT_TRUE(ApproveWith(id, Assert(key_, id)).ok());
  ExpectGranted(*agent);
}

// --require_passkey: the agent has the approver token (and, worse, the PIN
// typed into a file) but no authenticator: it cannot approve.
TEST_F(PasskeyTest, WhenAPasskeyIsRequiredTheTokenAndThePinDoNotApprove) {
  Start({"--require_passkey"});
  ASSERT_TRUE(Register(key_, pin_).ok());
  auto agent =
      StartRequest({"aws", "--action", "deploy to prod", "--timeout", "30"});
  ASSERT_NE(agent, nullptr);
  const std::string id = WaitForPending("deploy to prod");
  ASSERT_FALSE(id.empty());
  CommandResult attempt = CredctlWithPin({"approve", id}, pin_ + "\n");
  EXPECT_NE(attempt.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(attempt.err, "PERMISSION_DENIED"))
      << attempt.err;
  EXPECT_TRUE(absl::StrContains(attempt.err, "needs a passkey")) << attempt.err;
  CommandResult pending = Credctl({"pending", "--json"});
  EXPECT_TRUE(absl::StrContains(pending.out, "deploy to prod")) << pending.out;
  ASSERT_TRUE(ApproveWith(id, Assert(key_, id)).ok());
  ExpectGranted(*agent);
}

TEST_F(PasskeyTest, RegisteringAndRemovingNeedThePin) {
  Start();
  auto without = Register(key_, "");
  EXPECT_EQ(without.status().code(), absl::StatusCode::kPermissionDenied)
      << without.status();
  auto wrong = Register(key_, "not-the-pin");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied)
      << wrong.status();
  auto registered = Register(key_, pin_);
  ASSERT_TRUE(registered.ok()) << registered.status();
  CommandResult refused =
      CredctlWithPin({"passkey", "remove", registered->id}, "nope\n");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(refused.err, "PERMISSION_DENIED"))
      << refused.err;
  CommandResult removed =
      CredctlWithPin({"passkey", "remove", registered->id}, pin_ + "\n");
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  CommandResult list = Credctl({"passkey", "list"});
  EXPECT_TRUE(absl::StrContains(list.out, "No passkey is registered"))
      << list.out;
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
