#include "broker/daemon/passphrase_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace credbroker {
namespace {

absl::StatusOr<SecretBytes> PromptOnce(int fd, absl::string_view prompt) {
  (void)!write(fd, prompt.data(), prompt.size());
  termios old{};
  tcgetattr(fd, &old);
  termios quiet = old;
  quiet.c_lflag &= ~ECHO;
  tcsetattr(fd, TCSAFLUSH, &quiet);
  absl::StatusOr<SecretBytes> pass = ReadPassphraseFromFd(fd);
  tcsetattr(fd, TCSAFLUSH, &old);
  (void)!write(fd, "\n", 1);
  return pass;
}

}  // namespace

absl::StatusOr<SecretBytes> ReadPassphraseFromFd(int fd) {
  constexpr size_t kMax = 4096;
  SecretBytes buf = SecretBytes::Zeroed(kMax + 1);
  size_t size = 0;
  while (size <= kMax) {
    ssize_t n = read(fd, buf.mutable_data() + size, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || buf.data()[size] == '\n') break;
    ++size;
  }
  if (size > kMax)
    return absl::InvalidArgumentError(
        "the passphrase is longer than 4096 bytes");
  if (size > 0 && buf.data()[size - 1] == '\r') --size;
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no passphrase could be read from file descriptor ", fd));
  }
  SecretBytes pass = SecretBytes::Zeroed(size);
  std::copy(buf.data(), buf.data() + size, pass.mutable_data());
  return pass;
}

absl::StatusOr<SecretBytes> PromptPassphrase(bool new_store) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        "this store is protected by a passphrase (the default), and there is "
        "no "
        "terminal to ask for it on: start credbrokerd from a terminal, or pass "
        "--passphrase_fd N. For unattended or test use, a new data directory "
        "can "
        "be created with --key_source=file instead (any process running as you "
        "can then read every stored secret)");
  }
  if (new_store) {
    const char intro[] =
        "credbrokerd: choose the passphrase that protects this new store. "
        "Nothing "
        "on disk can open it without the passphrase, and it cannot be "
        "recovered.\n";
    (void)!write(fd, intro, sizeof intro - 1);
  }
  absl::StatusOr<SecretBytes> pass =
      PromptOnce(fd, "credbrokerd store passphrase: ");
  if (pass.ok() && new_store) {
    absl::StatusOr<SecretBytes> again =
        PromptOnce(fd, "the same passphrase again: ");
    if (!again.ok() || *again != *pass) {
      pass = absl::InvalidArgumentError(
          "the two passphrases differ; nothing was created");
    } else if (pass->size() < 8) {
      pass = absl::InvalidArgumentError(
          "the passphrase is shorter than 8 characters; choose a longer one");
    }
  }
  close(fd);
  return pass;
}

bool HasTerminal() {
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) return false;
  close(tty);
  return true;
}

}  // namespace credbroker
