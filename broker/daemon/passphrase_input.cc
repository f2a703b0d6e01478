#include "broker/daemon/passphrase_input.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/secret_input.h"

namespace credbroker {

absl::StatusOr<SecretBytes> PromptPassphrase(bool new_store) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        "this store is protected by a passphrase (the default), and there is "
        "no terminal to ask for it on: start credbrokerd from a terminal, or "
        "pass --passphrase_fd N. For unattended or test use, a new data "
        "directory can be created with --key_source=file instead (any process "
        "running as you can then read every stored secret)");
  }
  if (new_store) {
    const char intro[] =
        "credbrokerd: choose the passphrase that protects this new store. "
        "Nothing on disk can open it without the passphrase, and it cannot be "
        "recovered.\n";
    (void)!write(fd, intro, sizeof intro - 1);
  }
  absl::StatusOr<SecretBytes> pass =
      PromptSecretLine(fd, "credbrokerd store passphrase: ", "passphrase");
  if (pass.ok() && new_store) {
    absl::StatusOr<SecretBytes> again =
        PromptSecretLine(fd, "the same passphrase again: ", "passphrase");
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
