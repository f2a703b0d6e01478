// credctl, the real binary, against the real credbrokerd: providers, set,
// list (text and JSON), show, validate, delete and the error path. Standard
// input is /dev/null, so credctl never prompts.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "credbroker/v1/credential_service.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/credctl_fixture.h"

namespace credbroker {
namespace testing {
namespace {

class CredctlTest : public CredctlFixture {
 protected:
  // No command may print the secret it was given; failure messages show the
  // output with it replaced.
  CredctlTest() { secrets_.push_back(secret_); }

  const std::string key_id_ = NewAwsKeyId();
  const std::string secret_ = NewAwsSecret();
};

TEST_F(CredctlTest, ProvidersListsTheCatalog) {
  CommandResult r = Credctl({"providers"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* id : {"aws", "gcp", "azure", "auth0", "custom", "slack"}) {
    EXPECT_TRUE(absl::StrContains(r.out, id)) << id;
  }
  EXPECT_TRUE(absl::StrContains(r.out, "access_key_id"));
}

TEST_F(CredctlTest, SetListShowValidateDelete) {
  CommandResult set =
      Credctl({"set", "aws", "--field", "access_key_id=" + key_id_, "--field",
               "secret_access_key=" + secret_});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_TRUE(absl::StrContains(set.out, "Stored aws/default version 1"))
      << set.out;

  CommandResult list = Credctl({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, "aws")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "default")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "READY")) << list.out;
  EXPECT_TRUE(absl::StrContains(
      list.out, key_id_.substr(0, 4) + "…" + key_id_.substr(16)))
      << list.out;

  CommandResult json = Credctl({"list", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  v1::ListCredentialsResponse parsed;
  google::protobuf::util::JsonParseOptions options;
  auto status =
      google::protobuf::util::JsonStringToMessage(json.out, &parsed, options);
  ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << json.out;
  ASSERT_EQ(parsed.credentials_size(), 1);
  EXPECT_EQ(parsed.credentials(0).provider(), "aws");
  EXPECT_EQ(parsed.credentials(0).profile(), "default");
  EXPECT_EQ(parsed.credentials(0).version(), 1);
  EXPECT_EQ(parsed.credentials(0).readiness(), v1::READINESS_READY);

  CommandResult show = Credctl({"show", "aws"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(absl::StrContains(show.out, "aws/default")) << show.out;
  EXPECT_TRUE(absl::StrContains(show.out, "version 1")) << show.out;
  EXPECT_TRUE(absl::StrContains(show.out, "secret_access_key")) << show.out;

  CommandResult good = Credctl({"validate", "aws"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_TRUE(absl::StrContains(good.out, "valid")) << good.out;

  CommandResult bad =
      Credctl({"validate", "aws", "--field", "access_key_id=AKIA...bad"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(bad.out, "NOT valid")) << bad.out;
  EXPECT_TRUE(absl::StrContains(bad.out + bad.err, "access_key_id"))
      << bad.out << bad.err;

  CommandResult second =
      Credctl({"set", "aws", "--profile", "staging", "--field",
               "access_key_id=" + std::string(kAwsExampleKeyId), "--field",
               "secret_access_key=" + secret_});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  CommandResult staging =
      Credctl({"show", "aws", "--profile", "staging", "--json"});
  ASSERT_EQ(staging.exit_code, 0) << staging.err;
  v1::CredentialSummary summary;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(staging.out, &summary).ok())
      << staging.out;
  EXPECT_EQ(summary.profile(), "staging");

  CommandResult del = Credctl({"delete", "aws"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_TRUE(absl::StrContains(del.out, "Deleted aws/default (1 version)"))
      << del.out;

  CommandResult gone = Credctl({"show", "aws"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(gone.err, "NOT_FOUND")) << gone.err;
  CommandResult still = Credctl({"show", "aws", "--profile", "staging"});
  EXPECT_EQ(still.exit_code, 0) << still.err;
}

TEST_F(CredctlTest, ErrorsPrintTheBrokersMessageAndFieldViolations) {
  CommandResult unknown =
      Credctl({"set", "no-such-cloud", "--field", "token=abc"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(unknown.err, "INVALID_ARGUMENT"))
      << unknown.err;
  EXPECT_TRUE(absl::StrContains(unknown.err, "unknown provider"))
      << unknown.err;
  EXPECT_TRUE(absl::StrContains(unknown.err, "  provider: ")) << unknown.err;

  CommandResult bad = Credctl({"set", "aws", "--field", "access_key_id=AKIA123",
                               "--field", "secret_access_key=" + secret_});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.err, "INVALID_ARGUMENT")) << bad.err;
  EXPECT_TRUE(absl::StrContains(bad.err, "values.access_key_id: ")) << bad.err;
  CommandResult list = Credctl({"list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  v1::ListCredentialsResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(list.out, &parsed).ok());
  EXPECT_EQ(parsed.credentials_size(), 0);

  // Usage errors exit 2; a broker that is not there is an error too.
  EXPECT_EQ(Credctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Credctl({"set"}).exit_code, 2);
  CommandResult down =
      Credctl({"--broker", "unix:" + tmp_.path() + "/nobody.sock", "--timeout",
               "5", "list"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(down.err, "UNAVAILABLE")) << down.err;
  EXPECT_TRUE(absl::StrContains(down.err, "is credbrokerd running?"))
      << down.err;
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
