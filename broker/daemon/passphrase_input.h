// The store's passphrase as the daemon reads it at start: one line of a
// file descriptor (--passphrase_fd), or typed on the controlling terminal.
// Read straight into locked, wiped memory (SecretBytes), never into a
// std::string. Not thread-safe (the terminal's echo setting).
#ifndef CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_
#define CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_

#include "absl/status/statusor.h"
#include "common/secret.h"

namespace credbroker {

// One line of `fd` (without its newline). INVALID_ARGUMENT when nothing
// could be read or the line is longer than 4096 bytes.
absl::StatusOr<SecretBytes> ReadPassphraseFromFd(int fd);

// Asks on /dev/tty without echo; twice when `new_store` (a typo in a new
// passphrase would lock the person out), which also needs 8 characters.
// FAILED_PRECONDITION saying what to do when there is no terminal.
absl::StatusOr<SecretBytes> PromptPassphrase(bool new_store);

// Whether a terminal (/dev/tty) can be opened to ask on.
bool HasTerminal();

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_
