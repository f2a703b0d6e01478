#include "tests/integration/broker_process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace credbroker {
namespace testing {

const char* CredbrokerdPath() { return CREDBROKERD_PATH; }
const char* CredctlPath() { return CREDCTL_PATH; }

TempDir::TempDir() {
  char tmpl[] = "/tmp/cbit-XXXXXX";
  if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!FileExists(path))
      return absl::NotFoundError(absl::StrCat(path, " not found"));
    return absl::InternalError(absl::StrCat("cannot read ", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFileBytes(const std::string& path, absl::string_view bytes,
                            int mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::InternalError(
          absl::StrCat("write ", path, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  fchmod(fd, static_cast<mode_t>(mode));
  close(fd);
  return absl::OkStatus();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

int FileMode(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      out.push_back(name);
    }
  }
  closedir(d);
  return out;
}

std::string RandomString(size_t length, absl::string_view alphabet) {
  std::string out;
  while (out.size() < length) {
    unsigned char buf[64];
    ssize_t n = getrandom(buf, sizeof buf, 0);
    if (n <= 0) continue;
    for (ssize_t i = 0; i < n && out.size() < length; ++i) {
      // Rejection sampling keeps the distribution uniform.
      size_t limit = 256 - 256 % alphabet.size();
      if (buf[i] < limit) out.push_back(alphabet[buf[i] % alphabet.size()]);
    }
  }
  return out;
}

BrokerProcess::BrokerProcess(std::string data_dir, std::string log_dir)
    : data_dir_(std::move(data_dir)), log_dir_(std::move(log_dir)) {}

BrokerProcess::~BrokerProcess() { Kill(); }

absl::Status BrokerProcess::Spawn(const std::vector<std::string>& extra_args) {
  if (process_ != nullptr && !process_->exited()) {
    return absl::FailedPreconditionError("the broker is already running");
  }
  ++runs_;
  Subprocess::Options options;
  options.argv = {CredbrokerdPath(), "--data_dir", data_dir_};
  options.argv.insert(options.argv.end(), extra_args.begin(), extra_args.end());
  // Test defaults, unless the test sets the same thing itself: the key file
  // (no passphrase to type) and no approval PIN.
  auto names = [&extra_args](std::initializer_list<absl::string_view> flags) {
    for (const std::string& a : extra_args) {
      for (absl::string_view f : flags) {
        if (absl::StartsWith(a, f)) return true;
      }
    }
    return false;
  };
  if (!names({"--key_source", "--passphrase_fd"}))
    options.argv.push_back("--key_source=file");
  if (!names({"--approval_factor"}))
    options.argv.push_back("--approval_factor=none");
  options.stdin_path = stdin_path_;
  options.stdout_file = absl::StrCat(log_dir_, "/broker-", runs_, ".out");
  options.stderr_file = absl::StrCat(log_dir_, "/broker-", runs_, ".err");
  log_files_.push_back(options.stdout_file);
  log_files_.push_back(options.stderr_file);
  process_.reset();
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Spawn(options);
  if (!p.ok()) return p.status();
  process_ = std::move(*p);
  return absl::OkStatus();
}

absl::Status BrokerProcess::Start(const std::vector<std::string>& extra_args,
                                  absl::Duration timeout) {
  if (absl::Status s = Spawn(extra_args); !s.ok()) return s;
  if (process_->WaitForStdoutLine("ready", timeout)) return absl::OkStatus();
  absl::StatusOr<int> code = process_->WaitForExit(absl::ZeroDuration());
  if (code.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "credbrokerd exited with code ", *code,
        " before it was ready; stderr:\n", process_->stderr_text()));
  }
  process_->Kill();
  return absl::DeadlineExceededError(absl::StrCat(
      "credbrokerd did not print \"ready\" within ",
      absl::FormatDuration(timeout), "; stderr:\n", process_->stderr_text()));
}

absl::StatusOr<int> BrokerProcess::RunExpectingExit(
    const std::vector<std::string>& extra_args, absl::Duration timeout) {
  if (absl::Status s = Spawn(extra_args); !s.ok()) return s;
  absl::StatusOr<int> code = process_->WaitForExit(timeout);
  if (!code.ok()) process_->Kill();
  return code;
}

absl::StatusOr<int> BrokerProcess::Stop(absl::Duration timeout) {
  if (process_ == nullptr)
    return absl::FailedPreconditionError("never started");
  process_->Signal(SIGTERM);
  absl::StatusOr<int> code = process_->WaitForExit(timeout);
  if (!code.ok()) process_->Kill();
  return code;
}

void BrokerProcess::Kill() {
  if (process_ != nullptr) process_->Kill();
}

bool BrokerProcess::running() const {
  return process_ != nullptr && !process_->exited();
}

pid_t BrokerProcess::pid() const {
  return process_ == nullptr ? -1 : process_->pid();
}

std::string BrokerProcess::stdout_text() const {
  return process_ == nullptr ? "" : process_->stdout_text();
}

std::string BrokerProcess::stderr_text() const {
  return process_ == nullptr ? "" : process_->stderr_text();
}

std::string BrokerProcess::AllOutput() const {
  std::string all;
  for (const std::string& f : log_files_) {
    absl::StatusOr<std::string> text = ReadFileBytes(f);
    if (text.ok()) absl::StrAppend(&all, *text);
  }
  // The current run's output may not be flushed to its file copy yet.
  absl::StrAppend(&all, stdout_text(), stderr_text());
  return all;
}

namespace {
std::string ReadToken(const std::string& path) {
  absl::StatusOr<std::string> t = ReadFileBytes(path);
  if (!t.ok()) return "";
  return std::string(absl::StripAsciiWhitespace(*t));
}
}  // namespace

std::string BrokerProcess::approver_token() const {
  return ReadToken(data_dir_ + "/approver.token");
}

std::string BrokerProcess::agent_token() const {
  return ReadToken(data_dir_ + "/agent.token");
}

std::unique_ptr<client::CredentialClient> BrokerProcess::Client() const {
  return ClientWithToken(approver_token());
}

std::unique_ptr<client::CredentialClient> BrokerProcess::ClientWithToken(
    const std::string& token) const {
  client::Options options;
  options.address = address();
  options.token = token;
  options.timeout = absl::Seconds(15);
  absl::StatusOr<std::unique_ptr<client::CredentialClient>> c =
      client::CredentialClient::Connect(options);
  if (!c.ok()) return nullptr;
  return std::move(*c);
}

}  // namespace testing
}  // namespace credbroker
