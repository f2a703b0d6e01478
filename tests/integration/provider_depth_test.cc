// Provider depth on the real credbrokerd: ResolveRequirements over several
// providers and profiles, default profiles, a resource binding that survives
// a change of default (and tells the approver when its credential rotated),
// history and rollback checked through a flow grant, Redis Cloud's generated
// password end to end, and ValidateCredential as `credctl doctor` uses it.
// Failure messages name fields and codes, never values.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/credbroker/approval.h"
#include "client/internal/convert.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/integration/subprocess.h"

namespace credbroker {
namespace testing {
namespace {

class ProviderDepthTest : public BrokerTest {
 protected:
  client::Options OptionsWith(const std::string& token) const {
    client::Options o;
    o.address = broker_->address();
    o.token = token;
    o.timeout = absl::Seconds(15);
    return o;
  }

  void SetUp() override {
    BrokerTest::SetUp();
    if (HasFatalFailure()) return;
    auto approver =
        client::ApprovalClient::Connect(OptionsWith(broker_->approver_token()));
    ASSERT_TRUE(approver.ok()) << approver.status();
    approver_ = std::move(*approver);
  }
  void TearDown() override {
    agents_.clear();
    approver_.reset();
    BrokerTest::TearDown();
  }

  void PutAws(const std::string& profile, const std::string& key_id,
              const std::string& secret) {
    auto r = Put("aws", profile,
                 {{"access_key_id", key_id}, {"secret_access_key", secret}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  struct Need {
    std::string need_id;
    std::string cluster;  // Empty: the need names no resource.
    std::string provider = "aws";
  };

  // The agent is another process (`credctl request`), since the broker
  // refuses approvals from the requesting agent's own process, with a
  // session of its own (a session key the previous agent held may not be
  // released yet: a second attach is refused). Waits until the need is open
  // in `state` and returns it as approvers see it.
  client::ApprovalRequest Submit(const Need& need, client::RequestState state) {
    Subprocess::Options o;
    o.argv = {CredctlPath(),
              "--data_dir",
              broker_->data_dir(),
              "request",
              need.provider,
              "--action",
              absl::StrCat("deploy to ", need.provider),
              "--need_id",
              need.need_id,
              "--session_key",
              absl::StrCat("s-depth-", need.need_id),
              "--timeout",
              "60"};
    if (!need.cluster.empty()) {
      o.argv.push_back("--context");
      o.argv.push_back(absl::StrCat("cluster=", need.cluster));
    }
    absl::StatusOr<std::unique_ptr<Subprocess>> agent = Subprocess::Spawn(o);
    EXPECT_TRUE(agent.ok()) << agent.status();
    if (!agent.ok()) return client::ApprovalRequest();
    agents_[need.need_id] = std::move(*agent);
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<client::ApprovalRequest>> pending =
          approver_->ListPending();
      EXPECT_TRUE(pending.ok()) << pending.status();
      if (!pending.ok()) break;
      for (const auto& r : *pending) {
        if (r.need.need_id == need.need_id) {
          EXPECT_EQ(r.state, state);
          return r;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "need " << need.need_id << " did not become pending";
    return client::ApprovalRequest();
  }

  // Approves (ONCE) and returns the grant the agent printed.
  v1::Grant Approve(const client::ApprovalRequest& request,
                    const std::map<std::string, std::string>& values = {},
                    const std::vector<std::string>& generate = {}) {
    client::Approval a;
    a.request_id = request.request_id;
    a.scope = client::Scope::kOnce;
    for (const auto& [k, v] : values) a.values[k] = SecretBytes(v);
    a.generate = generate;
    absl::StatusOr<client::ApprovalResult> r = approver_->Approve(a);
    EXPECT_TRUE(r.ok()) << r.status();
    auto it = agents_.find(request.need.need_id);
    if (!r.ok() || it == agents_.end()) return v1::Grant();
    absl::StatusOr<int> code = it->second->WaitForExit(absl::Seconds(20));
    EXPECT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(code.value_or(-1),
              0);  // stderr is not printed: it may hold values.
    v1::Grant grant;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(
                    it->second->stdout_text(), &grant, options)
                    .ok());
    agents_.erase(it);
    return grant;
  }

  static std::string Value(const v1::Grant& g, const std::string& name) {
    auto it = g.values().find(name);
    return it == g.values().end() ? "" : it->second;
  }

  std::map<std::string, std::unique_ptr<Subprocess>> agents_;  // By need id.
  std::unique_ptr<client::ApprovalClient> approver_;
  const std::string key_a_ = NewAwsKeyId(), secret_a_ = NewAwsSecret();
  const std::string key_b_ = NewAwsKeyId(), secret_b_ = NewAwsSecret();
  const std::string key_c_ = NewAwsKeyId(), secret_c_ = NewAwsSecret();
};

TEST_F(ProviderDepthTest, ResolveRequirementsOverProvidersAndProfiles) {
  PutAws("default", key_a_, secret_a_);
  PutAws("prod", key_b_, secret_b_);
  auto gcp =
      Put("gcp", "prod",
          {{"service_account_json",
            GcpServiceAccountJson("my-project-123",
                                  "monk@my-project-123.iam.gserviceaccount.com",
                                  "MARKER")}});
  ASSERT_TRUE(gcp.ok()) << gcp.status();
  absl::StatusOr<client::DefaultProfileChange> changed =
      client_->SetDefaultProfile("aws", "prod");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->previous_profile, "default");
  EXPECT_TRUE(changed->configured);

  const std::vector<std::string> targets = {"deploy to aws", "gcp",
                                            "deploy frontend to netlify"};
  absl::StatusOr<std::vector<client::Requirement>> r =
      client_->ResolveRequirements(targets);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  const client::Requirement& aws = (*r)[0];
  EXPECT_EQ(aws.provider, "aws");
  EXPECT_EQ(aws.profile, "prod");
  EXPECT_EQ(aws.profile_source, "default");
  EXPECT_TRUE(aws.configured);
  EXPECT_EQ(aws.readiness, client::Readiness::kReady);
  EXPECT_FALSE(aws.required_permissions.empty());
  const client::Requirement& g = (*r)[1];
  EXPECT_EQ(g.provider, "gcp");
  EXPECT_EQ(g.profile, "default");
  EXPECT_FALSE(g.configured);
  EXPECT_EQ(g.readiness, client::Readiness::kIncomplete);
  ASSERT_EQ(g.missing_fields.size(), 1u);
  EXPECT_EQ(g.missing_fields[0], "service_account_json");
  EXPECT_EQ((*r)[2].provider, "netlify");
  EXPECT_FALSE((*r)[2].configured);

  // An explicit profile applies to every target.
  r = client_->ResolveRequirements(targets, "prod");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*r)[1].configured);
  EXPECT_EQ((*r)[1].profile_source, "requested");
  EXPECT_EQ((*r)[1].readiness, client::Readiness::kReady);

  // The catalog and the listing show the defaults, and days to rotation.
  EXPECT_EQ(ProviderInfo("aws").default_profile, "prod");
  EXPECT_EQ(ProviderInfo("gcp").default_profile, "default");
  absl::StatusOr<client::CredentialPage> list = client_->ListCredentials();
  ASSERT_TRUE(list.ok()) << list.status();
  int defaults = 0;
  for (const client::CredentialSummary& c : list->credentials) {
    SCOPED_TRACE(absl::StrCat(c.provider, "/", c.profile));
    EXPECT_EQ(c.is_default, c.provider == "aws" && c.profile == "prod");
    defaults += c.is_default;
    EXPECT_GE(c.days_until_rotation, 89);
    EXPECT_LE(c.days_until_rotation, 90);
  }
  EXPECT_EQ(defaults, 1);

  EXPECT_TRUE(HasViolation(
      client_->ResolveRequirements({"kubernetes"}).status(), "targets[0]"));
  EXPECT_TRUE(HasViolation(
      client_->SetDefaultProfile("aws", "Not A Profile").status(), "profile"));
}

TEST_F(ProviderDepthTest, BindingSurvivesAChangeOfDefault) {
  PutAws("default", key_a_, secret_a_);
  PutAws("other", key_b_, secret_b_);
  v1::Grant first = Approve(
      Submit(Need{"n1", "prod-eu"}, client::RequestState::kPendingApproval));
  EXPECT_EQ(first.profile(), "default");
  EXPECT_TRUE(Value(first, "access_key_id") == key_a_);

  absl::StatusOr<std::vector<client::ResourceBinding>> bindings =
      client_->ListBindings();
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  ASSERT_EQ(bindings->size(), 1u);
  const client::ResourceBinding& b = (*bindings)[0];
  EXPECT_EQ(b.resource, "prod-eu");
  EXPECT_EQ(b.provider, "aws");
  EXPECT_EQ(b.profile, "default");
  EXPECT_EQ(b.grant_id, first.grant_id());
  EXPECT_EQ(b.fingerprint, Get("aws", "default")->fingerprint);
  EXPECT_EQ(b.state, client::BindingState::kCurrent);

  ASSERT_TRUE(client_->SetDefaultProfile("aws", "other").ok());

  // The cluster still resolves to the account that created it...
  client::ApprovalRequest again =
      Submit(Need{"n2", "prod-eu"}, client::RequestState::kPendingApproval);
  EXPECT_EQ(again.need.profile, "default");
  EXPECT_TRUE(again.binding_note.empty());
  v1::Grant second = Approve(again);
  EXPECT_EQ(second.profile(), "default");
  EXPECT_TRUE(Value(second, "access_key_id") == key_a_);
  // ... while a need naming no cluster gets the new default.
  client::ApprovalRequest plain =
      Submit(Need{"n3", ""}, client::RequestState::kPendingApproval);
  EXPECT_EQ(plain.need.profile, "other");
  EXPECT_TRUE(Value(Approve(plain), "access_key_id") == key_b_);

  // The bound profile is rotated: the approver is told, in the request and
  // in the form.
  PutAws("default", key_c_, secret_c_);
  client::ApprovalRequest rotated =
      Submit(Need{"n4", "prod-eu"}, client::RequestState::kPendingApproval);
  EXPECT_TRUE(absl::StrContains(rotated.binding_note, "different credential"))
      << rotated.binding_note;
  EXPECT_FALSE(absl::StrContains(rotated.binding_note, secret_c_));
  client::FormQuery form_req;
  form_req.request_id = rotated.request_id;
  absl::StatusOr<client::CredentialForm> form = approver_->GetForm(form_req);
  ASSERT_TRUE(form.ok()) << form.status();
  bool noted = false;
  for (const auto& n : form->notes) noted |= n == rotated.binding_note;
  EXPECT_TRUE(noted);
  bindings = client_->ListBindings();
  ASSERT_TRUE(bindings.ok());
  EXPECT_EQ((*bindings)[0].state, client::BindingState::kRotated);
  EXPECT_FALSE((*bindings)[0].note.empty());

  // Bindings survive a restart.
  agents_.clear();
  approver_.reset();
  Restart();
  bindings = client_->ListBindings();
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  ASSERT_EQ(bindings->size(), 1u);
  EXPECT_EQ((*bindings)[0].profile, "default");
}

TEST_F(ProviderDepthTest, RollbackRestoresTheEarlierValues) {
  PutAws("", key_a_, secret_a_);
  std::string fp1 = Get("aws", "")->fingerprint;
  PutAws("", key_b_, secret_b_);

  absl::StatusOr<client::CredentialHistory> history =
      client_->ListCredentialVersions("aws", "");
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(history->profile, "default");
  ASSERT_EQ(history->versions.size(), 2u);
  EXPECT_EQ(history->versions[0].fingerprint, fp1);
  EXPECT_TRUE(history->versions[1].current);
  EXPECT_NE(history->versions[0].created_at, absl::InfinitePast());
  const std::string history_bytes =
      client::internal::AsProto<v1::ListCredentialVersionsResponse>(*history)
          .SerializeAsString();
  EXPECT_FALSE(absl::StrContains(history_bytes, secret_a_));
  EXPECT_FALSE(absl::StrContains(history_bytes, key_a_));

  absl::StatusOr<client::RolledBackCredential> rolled =
      client_->RollbackCredential("aws", "", 1);
  ASSERT_TRUE(rolled.ok()) << rolled.status();
  EXPECT_EQ(rolled->restored_version, 1);
  EXPECT_EQ(rolled->credential.version, 3);
  EXPECT_EQ(rolled->credential.fingerprint, fp1);
  EXPECT_FALSE(absl::StrContains(
      client::internal::AsProto<v1::RollbackCredentialResponse>(*rolled)
          .SerializeAsString(),
      secret_a_));
  EXPECT_EQ(client_->ListCredentialVersions("aws", "")->versions.size(), 3u);

  // The agent now receives the first key again.
  v1::Grant g =
      Approve(Submit(Need{"n1", ""}, client::RequestState::kPendingApproval));
  EXPECT_EQ(g.credential_version(), 3);
  EXPECT_TRUE(Value(g, "access_key_id") == key_a_);
  EXPECT_TRUE(Value(g, "secret_access_key") == secret_a_);

  // Audited, and the mistakes say what is wrong.
  client::AuditQuery audit;
  audit.kind = "credential.rollback";
  absl::StatusOr<client::AuditPage> events = client_->ListAuditEvents(audit);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events.size(), 1u);
  EXPECT_TRUE(absl::StrContains(events->events[0].detail,
                                "version 1 restored as version 3"));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      client_->RollbackCredential("aws", "", 3).status()));
  EXPECT_TRUE(
      absl::IsNotFound(client_->RollbackCredential("aws", "", 9).status()));
  EXPECT_TRUE(HasViolation(client_->RollbackCredential("aws", "", 0).status(),
                           "version"));
  EXPECT_TRUE(absl::IsNotFound(
      client_->ListCredentialVersions("aws", "nope").status()));
}

TEST_F(ProviderDepthTest, RedisCloudPasswordGeneratedEndToEnd) {
  client::ApprovalRequest r = Submit(Need{"redis", "", "redis-cloud"},
                                     client::RequestState::kNeedsInput);
  client::FormQuery form_req;
  form_req.request_id = r.request_id;
  absl::StatusOr<client::CredentialForm> form = approver_->GetForm(form_req);
  ASSERT_TRUE(form.ok()) << form.status();
  bool generatable = false, says = false;
  for (const auto& f : form->fields) {
    if (f.spec.name == "database_password") generatable = f.spec.generatable;
  }
  for (const auto& n : form->notes) {
    says |= absl::StrContains(n, "generate") &&
            absl::StrContains(n, "database_password");
  }
  EXPECT_TRUE(generatable);
  EXPECT_TRUE(says);

  const std::string account = RandomString(50), user = RandomString(50);
  v1::Grant g = Approve(r, {{"account_key", account}, {"user_key", user}},
                        {"database_password"});
  const std::string password = Value(g, "database_password");
  EXPECT_EQ(password.size(), 32u);
  EXPECT_TRUE(Value(g, "account_key") == account);
  absl::StatusOr<client::CredentialSummary> stored = Get("redis-cloud", "");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_FALSE(absl::StrContains(
      client::internal::AsProto<v1::CredentialSummary>(*stored)
          .SerializeAsString(),
      password));
  EXPECT_EQ(stored->readiness, client::Readiness::kReady);
}

TEST_F(ProviderDepthTest, DoctorReportsFindingsFixesAndPermissions) {
  PutAws("", key_a_, secret_a_);
  client::CredentialCandidate v;
  v.provider = "aws";
  absl::StatusOr<client::Diagnosis> d = client_->ValidateCredential(v);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->valid);
  EXPECT_EQ(d->profile, "default");
  EXPECT_EQ(d->readiness, client::Readiness::kReady);
  bool ec2 = false, disabled = false;
  for (const auto& p : d->required_permissions)
    ec2 |= absl::StrContains(p, "AmazonEC2FullAccess");
  for (const auto& c : d->manual_checks)
    disabled |= absl::StrContains(c, "disabled");
  EXPECT_TRUE(ec2);
  EXPECT_TRUE(disabled);

  // Candidate values with several of the guide's mistakes: each finding
  // has its fix. A temporary key without its session token, a zone for a
  // region, a GitHub classic token.
  client::CredentialCandidate cand;
  cand.provider = "aws";
  cand.values["access_key_id"] = SecretBytes("ASIAIOSFODNN7EXAMPLE");
  cand.values["secret_access_key"] = SecretBytes(" " + secret_a_ + "\n");
  cand.values["region"] = SecretBytes("us-east-1a");
  cand.values["expires_at"] = SecretBytes("2020-01-01T00:00:00Z");
  d = client_->ValidateCredential(cand);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->valid);
  std::map<std::string, std::string> codes;  // field/code -> fix
  for (const client::Finding& f : d->findings) {
    codes[absl::StrCat(f.field, "/", f.code)] = f.fix;
    EXPECT_FALSE(absl::StrContains(f.message, secret_a_));
  }
  for (const char* want :
       {"session_token/missing_field", "region/bad_region",
        "secret_access_key/whitespace_trimmed", "expires_at/expired"}) {
    ASSERT_TRUE(codes.count(want)) << want;
    if (!absl::EndsWith(want, "trimmed")) {
      EXPECT_FALSE(codes[want].empty()) << want;
    }
  }
  // The agent token cannot reach any of the new calls.
  auto as_agent = broker_->ClientWithToken(broker_->agent_token());
  EXPECT_TRUE(absl::IsPermissionDenied(as_agent->ListBindings().status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      as_agent->RollbackCredential("aws", "", 1).status()));
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
