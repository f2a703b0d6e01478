// credctl's provider commands, the real binary against the real credbrokerd:
// doctor (a ready credential and one whose own expiry date has passed),
// history and rollback, the default profile and its mark in `list`, and a
// resource binding made by an approved `credctl request` as seen by
// `bindings`, `needs --resource`, `pending` and `watch`. Secret values are
// compared, never printed.
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_service.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class CredctlProviderTest : public CredctlFixture {
 protected:
  // `credctl set aws` with a fresh key pair (and extra --field arguments);
  // returns the key id.
  std::string SetAws(const std::string& profile,
                     const std::vector<std::string>& extra = {}) {
    std::string key_id = NewAwsKeyId();
    secrets_.push_back(NewAwsSecret());
    std::vector<std::string> args = {
        "set",     "aws",
        "--field", "access_key_id=" + key_id,
        "--field", "secret_access_key=" + secrets_.back()};
    if (!profile.empty()) args.insert(args.end(), {"--profile", profile});
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Credctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return key_id;
  }

  // The line of `text` that contains `needle` ("" when none).
  static std::string LineWith(const std::string& text,
                              absl::string_view needle) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StrContains(line, needle)) return std::string(line);
    }
    return "";
  }
};

TEST_F(CredctlProviderTest, DoctorOnAReadyAndAnExpiredCredential) {
  SetAws("");
  CommandResult good = Credctl({"doctor", "aws"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_TRUE(absl::StrContains(good.out, "aws/default: READY")) << good.out;
  EXPECT_TRUE(absl::StrContains(good.out, "check in the provider's console"))
      << good.out;
  EXPECT_TRUE(absl::StrContains(good.out, "disabled")) << good.out;
  EXPECT_TRUE(absl::StrContains(good.out, "permissions it needs")) << good.out;
  EXPECT_TRUE(absl::StrContains(good.out, "AmazonEC2FullAccess")) << good.out;

  // A value whose own expiry date has passed is refused when stored, so
  // this one is stored with an expiry a few seconds ahead (accepted, with an
  // "expires soon" warning) and diagnosed once that moment is past: the
  // broker then reports it EXPIRED, as it would a key that aged in place.
  const absl::Time expiry = absl::Now() + absl::Seconds(3);
  SetAws("shortlived",
         {"--field", absl::StrCat("expires_at=",
                                  absl::FormatTime(absl::RFC3339_sec, expiry,
                                                   absl::UTCTimeZone()))});
  absl::SleepFor(expiry - absl::Now() + absl::Seconds(1));

  CommandResult bad = Credctl({"doctor"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.out, "aws/default: READY")) << bad.out;
  EXPECT_TRUE(absl::StrContains(bad.out, "aws/shortlived: EXPIRED — not ready"))
      << bad.out;
  EXPECT_TRUE(absl::StrContains(bad.out, "warning: expires_at: ")) << bad.out;
  EXPECT_TRUE(absl::StrContains(bad.out, "fix: Create a new one")) << bad.out;
  EXPECT_TRUE(absl::StrContains(bad.out, "2 credentials checked; 1 not ready"))
      << bad.out;

  // One profile at a time, with --profile.
  EXPECT_EQ(Credctl({"doctor", "aws", "--profile", "default"}).exit_code, 0);
  EXPECT_EQ(Credctl({"doctor", "aws", "--profile", "shortlived"}).exit_code, 1);
  EXPECT_EQ(Credctl({"doctor", "--profile", "default"}).exit_code, 0);
  CommandResult missing = Credctl({"doctor", "aws", "--profile", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  CommandResult none = Credctl({"doctor", "gcp"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(none.out, "gcp: nothing stored")) << none.out;

  // --json: one document; every diagnosis is a ValidateCredentialResponse.
  CommandResult json = Credctl({"doctor", "--json"});
  EXPECT_EQ(json.exit_code, 1);
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &doc).ok())
      << json.out;
  EXPECT_FALSE(doc.fields().at("all_ready").bool_value());
  const auto& items = doc.fields().at("credentials").list_value().values();
  ASSERT_EQ(items.size(), 2);
  int expired = 0;
  for (const auto& item : items) {
    EXPECT_EQ(item.struct_value().fields().at("provider").string_value(),
              "aws");
    std::string diagnosis;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                    item.struct_value().fields().at("diagnosis"), &diagnosis)
                    .ok());
    v1::ValidateCredentialResponse d;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(diagnosis, &d).ok());
    if (d.readiness() == v1::READINESS_EXPIRED) {
      ++expired;
      EXPECT_EQ(d.profile(), "shortlived");
    }
    EXPECT_FALSE(d.required_permissions().empty());
    EXPECT_FALSE(d.manual_checks().empty());
  }
  EXPECT_EQ(expired, 1);

  // `list` shows the readiness and the expiry date.
  CommandResult list = Credctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::string row = LineWith(list.out, "shortlived");
  EXPECT_TRUE(absl::StrContains(row, "EXPIRED")) << list.out;
  EXPECT_TRUE(absl::StrContains(
      row, absl::FormatTime("%Y-%m-%d %H:%M", expiry, absl::UTCTimeZone())))
      << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "EXPIRES")) << list.out;
}

TEST_F(CredctlProviderTest, HistoryAndRollback) {
  SetAws("");
  SetAws("");
  SetAws("");
  CommandResult history = Credctl({"history", "aws"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_TRUE(absl::StrContains(history.out, "aws/default: 3 versions"))
      << history.out;
  EXPECT_TRUE(absl::StrContains(LineWith(history.out, "(current)"), "   3  "))
      << history.out;

  CommandResult json = Credctl({"history", "aws", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  v1::ListCredentialVersionsResponse before;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.out, &before).ok());
  ASSERT_EQ(before.versions_size(), 3);
  const std::string fp1 = before.versions(0).fingerprint();
  ASSERT_FALSE(fp1.empty());
  EXPECT_NE(fp1, before.versions(2).fingerprint());
  EXPECT_TRUE(absl::StrContains(history.out, fp1)) << history.out;

  EXPECT_EQ(Credctl({"rollback", "aws"}).exit_code, 2);  // No --version.
  CommandResult rollback = Credctl({"rollback", "aws", "--version", "1"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_TRUE(absl::StrContains(
      rollback.out, "Restored aws/default version 1 as version 4 (READY)"))
      << rollback.out;
  EXPECT_TRUE(absl::StrContains(rollback.out, fp1)) << rollback.out;

  json = Credctl({"history", "aws", "--json"});
  v1::ListCredentialVersionsResponse after;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.out, &after).ok());
  ASSERT_EQ(after.versions_size(), 4);
  EXPECT_EQ(after.versions(3).version(), 4);
  EXPECT_EQ(after.versions(3).fingerprint(), fp1);
  EXPECT_TRUE(after.versions(3).current());
  EXPECT_FALSE(after.versions(2).current());

  // Errors name the problem and exit 1.
  CommandResult current = Credctl({"rollback", "aws", "--version", "4"});
  EXPECT_EQ(current.exit_code, 1);
  CommandResult unknown = Credctl({"rollback", "aws", "--version", "9"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(Credctl({"history", "aws", "--profile", "nope"}).exit_code, 1);
}

TEST_F(CredctlProviderTest, DefaultProfileAndTheListMark) {
  SetAws("");
  SetAws("staging");
  CommandResult shown = Credctl({"default", "aws"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(
      absl::StrContains(shown.out, "aws: the default profile is default"))
      << shown.out;
  CommandResult list = Credctl({"list"});
  EXPECT_TRUE(absl::StrContains(LineWith(list.out, "aws "), "default*"))
      << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "* the provider's default profile"))
      << list.out;

  CommandResult set = Credctl({"default", "aws", "staging"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_TRUE(absl::StrContains(
      set.out, "aws: the default profile is now staging (was default)"))
      << set.out;
  list = Credctl({"list"});
  EXPECT_TRUE(absl::StrContains(LineWith(list.out, "staging"), "staging*"))
      << list.out;
  EXPECT_FALSE(absl::StrContains(list.out, "default*")) << list.out;
  // Days to rotation: the broker's 90-day default, counted by the broker.
  std::string row = LineWith(list.out, "staging");
  EXPECT_TRUE(absl::StrContains(row, " 89d ") ||
              absl::StrContains(row, " 90d "))
      << list.out;

  CommandResult json = Credctl({"list", "--json"});
  v1::ListCredentialsResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok());
  for (const auto& c : parsed.credentials())
    EXPECT_EQ(c.is_default(), c.profile() == "staging") << c.profile();

  CommandResult shown_json = Credctl({"default", "aws", "--json"});
  v1::SetDefaultProfileResponse d;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(shown_json.out, &d).ok());
  EXPECT_EQ(d.profile(), "staging");
  EXPECT_TRUE(d.configured());

  // A profile with nothing stored yet may be the default; credctl says so.
  CommandResult empty = Credctl({"default", "aws", "later"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(absl::StrContains(empty.out, "nothing is stored under later yet"))
      << empty.out;
  EXPECT_EQ(Credctl({"default", "no-such-provider"}).exit_code, 1);
  EXPECT_EQ(Credctl({"default"}).exit_code, 2);
}

TEST_F(CredctlProviderTest, BindingFromAnApprovedRequest) {
  SetAws("");
  SetAws("other");
  CommandResult empty = Credctl({"bindings"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(absl::StrContains(empty.out, "No resource bindings"))
      << empty.out;

  // The agent asks for AWS to create cluster-1; the approver approves.
  auto request =
      StartRequest({"aws", "--action", "create cluster-1", "--context",
                    "resource=cluster-1", "--timeout", "60"});
  ASSERT_NE(request, nullptr);
  std::string id = WaitForPending("create cluster-1");
  ASSERT_FALSE(id.empty());
  CommandResult approve = Credctl({"approve", id});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  absl::StatusOr<int> code = request->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << Clean(request->stderr_text());

  CommandResult bindings = Credctl({"bindings"});
  ASSERT_EQ(bindings.exit_code, 0) << bindings.err;
  std::string row = LineWith(bindings.out, "cluster-1");
  EXPECT_TRUE(absl::StrContains(row, "aws/default")) << bindings.out;
  EXPECT_TRUE(absl::StrContains(row, "current")) << bindings.out;
  EXPECT_TRUE(absl::StrContains(Credctl({"bindings", "aws"}).out, "cluster-1"));
  EXPECT_FALSE(
      absl::StrContains(Credctl({"bindings", "gcp"}).out, "cluster-1"));

  // The default changes; the cluster still resolves to its account.
  ASSERT_EQ(Credctl({"default", "aws", "other"}).exit_code, 0);
  CommandResult bound = Credctl({"needs", "aws", "--resource", "cluster-1"});
  ASSERT_EQ(bound.exit_code, 0) << bound.err;
  EXPECT_TRUE(absl::StrContains(bound.out, "aws/default (bound to cluster-1)"))
      << bound.out;
  CommandResult plain = Credctl({"needs", "aws"});
  EXPECT_TRUE(absl::StrContains(plain.out, "aws/other (the default profile)"))
      << plain.out;
  CommandResult bound_json =
      Credctl({"needs", "aws", "--resource", "cluster-1", "--json"});
  v1::ResolveRequirementsResponse resolved;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(bound_json.out, &resolved)
          .ok());
  ASSERT_EQ(resolved.requirements_size(), 1);
  EXPECT_EQ(resolved.requirements(0).profile_source(), "binding");

  // The bound profile gets another key: bindings, needs, pending and watch
  // tell the approver.
  SetAws("default");
  bindings = Credctl({"bindings"});
  EXPECT_TRUE(absl::StrContains(LineWith(bindings.out, "cluster-1"), "rotated"))
      << bindings.out;
  EXPECT_TRUE(absl::StrContains(bindings.out, "  note: ")) << bindings.out;
  bound = Credctl({"needs", "aws", "--resource", "cluster-1"});
  EXPECT_TRUE(absl::StrContains(bound.out, "  note: ")) << bound.out;

  auto watch = [&] {
    Subprocess::Options o;
    o.argv = Base();
    o.argv.push_back("watch");  // Standard input is not a terminal: lines.
    return Subprocess::Spawn(o);
  }();
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto again = StartRequest({"aws", "--action", "scale cluster-1", "--context",
                             "resource=cluster-1", "--timeout", "60"});
  ASSERT_NE(again, nullptr);
  id = WaitForPending("scale cluster-1");
  ASSERT_FALSE(id.empty());
  CommandResult pending = Credctl({"pending"});
  EXPECT_TRUE(absl::StrContains(pending.out, "different credential"))
      << pending.out;
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline &&
         !absl::StrContains((*watch)->stdout_text(), "scale cluster-1")) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::string watched = LineWith((*watch)->stdout_text(), "scale cluster-1");
  EXPECT_TRUE(absl::StrContains(watched, "note: ")) << watched;
  EXPECT_TRUE(absl::StrContains(watched, "different credential")) << watched;

  ASSERT_EQ(Credctl({"deny", id, "--reason", "check the account"}).exit_code,
            0);
  code = again->WaitForExit(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  (*watch)->Signal(SIGTERM);
  (*watch)->WaitForExit(kWait).IgnoreError();
  for (const std::string& s : secrets_) {
    EXPECT_FALSE(absl::StrContains((*watch)->stdout_text(), s));
  }
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
