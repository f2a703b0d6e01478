// Reliability of the real credbrokerd: a full disk and a data directory
// turned read-only under the daemon. Bounded in time, on a Unix socket in a
// temporary directory.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/client.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tests/integration/reliability_support.h"

namespace credbroker {
namespace testing {
namespace {

// Runs a command; its exit code, or -1.
int RunTool(const std::vector<std::string>& argv) {
  auto r = RunCommand(argv, absl::Seconds(20));
  return r.ok() ? r->exit_code : -1;
}

// A write that fails must say why, with a code a client can act on.
void ExpectClearWriteFailure(const absl::Status& s) {
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(s) || absl::IsUnavailable(s) ||
              absl::IsFailedPrecondition(s))
      << s;
  EXPECT_FALSE(s.message().empty());
}

class FaultTest : public ::testing::Test {
 protected:
  // The broker on `data_dir`, a stored credential and its fingerprint.
  void StartWithStored(const std::string& data_dir) {
    broker_ = std::make_unique<BrokerProcess>(data_dir, tmp_.path());
    absl::Status s = broker_->Start({"--allow_self_approval"});
    ASSERT_TRUE(s.ok()) << s;
    client_ = broker_->Client();
    auto put = client_->PutCredential(AwsPut("default"));
    ASSERT_TRUE(put.ok()) << put.status();
    stored_fingerprint_ = put->credential.fingerprint;
  }

  // Reads of the stored credential work.
  void ExpectReadsWork() {
    auto got = client_->GetCredential("aws", "");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->fingerprint, stored_fingerprint_);
    auto listed = client_->ListCredentials();
    ASSERT_TRUE(listed.ok()) << listed.status();
    client::CredentialCandidate validate;
    validate.provider = "aws";
    auto valid = client_->ValidateCredential(validate);
    ASSERT_TRUE(valid.ok()) << valid.status();
    EXPECT_TRUE(valid->valid);
  }

  // A need for the stored credential, approved: GRANTED with the stored
  // values, or a clear failure the agent sees. Returns whether granted.
  bool TryApproval(const std::string& need_id) {
    auto agent = client::AgentSession::Connect(
        OptionsFor(*broker_, broker_->agent_token()), "fault-" + need_id);
    EXPECT_TRUE(agent.ok()) << agent.status();
    if (!agent.ok()) return false;
    EXPECT_TRUE((*agent)->SendNeed(AwsNeed(need_id)).ok());
    auto pending = (*agent)->WaitForState(
        need_id, client::RequestState::kPendingApproval, absl::Seconds(3));
    if (!pending.ok()) {
      // The broker could not record the request: the agent must have been
      // told, not left waiting.
      std::vector<client::NeedUpdate> updates = (*agent)->Updates(need_id);
      std::optional<absl::Status> end = (*agent)->EndStatus();
      EXPECT_TRUE(!updates.empty() || end.has_value())
          << "the agent was told nothing about " << need_id;
      for (const auto& u : updates) last_refusal_ = u.message + u.reason;
      if (end.has_value()) last_refusal_ += end->ToString();
      return false;
    }
    auto approver = client::ApprovalClient::Connect(
        OptionsFor(*broker_, broker_->approver_token()));
    client::Approval req;
    req.request_id = pending->request_id;
    req.scope = client::Scope::kOnce;
    auto approved = (*approver)->Approve(req);
    if (!approved.ok()) {
      ExpectClearWriteFailure(approved.status());
      last_refusal_ = approved.status().ToString();
      return false;
    }
    auto granted = (*agent)->WaitFor(need_id, kWait);
    EXPECT_TRUE(granted.ok()) << granted.status();
    return granted.ok() && granted->state == client::RequestState::kGranted &&
           granted->grant->values.count("secret_access_key") == 1;
  }

  // Writes fail (the first few may still fit in space SQLite holds).
  absl::Status FailingPut() {
    absl::Status last;
    for (int i = 0; i < 50; ++i) {
      last =
          client_->PutCredential(AwsPut(absl::StrCat("blocked-", i))).status();
      if (!last.ok()) return last;
    }
    return last;
  }

  void StopAndCheck() {
    client_.reset();
    auto code = broker_->Stop();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(IntegrityCheck(broker_->data_dir() + "/credbroker.db"), "ok");
  }

  TempDir tmp_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<client::CredentialClient> client_;
  std::string stored_fingerprint_;
  std::string last_refusal_;
};

TEST_F(FaultTest, FullDisk) {
  const std::string mnt = tmp_.path() + "/small";
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << "): the full-disk test needs root and mount permission";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  StartWithStored(mnt + "/data");
  if (HasFatalFailure()) return;
  // Fill the file system.
  const std::string filler = mnt + "/filler";
  {
    int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(64 * 1024, 'x');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    while (write(fd, block.data(), 512) > 0) {
    }
    close(fd);
  }
  absl::Status refused = FailingPut();
  ExpectClearWriteFailure(refused);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "disk full")) << refused;
  ExpectReadsWork();
  // Approvals of a stored credential go on: the daemon releases its disk
  // reserve (--disk_reserve_kib) for the decision and its audit events.
  const bool approved_while_full = TryApproval("full");
  std::cout << "full disk: Put -> " << refused
            << "; approval of the stored credential "
            << (approved_while_full ? "granted" : "refused: " + last_refusal_)
            << "\n";
  EXPECT_TRUE(approved_while_full) << last_refusal_;
  EXPECT_TRUE(TryApproval("full-2")) << last_refusal_;
  // New credential versions still wait for space: the reserve is kept for
  // approvals.
  absl::Status still_refused = FailingPut();
  EXPECT_TRUE(absl::IsResourceExhausted(still_refused)) << still_refused;
  EXPECT_TRUE(absl::StrContains(still_refused.message(), "free some space"))
      << still_refused;
  // Space returns: writes resume.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  auto resumed = client_->PutCredential(AwsPut("after"));
  EXPECT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(TryApproval("after"));
  ExpectReadsWork();
  StopAndCheck();
}

TEST_F(FaultTest, DataDirTurnsReadOnly) {
  const std::string data = tmp_.path() + "/data";
  StartWithStored(data);
  if (HasFatalFailure()) return;
  // chmod does not stop root and a read-only remount is refused while the
  // daemon holds the files open for writing: mark the directory and its
  // files immutable instead (writes through open descriptors then fail with
  // EPERM). The socket stays as it is, or nobody could connect; so does
  // SQLite's memory-mapped wal-index (credbroker.db-shm): a store to a mapped
  // page of an immutable file is a SIGBUS, which no program handles.
  std::vector<std::string> paths = {data};
  for (const std::string& f : ListFiles(data)) {
    if (!absl::EndsWith(f, "-shm")) paths.push_back(data + "/" + f);
  }
  std::vector<std::string> chattr = {"/usr/bin/chattr", "+i"};
  chattr.insert(chattr.end(), paths.begin(), paths.end());
  if (RunTool(chattr) != 0) {
    GTEST_SKIP() << "chattr +i is not available on " << data;
  }
  struct Restore {
    std::vector<std::string> paths;
    ~Restore() {
      std::vector<std::string> argv = {"/usr/bin/chattr", "-i"};
      argv.insert(argv.end(), paths.begin(), paths.end());
      RunTool(argv);
    }
  } restore{paths};
  absl::Status refused = FailingPut();
  ExpectClearWriteFailure(refused);
  // The broker answered (the disk refused the write): no hint to start it.
  EXPECT_FALSE(absl::StrContains(refused.message(), "is credbrokerd running"))
      << refused;
  ExpectReadsWork();
  // Approvals go on, recorded in the spill beside the data directory.
  const std::string spill_db = data + "-spill/spill.db";
  const bool approved_while_ro = TryApproval("ro");
  EXPECT_TRUE(approved_while_ro) << last_refusal_;
  EXPECT_EQ(access(spill_db.c_str(), F_OK), 0);
  std::cout << "read-only data dir: Put -> " << refused
            << "; approval of the stored credential "
            << (approved_while_ro ? "granted" : "refused: " + last_refusal_)
            << "\n";
  std::vector<std::string> undo = {"/usr/bin/chattr", "-i"};
  undo.insert(undo.end(), paths.begin(), paths.end());
  ASSERT_EQ(RunTool(undo), 0);
  restore.paths.clear();
  // Writable again: writes resume (the store may need a moment to reopen).
  absl::Status resumed;
  for (int i = 0; i < 20; ++i) {
    resumed = client_->PutCredential(AwsPut("after")).status();
    if (resumed.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(resumed.ok()) << resumed;
  EXPECT_TRUE(TryApproval("after"));
  ExpectReadsWork();
  // The store took the spill back: the approval made while read-only is in
  // its audit chain, which is intact.
  // (at the broker's next try: every tick, 250 ms, backing off to 8 s while
  // the store refused writes)
  for (int i = 0; i < 200 && access(spill_db.c_str(), F_OK) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(access(spill_db.c_str(), F_OK), 0);
  client::AuditQuery query;
  query.kind = "request.approved";
  query.page_size = 100;
  auto approvals = client_->ListAuditEvents(query);
  ASSERT_TRUE(approvals.ok()) << approvals.status();
  EXPECT_EQ(approvals->events.size(), 2u);
  auto chain = client_->VerifyAuditLog();
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(chain->intact) << chain->problem;
  StopAndCheck();
}

}  // namespace
}  // namespace testing
}  // namespace credbroker
