#include "client/cli/cli_util.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal/convert.h"
#include "common/errors.h"
#include "common/secret.h"
#include "google/protobuf/util/json_util.h"

namespace credbroker {
namespace cli {

int UsageError(const std::string& message) {
  std::cerr << "credctl: " << message << "\nRun `credctl help` for usage.\n";
  return 2;
}

int PrintError(const absl::Status& status) {
  std::cerr << "credctl: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  for (const FieldViolation& v : GetFieldViolations(status)) {
    std::cerr << "  " << v.field << ": " << v.description << "\n";
  }
  return 1;
}

// Flags that take a value; everything else starting with -- is a switch.
bool TakesValue(const std::string& name) {
  static const char* kValued[] = {"broker",
                                  "token_file",
                                  "data_dir",
                                  "profile",
                                  "field",
                                  "from_file",
                                  "generate",
                                  "version",
                                  "timeout",
                                  "rotation_days",
                                  "page_size",
                                  "provider",
                                  "kind",
                                  "since",
                                  "until",
                                  "scope",
                                  "ttl",
                                  "pattern",
                                  "reason",
                                  "request",
                                  "action",
                                  "context",
                                  "need_id",
                                  "session_key",
                                  "tls_ca",
                                  "tls_cert",
                                  "tls_key",
                                  "pin_fd",
                                  "resource",
                                  "passphrase_fd",
                                  "new_passphrase_fd",
                                  "to"};
  for (const char* v : kValued) {
    if (name == v) return true;
  }
  return false;
}

std::optional<Args> Parse(int argc, char** argv, std::string& error) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (absl::StartsWith(a, "--")) {
      std::string name = a.substr(2);
      std::string value;
      bool has_value = false;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (TakesValue(name)) {
        if (!has_value) {
          if (i + 1 >= argc) {
            error = absl::StrCat("--", name, " needs a value");
            return std::nullopt;
          }
          value = argv[++i];
        }
        args.flags.emplace(name, value);
      } else {
        if (name != "json" && name != "keep" && name != "help" &&
            name != "all" && name != "insecure_plaintext") {
          error = absl::StrCat("unknown flag --", name);
          return std::nullopt;
        }
        args.switches[name] = true;
      }
    } else if (args.command.empty()) {
      args.command = a;
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

std::string ToJson(const google::protobuf::Message& m, bool compact) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = !compact;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

bool StdinIsTerminal() { return isatty(STDIN_FILENO) == 1; }

// Reads one line from the terminal, without echo when `hidden`.
namespace {
// The terminal's settings while a hidden prompt runs, for the SIGINT handler.
termios saved_termios;
volatile sig_atomic_t termios_saved = 0;

void RestoreAndExit(int sig) {
  if (termios_saved) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
  signal(sig, SIG_DFL);
  raise(sig);
}
}  // namespace

std::optional<std::string> Prompt(const std::string& label, bool hidden) {
  std::cerr << label << ": " << std::flush;
  bool restore = false;
  if (hidden && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
    termios quiet = saved_termios;
    quiet.c_lflag &= ~ECHO;
    termios_saved = 1;
    signal(SIGINT, RestoreAndExit);
    signal(SIGTERM, RestoreAndExit);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    restore = true;
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    termios_saved = 0;
    std::cerr << "\n";
  }
  if (!ok) return std::nullopt;
  return line;
}

namespace {
// One line of `fd`, byte by byte so that each call takes exactly one line.
std::optional<std::string> ReadLineFromFd(int fd) {
  std::string line;
  // Sized once: a secret is never copied into a grown buffer left unwiped.
  line.reserve(4097);
  char c;
  while (line.size() <= 4096) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (line.empty()) return std::nullopt;
      break;
    }
    if (c == '\n') break;
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}
}  // namespace

std::optional<std::string> ReadSecret(const Args& args,
                                      const std::string& label) {
  if (args.Has("pin_fd")) {
    int fd = -1;
    if (!absl::SimpleAtoi(args.Flag("pin_fd"), &fd) || fd < 0)
      return std::nullopt;
    return ReadLineFromFd(fd);
  }
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) return std::nullopt;
  const std::string prompt = label + ": ";
  (void)!write(tty, prompt.data(), prompt.size());
  termios old{};
  const bool quiet = tcgetattr(tty, &old) == 0;
  if (quiet) {
    termios no_echo = old;
    no_echo.c_lflag &= ~ECHO;
    tcsetattr(tty, TCSAFLUSH, &no_echo);
  }
  std::optional<std::string> line = ReadLineFromFd(tty);
  if (quiet) tcsetattr(tty, TCSAFLUSH, &old);
  (void)!write(tty, "\n", 1);
  close(tty);
  return line;
}

namespace {
// One line of `fd` into a buffer sized once, then copied (trimmed) into
// its own SecretBytes; nullopt when empty or over 4096 bytes.
std::optional<SecretBytes> ReadSecretFromFd(int fd) {
  constexpr size_t kMax = 4096;
  SecretBytes buf = SecretBytes::Zeroed(kMax + 1);
  size_t size = 0;
  while (size <= kMax) {
    ssize_t n = read(fd, buf.mutable_data() + size, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || buf.data()[size] == '\n') break;
    ++size;
  }
  if (size > kMax) return std::nullopt;
  if (size > 0 && buf.data()[size - 1] == '\r') --size;
  if (size == 0) return std::nullopt;
  SecretBytes line = SecretBytes::Zeroed(size);
  std::copy(buf.data(), buf.data() + size, line.mutable_data());
  return line;
}
}  // namespace

std::optional<SecretBytes> ReadSecretLine(int fd, const std::string& label) {
  if (fd >= 0) return ReadSecretFromFd(fd);
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) return std::nullopt;
  const std::string prompt = label + ": ";
  (void)!write(tty, prompt.data(), prompt.size());
  termios old{};
  const bool quiet = tcgetattr(tty, &old) == 0;
  if (quiet) {
    termios no_echo = old;
    no_echo.c_lflag &= ~ECHO;
    tcsetattr(tty, TCSAFLUSH, &no_echo);
  }
  std::optional<SecretBytes> line = ReadSecretFromFd(tty);
  if (quiet) tcsetattr(tty, TCSAFLUSH, &old);
  (void)!write(tty, "\n", 1);
  close(tty);
  return line;
}

int FdFlag(const Args& args, const std::string& name) {
  if (!args.Has(name)) return -1;
  int fd = -1;
  if (!absl::SimpleAtoi(args.Flag(name), &fd) || fd < 0) return -2;
  return fd;
}

absl::Status ChooseApprovalPin(const Args& args,
                               const client::ApprovalPinStatus& status,
                               client::PinChange* change) {
  const char kNoInput[] =
      "the approval PIN is typed on a terminal (or read with --pin_fd N), "
      "never "
      "taken from arguments, the environment or a piped stdin";
  if (!status.pin_set && status.first_pin_needs_passphrase) {
    std::optional<std::string> pass =
        ReadSecret(args, "Store passphrase (to set the first PIN)");
    if (!pass || pass->empty()) return absl::InvalidArgumentError(kNoInput);
    change->store_passphrase = SecretBytes::TakeFrom(*pass);
  }
  std::optional<std::string> next = ReadSecret(args, "New approval PIN");
  if (!next || next->empty()) return absl::InvalidArgumentError(kNoInput);
  // Asked twice when typed, where a typo cannot be seen.
  if (!args.Has("pin_fd")) {
    std::optional<std::string> again =
        ReadSecret(args, "New approval PIN again");
    const bool same = again && *again == *next;
    if (again) WipeString(*again);
    if (!same) {
      WipeString(*next);
      return absl::InvalidArgumentError("the two PINs differ; nothing changed");
    }
  }
  change->new_pin = SecretBytes::TakeFrom(*next);
  return absl::OkStatus();
}

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M", t, absl::UTCTimeZone());
}

std::string Relative(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  absl::Duration d = t - absl::Now();
  bool past = d < absl::ZeroDuration();
  if (past) d = -d;
  std::string text;
  if (d < absl::Minutes(1)) {
    text = absl::StrCat(absl::ToInt64Seconds(d), "s");
  } else if (d < absl::Hours(1)) {
    text = absl::StrCat(absl::ToInt64Minutes(d), "m");
  } else if (d < absl::Hours(48)) {
    text = absl::StrCat(absl::ToInt64Hours(d), "h");
  } else {
    text = absl::StrCat(absl::ToInt64Hours(d) / 24, "d");
  }
  return past ? absl::StrCat(text, " ago") : absl::StrCat("in ", text);
}

std::string ReadinessText(client::Readiness r) {
  return std::string(absl::StripPrefix(client::ReadinessName(r), "READINESS_"));
}

std::string SeverityText(client::Severity s) {
  switch (s) {
    case client::Severity::kInfo:
      return "note";
    case client::Severity::kWarning:
      return "warning";
    case client::Severity::kError:
      return "error";
    default:
      return "finding";
  }
}

void PrintFindings(const std::vector<client::Finding>& findings) {
  for (const client::Finding& f : findings) {
    std::cout << "  " << SeverityText(f.severity) << ": "
              << (f.field.empty() ? "" : absl::StrCat(f.field, ": "))
              << f.message << "\n";
    if (!f.fix.empty()) std::cout << "    fix: " << f.fix << "\n";
  }
}

}  // namespace cli
}  // namespace credbroker
