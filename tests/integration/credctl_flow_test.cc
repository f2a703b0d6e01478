// The approval flow through credctl, the real binary, against the real
// credbrokerd: `credctl request` as the agent (agent token) in the
// background, `credctl pending / approve / deny / watch / grants / revoke /
// standing` as the approver. Secret values are compared, never printed.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_service.pb.h"
#include "credbroker/v1/types.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class CredctlFlowTest : public CredctlFixture {
 protected:
  CredctlFlowTest() { secrets_.push_back(secret_); }

  void PutAws() {
    auto r = Put("aws", "",
                 {{"access_key_id", key_id_}, {"secret_access_key", secret_}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  const std::string key_id_ = NewAwsKeyId();
  const std::string secret_ = NewAwsSecret();
};

TEST_F(CredctlFlowTest, RequestApprovedPrintsTheGrant) {
  PutAws();
  auto watch = [&] {
    Subprocess::Options o;
    o.argv = Base();
    o.argv.insert(o.argv.end(), {"watch", "--json"});
    return Subprocess::Spawn(o);
  }();
  ASSERT_TRUE(watch.ok()) << watch.status();
  // The watcher is subscribed once it has printed the end of its snapshot;
  // a request made before that (credctl still starting, on a loaded
  // machine) could be resolved before it subscribes and never reach it.
  const absl::Time subscribed_by = absl::Now() + kWait;
  while (absl::Now() < subscribed_by &&
         !absl::StrContains((*watch)->stdout_text(), "KIND_SNAPSHOT_DONE")) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(absl::StrContains((*watch)->stdout_text(), "KIND_SNAPSHOT_DONE"))
      << (*watch)->stdout_text() << (*watch)->stderr_text();
  auto request =
      StartRequest({"aws", "--action", "deploy to AWS in us-east-1",
                    "--context", "region=us-east-1", "--timeout", "60"});
  ASSERT_NE(request, nullptr);
  std::string id = WaitForPending("deploy to AWS in us-east-1");
  ASSERT_FALSE(id.empty());

  CommandResult form = Credctl({"form", "--request", id});
  EXPECT_EQ(form.exit_code, 0) << form.err;
  EXPECT_TRUE(absl::StrContains(form.out, "secret_access_key")) << form.out;
  EXPECT_TRUE(absl::StrContains(form.out, "stored")) << form.out;

  CommandResult approve =
      Credctl({"approve", id, "--scope", "once", "--ttl", "10m"});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(absl::StrContains(approve.out, "Approved " + id)) << approve.out;

  absl::StatusOr<int> code = request->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << Clean(request->stderr_text());
  EXPECT_TRUE(absl::StrContains(request->stderr_text(), id));
  EXPECT_TRUE(absl::StrContains(request->stderr_text(), "pending approval"));
  v1::Grant grant;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  request->stdout_text(), &grant)
                  .ok())
      << "grant JSON does not parse";
  EXPECT_EQ(grant.provider(), "aws");
  EXPECT_EQ(grant.request_id(), id);
  EXPECT_TRUE(grant.values().count("secret_access_key") &&
              grant.values().at("secret_access_key") == secret_)
      << "grant values differ";
  EXPECT_FALSE(absl::StrContains(request->stderr_text(), secret_));

  // The watcher printed the request and its resolution, one JSON a line.
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline &&
         !absl::StrContains((*watch)->stdout_text(), "KIND_RESOLVED")) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::string events = (*watch)->stdout_text();
  EXPECT_FALSE(absl::StrContains(events, secret_));
  int resolved = 0;
  for (absl::string_view line :
       absl::StrSplit(events, '\n', absl::SkipEmpty())) {
    v1::ApprovalEvent e;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(std::string(line), &e)
            .ok());
    if (e.kind() == v1::ApprovalEvent::KIND_RESOLVED &&
        e.request().request_id() == id) {
      ++resolved;
      EXPECT_TRUE(absl::StrContains(e.request().decision(), "approved"));
    }
  }
  EXPECT_EQ(resolved, 1) << events;
  (*watch)->Signal(SIGTERM);
  (*watch)->WaitForExit(kWait).IgnoreError();

  // The grant is listed, revoked, and listed as ended.
  CommandResult grants = Credctl({"grants", "--json"});
  ASSERT_EQ(grants.exit_code, 0) << grants.err;
  v1::ListGrantsResponse listed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(grants.out, &listed).ok());
  ASSERT_EQ(listed.grants_size(), 1);
  EXPECT_EQ(listed.grants(0).grant_id(), grant.grant_id());
  CommandResult revoke =
      Credctl({"revoke", grant.grant_id(), "--reason", "done"});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  CommandResult active = Credctl({"grants"});
  EXPECT_TRUE(absl::StrContains(active.out, "No active grants")) << active.out;
  CommandResult all = Credctl({"grants", "--all"});
  EXPECT_TRUE(absl::StrContains(all.out, "revoked: done")) << all.out;
  CommandResult audit = Credctl({"audit", "--json"});
  for (const char* kind : {"request.created", "request.approved",
                           "grant.created", "grant.revoked"}) {
    EXPECT_TRUE(absl::StrContains(audit.out, kind)) << kind;
  }
}

TEST_F(CredctlFlowTest, RequestDeniedExitsWithTheReason) {
  PutAws();
  auto request = StartRequest({"aws", "--action", "delete the production VPC"});
  ASSERT_NE(request, nullptr);
  std::string id = WaitForPending("delete the production VPC");
  ASSERT_FALSE(id.empty());
  CommandResult missing_reason = Credctl({"deny", id});
  EXPECT_EQ(missing_reason.exit_code, 2);
  CommandResult deny = Credctl({"deny", id, "--reason", "not on a Friday"});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  absl::StatusOr<int> code = request->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  EXPECT_TRUE(absl::StrContains(request->stderr_text(), "not on a Friday"))
      << request->stderr_text();
  EXPECT_TRUE(request->stdout_text().empty());
  // A second decision names the first.
  CommandResult late = Credctl({"approve", id});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(late.err, "FAILED_PRECONDITION")) << late.err;
  EXPECT_TRUE(absl::StrContains(late.err, "denied")) << late.err;
}

TEST_F(CredctlFlowTest, ApproveWithValuesAndAStandingScope) {
  // Nothing stored: the request needs input, the approver gives the values.
  auto request = StartRequest({"aws", "--action", "deploy the web tier",
                               "--session_key", "s-cli", "--need_id", "n1"});
  ASSERT_NE(request, nullptr);
  std::string id = WaitForPending("deploy the web tier");
  ASSERT_FALSE(id.empty());
  CommandResult bad = Credctl({"approve", id, "--field", "access_key_id=nope"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.err, "access_key_id")) << bad.err;
  CommandResult approve =
      Credctl({"approve", id, "--scope", "standing", "--ttl", "720h",
               "--pattern", "deploy *", "--field", "access_key_id=" + key_id_,
               "--field", "secret_access_key=" + secret_});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(absl::StrContains(approve.out, "standing approval s-"))
      << approve.out;
  absl::StatusOr<int> code = request->WaitForExit(kWait);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << Clean(request->stderr_text());
  EXPECT_TRUE(absl::StrContains(request->stderr_text(), "needs input"));

  // A matching request is granted without a prompt.
  auto second = StartRequest(
      {"aws", "--action", "deploy the db tier", "--timeout", "20"});
  ASSERT_NE(second, nullptr);
  code = second->WaitForExit(kWait);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << Clean(second->stderr_text());

  CommandResult standing = Credctl({"standing", "--json"});
  ASSERT_EQ(standing.exit_code, 0) << standing.err;
  v1::ListStandingApprovalsResponse listed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(standing.out, &listed).ok());
  ASSERT_EQ(listed.approvals_size(), 1);
  CommandResult revoke =
      Credctl({"standing", "revoke", listed.approvals(0).id()});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;

  // Now it asks again; the request gives up after its timeout.
  auto third = StartRequest(
      {"aws", "--action", "deploy the cache tier", "--timeout", "2"});
  ASSERT_NE(third, nullptr);
  EXPECT_FALSE(WaitForPending("deploy the cache tier").empty());
  code = third->WaitForExit(kWait);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
}

TEST_F(CredctlFlowTest, EachCommandUsesItsRolesToken) {
  // The agent token cannot approve; the approver token cannot request.
  CommandResult as_agent = Credctl(
      {"--token_file", broker_->data_dir() + "/agent.token", "pending"});
  EXPECT_EQ(as_agent.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(as_agent.err, "PERMISSION_DENIED"))
      << as_agent.err;
  CommandResult as_approver =
      Credctl({"--token_file", broker_->data_dir() + "/approver.token",
               "request", "aws", "--action", "x", "--timeout", "5"});
  EXPECT_EQ(as_approver.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(as_approver.err, "PERMISSION_DENIED"))
      << as_approver.err;
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
