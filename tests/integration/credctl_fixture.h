// A BrokerTest that drives the real credctl binary: every run's output is
// checked for the secret values the test stored (and shown with them
// replaced), `credctl request` runs in the background as the agent, and
// `credctl pending` is polled for a request to decide.
#ifndef CREDBROKER_TESTS_INTEGRATION_CREDCTL_FIXTURE_H_
#define CREDBROKER_TESTS_INTEGRATION_CREDCTL_FIXTURE_H_

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
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/integration/subprocess.h"

namespace credbroker {
namespace testing {

class CredctlFixture : public BrokerTest {
 protected:
  static constexpr absl::Duration kWait = absl::Seconds(15);

  std::vector<std::string> Base() const {
    return {CredctlPath(), "--data_dir", broker_->data_dir()};
  }

  // `text` with every secret this test stored replaced.
  std::string Clean(std::string text) const {
    for (const std::string& s : secrets_) {
      text = absl::StrReplaceAll(text, {{s, "<secret>"}});
    }
    return text;
  }

  // Runs credctl to completion; fails the test if a stored secret is in its
  // output, which is returned cleaned.
  CommandResult Credctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = Base();
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return CommandResult();
    for (const std::string& s : secrets_) {
      EXPECT_FALSE(absl::StrContains(r->out, s)) << "secret on stdout";
      EXPECT_FALSE(absl::StrContains(r->err, s)) << "secret on stderr";
    }
    r->out = Clean(r->out);
    r->err = Clean(r->err);
    return *r;
  }

  // A file under the test's directory holding `text`: what a person types
  // on stdin (the --*_fd 0 flags, the daemon's passphrase), never argv.
  std::string InputFile(const std::string& name, const std::string& text) {
    std::string path = tmp_.path() + "/" + name;
    EXPECT_TRUE(WriteFileBytes(path, text).ok());
    return path;
  }

  // Credctl with `text` on its stdin, as a person at a terminal would type
  // it or an agent pipes it.
  CommandResult CredctlWithInput(const std::vector<std::string>& args,
                                 const std::string& text) {
    std::string cmd = absl::StrCat("exec '", CredctlPath(), "' --data_dir '",
                                   broker_->data_dir(), "'");
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    absl::StrAppend(&cmd, " < '",
                    InputFile(absl::StrCat("input-", ++inputs_), text), "'");
    absl::StatusOr<CommandResult> r =
        RunCommand({"/bin/sh", "-c", cmd}, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return CommandResult();
    for (const std::string& s : secrets_) {
      EXPECT_FALSE(absl::StrContains(r->out + r->err, s))
          << "a secret in credctl's output";
    }
    r->out = Clean(r->out);
    r->err = Clean(r->err);
    return *r;
  }

  // `credctl request ...` as the agent, in the background: a child of this
  // test, so the approver (this test's other children) is outside its tree.
  std::unique_ptr<Subprocess> StartRequest(
      const std::vector<std::string>& args) {
    Subprocess::Options o;
    o.argv = Base();
    o.argv.push_back("request");
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    auto p = Subprocess::Spawn(o);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  // Polls `credctl pending --json` until a request for `action` shows;
  // returns its id ("" and a test failure when none came).
  std::string WaitForPending(const std::string& action) {
    absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      CommandResult r = Credctl({"pending", "--json"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
        if (!absl::StrContains(line, action)) continue;
        // One compact ApprovalRequest per line, inside {"requests": [...]}.
        size_t at = line.find("{\"request_id\"");
        if (at == absl::string_view::npos) continue;
        line.remove_prefix(at);
        if (!absl::ConsumeSuffix(&line, ",")) absl::ConsumeSuffix(&line, "]}");
        v1::ApprovalRequest req;
        if (google::protobuf::util::JsonStringToMessage(std::string(line), &req)
                .ok()) {
          return req.request_id();
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "no pending request for \"" << action << "\"";
    return "";
  }

  // Secret values this test stored: never expected in credctl's output.
  std::vector<std::string> secrets_;

 private:
  int inputs_ = 0;  // CredctlWithInput's files so far.
};

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_CREDCTL_FIXTURE_H_
