// RequestManager: default profiles, resource bindings and rotation events.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/core/requests_fixture.h"

namespace credbroker {
namespace {

// --- Default profiles, resource bindings and rotation events. ---

constexpr char kKeyId2[] = "AKIAI44QH8DHBEXAMPLE";
constexpr char kSecret2[] = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";

class BindingTest : public RequestManagerTest {
 protected:
  void Store(const std::string& profile, const char* id, const char* secret) {
    PutCredentialInput in;
    in.provider = "aws";
    in.profile = profile;
    in.values.emplace("access_key_id", SecretBytes(id));
    in.values.emplace("secret_access_key", SecretBytes(secret));
    ASSERT_TRUE(credentials_->Put(std::move(in)).ok());
  }
  Need ClusterNeed(const std::string& id, const std::string& key = "cluster") {
    Need n = AwsNeed(id, "deploy cluster");
    n.context = {{key, "prod-eu"}, {"region", "eu-west-1"}};
    return n;
  }
  // The open request `request_id` (an empty record when it is not open).
  RequestRecord Pending(const std::string& request_id) {
    for (const RequestView& v : requests_->PendingRequests()) {
      if (v.record.request_id == request_id) return v.record;
    }
    ADD_FAILURE() << "request " << request_id << " is not open";
    return RequestRecord();
  }
  // Submits `need` and approves it once; returns the grant's update.
  NeedUpdate Grant(const Need& need) {
    NeedUpdate u = *requests_->SubmitNeed("s1", agent_, need);
    EXPECT_EQ(u.state, RequestState::kPendingApproval) << u.message;
    ApproveInput in;
    in.request_id = u.request_id;
    EXPECT_TRUE(requests_->Approve(std::move(in), approver_).ok());
    return updates_["s1"].back();
  }
};

TEST_F(BindingTest, EmptyProfileUsesTheProvidersDefault) {
  Attach("s1");
  Store("staging", kKeyId2, kSecret2);
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "staging").ok());
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, AwsNeed("n1"));
  EXPECT_EQ(u.state, RequestState::kPendingApproval);
  std::vector<RequestView> pending = requests_->PendingRequests();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].record.profile, "staging");
  absl::StatusOr<Form> form = requests_->GetForm("", "aws", "");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form->profile, "staging");
}

TEST_F(BindingTest, ABindingRecordedInTheSpillChoosesTheProfile) {
  EnableSpill();
  OpenAll();
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  store_->fail_flow = true;
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);
  ASSERT_TRUE(SpillExists());
  // The default is written with its audit event (WriteFlow, which this
  // store fails), straight to the store; flow writes stay in the spill.
  store_->fail_flow = false;
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "other").ok());
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, ClusterNeed("n2"));
  EXPECT_EQ(Pending(u.request_id).profile, "default");
}

TEST_F(BindingTest, GrantBindsTheResourceAndTheBindingSurvivesADefaultChange) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  NeedUpdate g = Grant(ClusterNeed("n1"));
  ASSERT_EQ(g.state, RequestState::kGranted);
  ASSERT_TRUE(g.grant.has_value());
  EXPECT_EQ(g.grant->record.profile, "default");

  std::vector<BindingView> bindings = *credentials_->ListBindings("");
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].record.resource, "prod-eu");
  EXPECT_EQ(bindings[0].record.profile, "default");
  EXPECT_EQ(bindings[0].record.grant_id, g.grant->record.grant_id);
  EXPECT_EQ(bindings[0].record.fingerprint,
            credentials_->Get("aws", "default", 0)->fingerprint);
  EXPECT_EQ(bindings[0].state, BindingState::kCurrent);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "binding.created"),
            kinds.end());

  // The default moves to "other"; a need naming the cluster (by any of the
  // resource keys) still resolves to "default", with nothing to note.
  ASSERT_TRUE(credentials_->SetDefaultProfile("aws", "other").ok());
  for (const char* key : {"cluster", "resource", "cluster_id"}) {
    SCOPED_TRACE(key);
    NeedUpdate u = *requests_->SubmitNeed(
        "s1", agent_, ClusterNeed(std::string("n-") + key, key));
    RequestRecord r = Pending(u.request_id);
    EXPECT_EQ(r.profile, "default");
    EXPECT_TRUE(r.binding_note.empty()) << r.binding_note;
    ASSERT_TRUE(
        requests_->CancelNeed("s1", std::string("n-") + key, agent_).ok());
  }
  // A need naming no resource gets the new default.
  EXPECT_EQ(
      Pending(requests_->SubmitNeed("s1", agent_, AwsNeed("plain"))->request_id)
          .profile,
      "other");
  // The binding survives a restart.
  requests_.reset();
  OpenAll();
  EXPECT_EQ(credentials_->ListBindings("aws")->size(), 1u);
}

TEST_F(BindingTest, ApproverIsToldWhenTheBoundCredentialRotatedOrWasDeleted) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);

  Store("default", kKeyId2, kSecret2);  // Rotated.
  NeedUpdate u = *requests_->SubmitNeed("s1", agent_, ClusterNeed("n2"));
  RequestView v;
  v.record = Pending(u.request_id);
  EXPECT_TRUE(absl::StrContains(v.record.binding_note, "different credential"))
      << v.record.binding_note;
  absl::StatusOr<Form> form = requests_->GetForm(u.request_id, "", "");
  ASSERT_TRUE(form.ok());
  bool noted = false;
  for (const std::string& n : form->notes) noted |= n == v.record.binding_note;
  EXPECT_TRUE(noted);
  // The note survives a restart (it is stored with the request).
  requests_.reset();
  OpenAll();
  ASSERT_TRUE(requests_->Recover().ok());
  EXPECT_EQ(Pending(u.request_id).binding_note, v.record.binding_note);
  Attach("s1");
  // Approving refreshes the binding to the new fingerprint.
  ApproveInput in;
  in.request_id = u.request_id;
  ASSERT_TRUE(requests_->Approve(std::move(in), approver_).ok());
  std::vector<BindingView> b = *credentials_->ListBindings("aws");
  EXPECT_EQ(b[0].state, BindingState::kCurrent);
  EXPECT_EQ(b[0].record.credential_version, 2);

  ASSERT_TRUE(credentials_->Delete("aws", "default").ok());
  RequestRecord d = Pending(
      requests_->SubmitNeed("s1", agent_, ClusterNeed("n3"))->request_id);
  EXPECT_EQ(d.profile, "default");
  EXPECT_EQ(d.state, static_cast<int>(RequestState::kNeedsInput));
  EXPECT_TRUE(absl::StrContains(d.binding_note, "deleted"));
}

TEST_F(BindingTest, ExplicitOtherProfileKeepsTheBindingAndIsNoted) {
  Attach("s1");
  Store("default", kKeyId, kSecret);
  Store("other", kKeyId2, kSecret2);
  ASSERT_EQ(Grant(ClusterNeed("n1")).state, RequestState::kGranted);
  Need n = ClusterNeed("n2");
  n.profile = "other";
  NeedUpdate g = Grant(n);
  ASSERT_EQ(g.state, RequestState::kGranted);
  EXPECT_EQ(g.grant->record.profile, "other");
  EXPECT_EQ(credentials_->ListBindings("aws")->at(0).record.profile, "default");
}

TEST_F(BindingTest, RotationDueEventOncePerCredentialVersion) {
  WatchAll();
  Attach("s1");
  Store("default", kKeyId, kSecret);
  now_ += absl::Hours(24 * 91);
  auto rotation_events = [this] {
    int n = 0;
    for (const WatchEvent& e : events_) {
      if (e.kind != WatchEventKind::kRotationDue) continue;
      ++n;
      EXPECT_TRUE(e.credential.has_value());
      if (e.credential.has_value()) {
        EXPECT_EQ(e.credential->readiness, Readiness::kRotationDue);
        EXPECT_EQ(e.credential->version, 1);
      }
      EXPECT_TRUE(absl::StrContains(e.message, "rotation period"));
      EXPECT_FALSE(absl::StrContains(e.message, kSecret));
    }
    return n;
  };
  ASSERT_EQ(Grant(AwsNeed("n1")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 1);
  ASSERT_EQ(Grant(AwsNeed("n2")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 1);  // Same version: not again.
  // Not again after a restart either.
  requests_.reset();
  OpenAll();
  events_.clear();
  WatchAll();
  Attach("s1");
  ASSERT_EQ(Grant(AwsNeed("n3")).state, RequestState::kGranted);
  EXPECT_EQ(rotation_events(), 0);
  std::vector<std::string> kinds = AuditKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "credential.rotation_due"),
            1);
}

}  // namespace
}  // namespace credbroker
