#include "broker/daemon/setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/rpc/peer.h"
#include "broker/store/sqlite_store.h"
#include "common/files.h"

namespace credbroker {

absl::StatusOr<SpillOptions> ConfigureSpill(const std::string& data_dir,
                                            std::string spill_dir) {
  const std::string default_dir =
      std::string(absl::StripSuffix(data_dir, "/")) + "-spill";
  if (spill_dir.empty()) spill_dir = default_dir;
  const std::string spill_db =
      (spill_dir == "none" ? default_dir : spill_dir) + "/spill.db";
  auto has_rows = [spill_db] {
    struct stat st;
    return stat(spill_db.c_str(), &st) == 0 && st.st_size > 0;
  };
  // Made now: once the data directory refuses writes, its parent may too.
  const absl::Status ready =
      spill_dir == "none" ? absl::FailedPreconditionError("--spill_dir=none")
                          : EnsurePrivateDir(spill_dir);
  if (!ready.ok()) {
    if (has_rows()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "approvals recorded in ", spill_db,
          " while the data directory refused writes have "
          "not been copied into the store yet: start with the spill enabled "
          "(and its "
          "directory writable) so that the store takes them back"));
    }
    std::cerr << "credbrokerd: no spill (" << ready.message()
              << "): approvals will be refused while the data directory "
                 "refuses writes\n";
    return SpillOptions();
  }
  SpillOptions spill;
  spill.remove = [spill_db]() -> absl::Status {
    for (const char* suffix : {"-wal", "-shm", ""}) {
      const std::string path = spill_db + suffix;
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::UnavailableError(
            absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
      }
    }
    return absl::OkStatus();
  };
  spill.open = [spill_db, has_rows, remove = spill.remove](
                   bool create) -> absl::StatusOr<std::unique_ptr<Store>> {
    // An empty file is what a spill that could not be made (a full disk)
    // leaves: nothing was recorded in it.
    if (!has_rows()) {
      remove().IgnoreError();
      if (!create) return absl::NotFoundError("no spill database");
    }
    absl::StatusOr<std::unique_ptr<Store>> opened = OpenSqliteStore(spill_db);
    if (!opened.ok() && !has_rows()) remove().IgnoreError();
    return opened;
  };
  return spill;
}

bool IsSameOrDescendant(int64_t pid, const Caller& agent) {
  for (int hops = 0; pid > 1 && hops < 64; ++hops) {
    if (pid == agent.pid) {
      absl::StatusOr<ProcessIdentity> id =
          ProcessIdentityOf(static_cast<pid_t>(pid));
      return id.ok() && id->start_time == agent.start_time;
    }
    pid = ParentOf(static_cast<pid_t>(pid));
  }
  return false;
}

}  // namespace credbroker
