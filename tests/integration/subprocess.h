// Subprocess: a child process started with fork/exec whose standard output
// and error are read by two threads, kept in memory and copied to files.
// Waits are bounded and wake on output or exit, with no sleeping. The
// destructor kills (SIGKILL) and reaps a child that is still running, so a
// failing test never leaves one behind. Methods may be called from any
// thread. The child gets SIGKILL when the thread that spawned it exits.
#ifndef CREDBROKER_TESTS_INTEGRATION_SUBPROCESS_H_
#define CREDBROKER_TESTS_INTEGRATION_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace credbroker {
namespace testing {

class Subprocess {
 public:
  struct Options {
    std::vector<std::string> argv;  // argv[0] is the executable's path.
    std::string stdin_path = "/dev/null";
    std::string stdout_file;  // Copies of the output; empty: none.
    std::string stderr_file;
  };

  // INTERNAL when the process cannot be spawned.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      const Options& options);
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // True once `line` appeared as a whole line on stdout; false when the
  // output ended (the child exited) or `timeout` passed first.
  bool WaitForStdoutLine(absl::string_view line, absl::Duration timeout);

  // The exit code, or 128 + signal number for a child killed by a signal.
  // DEADLINE_EXCEEDED when it is still running after `timeout`.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);

  // Sends `sig` unless the child was already reaped.
  void Signal(int sig);
  // SIGKILL and reap.
  void Kill();
  bool exited() const;

  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  struct Stream {
    int fd = -1;
    int file_fd = -1;
    std::string text;
    bool eof = false;
  };

  Subprocess() = default;
  void ReadLoop(Stream* stream);
  int Reap();  // Blocking waitpid; returns the exit code.

  pid_t pid_ = -1;
  mutable absl::Mutex mu_;
  Stream out_ ABSL_GUARDED_BY(mu_);
  Stream err_ ABSL_GUARDED_BY(mu_);
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  int exit_code_ ABSL_GUARDED_BY(mu_) = -1;
  std::thread out_thread_;
  std::thread err_thread_;
};

// Runs a command to completion (stdin from /dev/null).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout);

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_SUBPROCESS_H_
