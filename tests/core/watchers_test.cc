#include "broker/core/watchers.h"

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "broker/core/requests.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

// An event naming `request_id`.
WatchEvent Event(const std::string& request_id) {
  WatchEvent e;
  e.kind = WatchEventKind::kAdded;
  e.request.record.request_id = request_id;
  return e;
}

class WatcherRegistryTest : public ::testing::Test {
 protected:
  // Adds a watcher recording what it hears under `name`, at `ticket`'s turn
  // (by default, a place reserved now).
  int64_t AddWatcher(const std::string& name,
                     const std::vector<WatchEvent>& snapshot = {},
                     std::optional<WatcherRegistry::Ticket> ticket = {}) {
    return watchers_.Add(
        ticket.has_value() ? *ticket : watchers_.Reserve(),
        [this, name](const WatchEvent& e) {
          heard_.push_back(name + ":" + e.request.record.request_id);
        },
        snapshot);
  }

  WatcherRegistry watchers_;
  std::vector<std::string> heard_;
};

TEST_F(WatcherRegistryTest, EveryWatcherHearsEveryEventInOrder) {
  AddWatcher("a");
  AddWatcher("b");
  watchers_.Deliver(watchers_.Reserve(), {Event("r-1"), Event("r-2")});
  EXPECT_EQ(heard_,
            (std::vector<std::string>{"a:r-1", "b:r-1", "a:r-2", "b:r-2"}));
}

TEST_F(WatcherRegistryTest, ARemovedWatcherHearsNothingMore) {
  const int64_t a = AddWatcher("a");
  AddWatcher("b");
  watchers_.Remove(a);
  watchers_.Deliver(watchers_.Reserve(), {Event("r-1")});
  EXPECT_EQ(heard_, std::vector<std::string>{"b:r-1"});
}

TEST_F(WatcherRegistryTest, ANewWatcherHearsItsSnapshotThenLaterBatchesOnly) {
  const WatcherRegistry::Ticket before = watchers_.Reserve();
  const WatcherRegistry::Ticket added = watchers_.Reserve();
  const WatcherRegistry::Ticket after = watchers_.Reserve();
  // Whichever thread runs first, each waits for the places before its own.
  std::thread late([&] { watchers_.Deliver(after, {Event("r-2")}); });
  std::thread watch([&] { AddWatcher("a", {Event("snapshot")}, added); });
  watchers_.Deliver(before, {Event("r-1")});  // In the snapshot already.
  late.join();
  watch.join();
  EXPECT_EQ(heard_, (std::vector<std::string>{"a:snapshot", "a:r-2"}));
}

TEST_F(WatcherRegistryTest, BatchesAreDeliveredInTheOrderTheyWereReserved) {
  AddWatcher("a");
  const WatcherRegistry::Ticket first = watchers_.Reserve();
  const WatcherRegistry::Ticket second = watchers_.Reserve();
  absl::Notification started;
  std::thread later([&] {
    started.Notify();
    watchers_.Deliver(second, {Event("r-2")});  // Waits for `first`.
  });
  started.WaitForNotification();
  watchers_.Deliver(first, {Event("r-1")});
  later.join();
  EXPECT_EQ(heard_, (std::vector<std::string>{"a:r-1", "a:r-2"}));
}

}  // namespace
}  // namespace credbroker
