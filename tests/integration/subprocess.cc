#include "tests/integration/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace credbroker {
namespace testing {
namespace {

bool HasLine(const std::string& text, absl::string_view line) {
  std::string needle = absl::StrCat(line, "\n");
  return absl::StartsWith(text, needle) ||
         absl::StrContains(text, absl::StrCat("\n", needle));
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

int OpenCopy(const std::string& path) {
  if (path.empty()) return -1;
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(
    const Options& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty argv");
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  std::vector<char*> argv;
  for (const std::string& a : options.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* stdin_path = options.stdin_path.c_str();
  const pid_t parent = getpid();

  // fork/exec rather than posix_spawn to set PR_SET_PDEATHSIG: a test that
  // crashes must not leave a daemon behind. Only async-signal-safe calls
  // between fork and exec.
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(stdin_path, O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 ||
        dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
        dup2(err_pipe[1], STDERR_FILENO) < 0) {
      _exit(127);
    }
    if (in > STDERR_FILENO) close(in);
    // A session of its own, with no controlling terminal: a credctl under
    // test can never ask for a PIN on the terminal of whoever runs the
    // tests (it would wait there), just as an agent's processes cannot.
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  int fork_errno = errno;
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_errno)));
  }

  std::unique_ptr<Subprocess> p(new Subprocess());
  p->pid_ = pid;
  {
    absl::MutexLock lock(&p->mu_);
    p->out_.fd = out_pipe[0];
    p->out_.file_fd = OpenCopy(options.stdout_file);
    p->err_.fd = err_pipe[0];
    p->err_.file_fd = OpenCopy(options.stderr_file);
  }
  Subprocess* raw = p.get();
  p->out_thread_ = std::thread([raw] { raw->ReadLoop(&raw->out_); });
  p->err_thread_ = std::thread([raw] { raw->ReadLoop(&raw->err_); });
  return p;
}

Subprocess::~Subprocess() {
  Kill();
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  absl::MutexLock lock(&mu_);
  for (Stream* s : {&out_, &err_}) {
    if (s->fd >= 0) close(s->fd);
    if (s->file_fd >= 0) close(s->file_fd);
  }
}

void Subprocess::ReadLoop(Stream* stream) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int fd;
  {
    absl::MutexLock lock(&mu_);
    fd = stream->fd;
  }
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    absl::MutexLock lock(&mu_);
    if (n <= 0) {
      stream->eof = true;
      return;
    }
    stream->text.append(buf, static_cast<size_t>(n));
    if (stream->file_fd >= 0)
      WriteAll(stream->file_fd, buf, static_cast<size_t>(n));
  }
}

bool Subprocess::WaitForStdoutLine(absl::string_view line,
                                   absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this, line]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return out_.eof || HasLine(out_.text, line);
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return HasLine(out_.text, line);
}

int Subprocess::Reap() {
  {
    absl::MutexLock lock(&mu_);
    if (reaped_) return exit_code_;
  }
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  int code = -1;
  if (r == pid_) {
    if (WIFEXITED(status)) code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
  }
  absl::MutexLock lock(&mu_);
  reaped_ = true;
  exit_code_ = code;
  return code;
}

absl::StatusOr<int> Subprocess::WaitForExit(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return reaped_ || (out_.eof && err_.eof);
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ",
                       absl::FormatDuration(timeout)));
    }
  }
  // Both pipes closed: the child has exited (or is exiting) and no one else
  // holds its output, so waitpid returns promptly.
  return Reap();
}

void Subprocess::Signal(int sig) {
  absl::MutexLock lock(&mu_);
  if (!reaped_) kill(pid_, sig);
}

void Subprocess::Kill() {
  Signal(SIGKILL);
  Reap();
}

bool Subprocess::exited() const {
  absl::MutexLock lock(&mu_);
  return reaped_;
}

std::string Subprocess::stdout_text() const {
  absl::MutexLock lock(&mu_);
  return out_.text;
}

std::string Subprocess::stderr_text() const {
  absl::MutexLock lock(&mu_);
  return err_.text;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  Subprocess::Options options;
  options.argv = argv;
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Spawn(options);
  if (!p.ok()) return p.status();
  absl::StatusOr<int> code = (*p)->WaitForExit(timeout);
  if (!code.ok()) return code.status();  // The destructor kills it.
  CommandResult result;
  result.exit_code = *code;
  result.out = (*p)->stdout_text();
  result.err = (*p)->stderr_text();
  return result;
}

}  // namespace testing
}  // namespace credbroker
