#include "common/secret_input.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace credbroker {

absl::StatusOr<SecretBytes> ReadSecretLine(int fd, absl::string_view what) {
  // Sized once: a secret is never copied into a grown buffer left unwiped.
  SecretBytes buf = SecretBytes::Zeroed(kMaxSecretLine + 1);
  size_t size = 0;
  while (size <= kMaxSecretLine) {
    const ssize_t n = read(fd, buf.mutable_data() + size, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || buf.data()[size] == '\n') break;
    ++size;
  }
  if (size > kMaxSecretLine) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", what, " is longer than ", kMaxSecretLine, " bytes"));
  }
  if (size > 0 && buf.data()[size - 1] == '\r') --size;
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no ", what, " could be read from file descriptor ", fd));
  }
  SecretBytes line = SecretBytes::Zeroed(size);
  std::copy(buf.data(), buf.data() + size, line.mutable_data());
  return line;
}

absl::StatusOr<SecretBytes> PromptSecretLine(int tty, absl::string_view prompt,
                                             absl::string_view what) {
  (void)!write(tty, prompt.data(), prompt.size());
  termios old{};
  const bool quiet = tcgetattr(tty, &old) == 0;
  if (quiet) {
    termios no_echo = old;
    no_echo.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(tty, TCSAFLUSH, &no_echo);
  }
  absl::StatusOr<SecretBytes> line = ReadSecretLine(tty, what);
  if (quiet) tcsetattr(tty, TCSAFLUSH, &old);
  (void)!write(tty, "\n", 1);
  return line;
}

}  // namespace credbroker
