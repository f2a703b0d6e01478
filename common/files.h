// Small filesystem helpers for the data directory: private directories,
// private files written atomically, the single-broker lock.
#ifndef CREDBROKER_COMMON_FILES_H_
#define CREDBROKER_COMMON_FILES_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credbroker {

// $CREDBROKER_DATA_DIR, else $XDG_DATA_HOME/credbroker, else
// ~/.local/share/credbroker.
std::string DefaultDataDir();

// Creates `path` (and missing parents) with mode 0700. An existing directory
// that others can read or write is tightened to 0700.
absl::Status EnsurePrivateDir(const std::string& path);

// Reads a small file whole. NOT_FOUND when absent.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` with mode 0600 through a temporary file, fsync
// and rename. ALREADY_EXISTS when `exclusive` and the file exists.
absl::Status WritePrivateFile(const std::string& path,
                              absl::string_view contents, bool exclusive);

// The id of the group named `name` (getgrnam). NOT_FOUND naming it when
// there is no such group.
absl::StatusOr<gid_t> GroupIdByName(const std::string& name);

// An exclusive advisory lock on `path` (flock), held while the object lives.
class LockFile {
 public:
  // FAILED_PRECONDITION naming the holder's pid when another process holds it.
  static absl::StatusOr<LockFile> Acquire(const std::string& path);
  LockFile(LockFile&& other) noexcept;
  LockFile& operator=(LockFile&& other) noexcept;
  ~LockFile();

 private:
  explicit LockFile(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_FILES_H_
