#include "broker/core/agent_sessions.h"

#include <string>
#include <vector>

#include "broker/core/requests.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

constexpr absl::Duration kGrace = absl::Seconds(60);

Caller Process(int64_t pid) {
  Caller c;
  c.role = "agent";
  c.peer = "unix:pid " + std::to_string(pid);
  c.pid = pid;
  c.start_time = 1000 + pid;
  return c;
}

class AgentSessionsTest : public ::testing::Test {
 protected:
  // Attaches `caller` to `key`, counting the updates the stream receives.
  AgentSessions::Attached Attach(const std::string& key, const Caller& caller) {
    return sessions_.Attach(key, caller,
                            [this](const NeedUpdate&) { ++told_; });
  }

  AgentSessions sessions_{kGrace};
  absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
  int told_ = 0;
};

TEST_F(AgentSessionsTest, DetachStartsTheGracePeriod) {
  const AgentSessions::Attached a = Attach("s1", Process(100));
  EXPECT_FALSE(a.was_away);
  EXPECT_TRUE(sessions_.Connected("s1"));
  EXPECT_TRUE(sessions_.GoneAt(t0_ + 2 * kGrace).empty());

  ASSERT_TRUE(sessions_.Detach("s1", a.attachment, t0_));
  EXPECT_FALSE(sessions_.Connected("s1"));
  EXPECT_TRUE(sessions_.GoneAt(t0_ + kGrace - absl::Seconds(1)).empty());
  EXPECT_EQ(sessions_.GoneAt(t0_ + kGrace), std::vector<std::string>{"s1"});
}

TEST_F(AgentSessionsTest, AReattachWithinTheGraceEndsTheAbsence) {
  const AgentSessions::Attached first = Attach("s1", Process(100));
  ASSERT_TRUE(sessions_.Detach("s1", first.attachment, t0_));
  sessions_.Approve("s1", "aws", "default", t0_ + absl::Hours(1));

  const AgentSessions::Attached again = Attach("s1", Process(100));
  EXPECT_TRUE(again.was_away);
  EXPECT_FALSE(again.other_process);
  EXPECT_TRUE(sessions_.Connected("s1"));
  EXPECT_TRUE(sessions_.GoneAt(t0_ + 2 * kGrace).empty());
  // The same process keeps the session's approvals.
  EXPECT_EQ(sessions_.ApprovedUntil("s1", "aws", "default"),
            t0_ + absl::Hours(1));
}

TEST_F(AgentSessionsTest, AnotherProcessTakingOverIsAskedAgain) {
  const AgentSessions::Attached first = Attach("s1", Process(100));
  sessions_.Approve("s1", "aws", "default", t0_ + absl::Hours(1));
  // Live: the session is not another process's to take.
  const Caller* holder = sessions_.HeldByAnother("s1", Process(101));
  ASSERT_NE(holder, nullptr);
  EXPECT_EQ(holder->pid, 100);
  EXPECT_EQ(sessions_.HeldByAnother("s1", Process(100)), nullptr);

  ASSERT_TRUE(sessions_.Detach("s1", first.attachment, t0_));
  EXPECT_EQ(sessions_.HeldByAnother("s1", Process(101)), nullptr);
  const AgentSessions::Attached other = Attach("s1", Process(101));
  EXPECT_TRUE(other.was_away);
  EXPECT_TRUE(other.other_process);
  EXPECT_FALSE(sessions_.ApprovedUntil("s1", "aws", "default").has_value());
}

TEST_F(AgentSessionsTest, AReplacedStreamsDetachChangesNothing) {
  const AgentSessions::Attached old_stream = Attach("s1", Process(100));
  const AgentSessions::Attached new_stream = Attach("s1", Process(100));
  EXPECT_NE(old_stream.attachment, new_stream.attachment);

  EXPECT_FALSE(sessions_.Detach("s1", old_stream.attachment, t0_));
  EXPECT_TRUE(sessions_.Connected("s1"));
  EXPECT_TRUE(sessions_.GoneAt(t0_ + kGrace).empty());
  sessions_.Tell("s1", NeedUpdate());
  EXPECT_EQ(told_, 1);
}

TEST_F(AgentSessionsTest, OnlyAnAttachedStreamIsTold) {
  const AgentSessions::Attached a = Attach("s1", Process(100));
  sessions_.Tell("s1", NeedUpdate());
  ASSERT_TRUE(sessions_.Detach("s1", a.attachment, t0_));
  sessions_.Tell("s1", NeedUpdate());
  sessions_.Tell("never-attached", NeedUpdate());
  EXPECT_EQ(told_, 1);
}

TEST_F(AgentSessionsTest, TheAgentsOfARequestAreEveryProcessSeenInItsSession) {
  sessions_.RecordAsker("s1", "r-1", Process(100));
  sessions_.RecordAsker("s1", "r-2", Process(101));
  Attach("s1", Process(102));
  std::vector<int64_t> pids;
  for (const Caller* c : sessions_.AgentsOf("s1", "r-1"))
    pids.push_back(c->pid);
  // The asker, the attached process, then every process recorded.
  EXPECT_EQ(pids, (std::vector<int64_t>{100, 102, 100, 101, 102}));

  sessions_.ForgetRequest("r-1");
  sessions_.Forget("s1");
  EXPECT_TRUE(sessions_.AgentsOf("s1", "r-1").empty());
  EXPECT_FALSE(sessions_.Connected("s1"));
}

TEST_F(AgentSessionsTest, AGrantIsHeldByTheProcessAttachedWhenItIsIssued) {
  sessions_.HandToAttached("g-1", "s1");  // Nobody attached: nobody holds it.
  EXPECT_EQ(sessions_.HolderOf("g-1"), nullptr);
  Attach("s1", Process(100));
  sessions_.HandToAttached("g-1", "s1");
  ASSERT_NE(sessions_.HolderOf("g-1"), nullptr);
  EXPECT_EQ(sessions_.HolderOf("g-1")->pid, 100);
  sessions_.ForgetGrant("g-1");
  EXPECT_EQ(sessions_.HolderOf("g-1"), nullptr);
}

TEST_F(AgentSessionsTest, ASessionRestoredAfterARestartIsAwayFromThen) {
  sessions_.RestoreAway("s1", "unix:pid 100", t0_);
  EXPECT_FALSE(sessions_.Connected("s1"));
  EXPECT_TRUE(sessions_.GoneAt(t0_ + kGrace - absl::Seconds(1)).empty());
  EXPECT_EQ(sessions_.GoneAt(t0_ + kGrace), std::vector<std::string>{"s1"});
  // Its agent comes back: away no more, and another process than the one
  // last seen (unidentified after a restart) counts as another process.
  EXPECT_TRUE(Attach("s1", Process(100)).other_process);
  EXPECT_TRUE(sessions_.GoneAt(t0_ + kGrace).empty());
}

}  // namespace
}  // namespace credbroker
