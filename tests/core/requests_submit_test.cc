// RequestManager: needs, the answers agents get, forms and decisions.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "gtest/gtest.h"
#include "tests/core/requests_fixture.h"

namespace credbroker {
namespace {

TEST_F(RequestManagerTest, MissingCredentialNeedsInputNamingTheFields) {
  Attach("s1");
  absl::StatusOr<NeedUpdate> u =
      requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->state, RequestState::kNeedsInput);
  EXPECT_EQ(u->missing_fields,
            (std::vector<std::string>{"access_key_id", "secret_access_key"}));
  ASSERT_EQ(updates_["s1"].size(), 1u);
  EXPECT_EQ(updates_["s1"][0].request_id, u->request_id);
}

TEST_F(RequestManagerTest, ApproveWithValuesStoresThemAndGrants) {
  WatchAll();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(HasEvent(WatchEventKind::kAdded, pending.request_id));
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes(kKeyId));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(updates_["s1"].size(), 2u);
  const NeedUpdate& granted = updates_["s1"][1];
  EXPECT_EQ(granted.state, RequestState::kGranted);
  ASSERT_TRUE(granted.grant.has_value());
  EXPECT_EQ(granted.grant->record.grant_id, r->grant_id);
  EXPECT_EQ(granted.grant->record.expires_at, now_ + absl::Minutes(15));
  EXPECT_TRUE(granted.grant->values.at("secret_access_key").Reveal() ==
              kSecret);
  EXPECT_TRUE(HasEvent(WatchEventKind::kResolved, pending.request_id));
  EXPECT_TRUE(credentials_->Get("aws", "default", 0).ok());
  EXPECT_EQ(AuditKinds(),
            (std::vector<std::string>{"request.created", "credential.put",
                                      "request.approved", "grant.created"}));
  EXPECT_TRUE(audit_->Verify().ok());
  EXPECT_TRUE(requests_->PendingRequests().empty());
}

// An approval with values stores a new version: the next read sees it, and
// no answer read before it still holds (CredentialManager::AnswerLife).
TEST_F(RequestManagerTest, AnApprovalWithValuesIsSeenByTheNextRead) {
  StoreAws();
  Attach("s1");
  CredentialManager::AnswerLife life;
  absl::StatusOr<CredentialSummary> before =
      credentials_->Get("aws", "", 0, &life);
  ASSERT_TRUE(before.ok()) << before.status();
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_FALSE(credentials_->StillHolds(life));  // The request's commit.
  before = credentials_->Get("aws", "", 0, &life);
  ASSERT_TRUE(before.ok()) << before.status();
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes("AKIAI44QH8DHBEXAMPLE"));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  ASSERT_TRUE(requests_->Approve(std::move(in), approver_).ok());
  EXPECT_FALSE(credentials_->StillHolds(life));
  absl::StatusOr<CredentialSummary> after = credentials_->Get("aws", "", 0);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version, before->version + 1);
  EXPECT_NE(after->fingerprint, before->fingerprint);
}

TEST_F(RequestManagerTest, InvalidValuesKeepTheRequestPending) {
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  in.values.emplace("access_key_id", SecretBytes("AKIA-short"));
  in.values.emplace("secret_access_key", SecretBytes(kSecret));
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(GetFieldViolations(r.status()).empty());
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_EQ(updates_["s1"].size(), 1u);
}

TEST_F(RequestManagerTest, ApproveWithoutValuesNeedsAReadyCredential) {
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ApproveInput in;
  in.request_id = pending.request_id;
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  StoreAws();
  EXPECT_TRUE(requests_->Approve(in, approver_).ok());
}

// What the approver sees of the stored credential: none at first, then the
// readiness of the one stored meanwhile.
TEST_F(RequestManagerTest, PendingRequestsShowTheStoredCredentialsReadiness) {
  Attach("s1");
  ASSERT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  ASSERT_EQ(requests_->PendingRequests().size(), 1u);
  EXPECT_FALSE(requests_->PendingRequests()[0].credential_readiness);
  StoreAws();
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_TRUE(pending[0].credential_readiness.has_value());
  EXPECT_EQ(*pending[0].credential_readiness, Readiness::kReady);
}

TEST_F(RequestManagerTest, FirstDecisionWins) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(pending.state, RequestState::kPendingApproval);
  ApproveInput in;
  in.request_id = pending.request_id;
  ASSERT_TRUE(requests_->Approve(in, approver_).ok());
  absl::Status deny =
      requests_->Deny(pending.request_id, "too late", approver_);
  EXPECT_EQ(deny.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(deny.message(), "approved")) << deny.message();
  EXPECT_EQ(requests_->Approve(in, approver_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(requests_->Deny("r-nope", "", approver_).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RequestManagerTest, DenyTellsTheAgentWhy) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  ASSERT_TRUE(
      requests_->Deny(pending.request_id, "not on a Friday", approver_).ok());
  ASSERT_EQ(updates_["s1"].size(), 2u);
  EXPECT_EQ(updates_["s1"][1].state, RequestState::kDenied);
  EXPECT_EQ(updates_["s1"][1].reason, "not on a Friday");
  EXPECT_FALSE(updates_["s1"][1].grant.has_value());
}

// A request that expired while nothing swept it (the broker was down, or
// the tick has not run yet) cannot be approved.
TEST_F(RequestManagerTest, ARequestPastItsExpiryCannotBeApproved) {
  StoreAws();
  Attach("s1");
  NeedUpdate asked = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  now_ += absl::Minutes(10);  // The pending timeout; no Tick() yet.
  ApproveInput in;
  in.request_id = asked.request_id;
  absl::Status late = requests_->Approve(in, approver_).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition) << late;
  EXPECT_TRUE(absl::StrContains(late.message(), "expired")) << late;
}

TEST_F(RequestManagerTest, MalformedNeedsAndLimits) {
  Attach("s1");
  Need bad = AwsNeed("");
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  Need unknown = AwsNeed("x");
  unknown.provider = "ibm";
  EXPECT_EQ(requests_->SubmitNeed("s1", agent_, unknown).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(
        requests_->SubmitNeed("s1", agent_, AwsNeed("n" + std::to_string(i)))
            .ok());
  }
  EXPECT_EQ(
      requests_->SubmitNeed("s1", agent_, AwsNeed("one-more")).status().code(),
      absl::StatusCode::kResourceExhausted);
}

TEST_F(RequestManagerTest, WatchersGetASnapshotFirst) {
  StoreAws();
  Attach("s1");
  requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).IgnoreError();
  requests_->SubmitNeed("s1", agent_, AwsNeed("n2")).IgnoreError();
  WatchAll();
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].kind, WatchEventKind::kSnapshot);
  EXPECT_EQ(events_[1].kind, WatchEventKind::kSnapshot);
  EXPECT_EQ(events_[2].kind, WatchEventKind::kSnapshotDone);
}

TEST_F(RequestManagerTest, FormShowsPlainValuesAndOnlyWhetherSecretsAreSet) {
  StoreAws();
  Attach("s1");
  NeedUpdate pending = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  absl::StatusOr<Form> form = requests_->GetForm(pending.request_id, "", "");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->provider->id, "aws");
  ASSERT_TRUE(form->request.has_value());
  for (const FormField& f : form->fields) {
    if (f.spec.name == "access_key_id") {
      EXPECT_EQ(f.current_value, kKeyId);
    }
    if (f.spec.name == "secret_access_key") {
      EXPECT_TRUE(f.is_set);
      EXPECT_TRUE(f.current_value.empty());
    }
  }
}

TEST_F(RequestManagerTest, RedisFormSaysTheBrokerGeneratesThePassword) {
  Attach("s1");
  Need n;
  n.need_id = "r1";
  n.provider = "redis-cloud";
  n.action = "use Redis Cloud";
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, n);
  ASSERT_EQ(u.state, RequestState::kNeedsInput);
  absl::StatusOr<Form> form = requests_->GetForm(u.request_id, "", "");
  ASSERT_TRUE(form.ok());
  bool says = false;
  for (const std::string& note : form->notes) {
    says |= absl::StrContains(note, "generate") &&
            absl::StrContains(note, "database_password");
  }
  EXPECT_TRUE(says);
  ApproveInput in;
  in.request_id = u.request_id;
  in.values.emplace("account_key", SecretBytes(std::string(50, 'a')));
  in.values.emplace("user_key", SecretBytes(std::string(50, 'b')));
  in.generate = {"database_password"};
  absl::StatusOr<ApproveResult> r =
      requests_->Approve(std::move(in), approver_);
  ASSERT_TRUE(r.ok()) << r.status();
  const NeedUpdate& g = updates_["s1"].back();
  ASSERT_TRUE(g.grant.has_value());
  EXPECT_EQ(g.grant->values.at("database_password").size(), 32u);
}

// The per-session bound counts only that session's open needs, including
// for session keys that are prefixes of one another.
TEST_F(RequestManagerTest, OpenNeedsAreBoundedPerSession) {
  StoreAws();
  for (const std::string s : {"s", "s1", "t"}) Attach(s);
  const int limit = 64;  // RequestOptions::max_open_per_session's default.
  for (int i = 0; i < limit; ++i) {
    ASSERT_TRUE(
        requests_->SubmitNeed("s", agent_, AwsNeed(absl::StrCat("n", i))).ok());
  }
  absl::StatusOr<NeedUpdate> over =
      requests_->SubmitNeed("s", agent_, AwsNeed("one-more"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(over.status().message(),
                                "already has 64 needs waiting"))
      << over.status();
  // Repeating a need that is already open is not a new one.
  EXPECT_TRUE(requests_->SubmitNeed("s", agent_, AwsNeed("n7")).ok());
  // Other sessions (one whose key starts with this one's) are not affected.
  EXPECT_TRUE(requests_->SubmitNeed("s1", agent_, AwsNeed("n1")).ok());
  EXPECT_TRUE(requests_->SubmitNeed("t", agent_, AwsNeed("n1")).ok());
  // A cancelled need frees a place.
  ASSERT_TRUE(requests_->CancelNeed("s", "n3", agent_).ok());
  EXPECT_TRUE(requests_->SubmitNeed("s", agent_, AwsNeed("one-more")).ok());
  EXPECT_EQ(
      requests_->SubmitNeed("s", agent_, AwsNeed("two-more")).status().code(),
      absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace credbroker
