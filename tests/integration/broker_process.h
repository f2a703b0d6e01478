// Test support for running the real credbrokerd: a private temporary
// directory, the daemon as a child process on a Unix socket in it, and small
// file helpers. Not thread-safe; one test thread drives a BrokerProcess.
#ifndef CREDBROKER_TESTS_INTEGRATION_BROKER_PROCESS_H_
#define CREDBROKER_TESTS_INTEGRATION_BROKER_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/credbroker/client.h"
#include "tests/integration/subprocess.h"

namespace credbroker {
namespace testing {

// Paths of the binaries under test, from the build.
const char* CredbrokerdPath();
const char* CredctlPath();

// A directory made with mkdtemp under /tmp (short, so socket paths stay far
// below sun_path's 108 bytes), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

// Whole-file helpers. ReadFileBytes: NOT_FOUND when absent.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);
absl::Status WriteFileBytes(const std::string& path, absl::string_view bytes,
                            int mode = 0600);
bool FileExists(const std::string& path);
// Permission bits (mode & 07777), or -1 when `path` does not exist.
int FileMode(const std::string& path);
// Names of the regular files in `dir` (not recursive).
std::vector<std::string> ListFiles(const std::string& dir);

// Random characters from `alphabet`, from the OS generator.
std::string RandomString(
    size_t length,
    absl::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");

// One credbrokerd on `data_dir` (created by the broker), serving the default
// unix:<data_dir>/broker.sock. Every run's stdout and stderr are kept in
// <log_dir>/broker-N.out and .err. The destructor kills a running daemon.
// Unless a test passes its own, every start adds --key_source=file and
// --approval_factor=none (tests of the passphrase and the PIN pass theirs).
class BrokerProcess {
 public:
  BrokerProcess(std::string data_dir, std::string log_dir);
  ~BrokerProcess();

  // Starts the daemon and waits (bounded) for "ready" on its stdout.
  // FAILED_PRECONDITION with its exit code and stderr when it exits first;
  // DEADLINE_EXCEEDED when it is not ready in time (it is killed then).
  absl::Status Start(const std::vector<std::string>& extra_args = {},
                     absl::Duration timeout = absl::Seconds(20));
  // Starts a daemon that is expected to refuse: waits for it to exit and
  // returns its exit code (its output stays readable).
  absl::StatusOr<int> RunExpectingExit(
      const std::vector<std::string>& extra_args = {},
      absl::Duration timeout = absl::Seconds(20));
  // What the next starts read on stdin (default /dev/null): a file with a
  // passphrase, for --passphrase_fd 0.
  void set_stdin_path(std::string path) { stdin_path_ = std::move(path); }
  // SIGTERM, then waits (bounded) for the exit code.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(20));
  // SIGKILL and reap.
  void Kill();
  bool running() const;
  pid_t pid() const;

  // Output of the current (or last) run.
  std::string stdout_text() const;
  std::string stderr_text() const;
  // Every run's stdout and stderr so far, concatenated.
  std::string AllOutput() const;

  const std::string& data_dir() const { return data_dir_; }
  std::string socket_path() const { return data_dir_ + "/broker.sock"; }
  std::string address() const { return "unix:" + socket_path(); }
  std::string approver_token() const;
  std::string agent_token() const;

  // A client library instance with the approver token (or `token`).
  std::unique_ptr<client::CredentialClient> Client() const;
  std::unique_ptr<client::CredentialClient> ClientWithToken(
      const std::string& token) const;

 private:
  absl::Status Spawn(const std::vector<std::string>& extra_args);

  std::string data_dir_;
  std::string log_dir_;
  std::string stdin_path_ = "/dev/null";
  int runs_ = 0;
  std::vector<std::string> log_files_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_INTEGRATION_BROKER_PROCESS_H_
