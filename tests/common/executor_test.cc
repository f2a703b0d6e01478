#include "broker/common/executor.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(ExecutorTest, RunsEveryScheduledClosure) {
  std::atomic<int> count{0};
  {
    Executor executor(3);
    for (int i = 0; i < 1000; ++i) executor.Schedule([&] { count++; });
  }  // The destructor drains the queue.
  EXPECT_EQ(count.load(), 1000);
}

TEST(ExecutorTest, RunsOnOtherThreads) {
  Executor executor(1);
  absl::Notification done;
  std::thread::id ran_on;
  executor.Schedule([&] {
    ran_on = std::this_thread::get_id();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(ExecutorTest, AfterShutdownRunsInline) {
  Executor executor(2);
  executor.Shutdown();
  std::thread::id ran_on;
  executor.Schedule([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  executor.Shutdown();  // Idempotent.
}

}  // namespace
}  // namespace credbroker
