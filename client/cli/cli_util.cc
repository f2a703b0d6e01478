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
#include "common/secret_input.h"
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

std::optional<SecretBytes> ReadSecretLine(int fd, const std::string& label) {
  absl::StatusOr<SecretBytes> line;
  if (fd >= 0) {
    line = credbroker::ReadSecretLine(fd, label);
  } else {
    const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0) return std::nullopt;
    line = PromptSecretLine(tty, label + ": ", label);
    close(tty);
  }
  if (!line.ok()) return std::nullopt;
  return *std::move(line);
}

std::optional<SecretBytes> ReadSecret(const Args& args,
                                      const std::string& label) {
  const int fd = FdFlag(args, "pin_fd");
  if (fd == -2) return std::nullopt;
  return ReadSecretLine(fd, label);
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
      "never taken from arguments, the environment or a piped stdin";
  if (!status.pin_set && status.first_pin_needs_passphrase) {
    std::optional<SecretBytes> pass =
        ReadSecret(args, "Store passphrase (to set the first PIN)");
    if (!pass) return absl::InvalidArgumentError(kNoInput);
    change->store_passphrase = *std::move(pass);
  }
  std::optional<SecretBytes> next = ReadSecret(args, "New approval PIN");
  if (!next) return absl::InvalidArgumentError(kNoInput);
  // Asked twice when typed, where a typo cannot be seen.
  if (!args.Has("pin_fd")) {
    std::optional<SecretBytes> again =
        ReadSecret(args, "New approval PIN again");
    if (!again || *again != *next) {
      return absl::InvalidArgumentError("the two PINs differ; nothing changed");
    }
  }
  change->new_pin = *std::move(next);
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
