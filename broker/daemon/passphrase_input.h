// The store's passphrase as the daemon asks for it at start on the
// controlling terminal (--passphrase_fd N reads it with ReadSecretLine,
// common/secret_input.h). Not thread-safe (the terminal's echo setting).
#ifndef CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_
#define CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_

#include "absl/status/statusor.h"
#include "common/secret.h"

namespace credbroker {

// Asks on /dev/tty without echo; twice when `new_store` (a typo in a new
// passphrase would lock the person out), which also needs 8 characters.
// FAILED_PRECONDITION saying what to do when there is no terminal.
absl::StatusOr<SecretBytes> PromptPassphrase(bool new_store);

// Whether a terminal (/dev/tty) can be opened to ask on.
bool HasTerminal();

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_PASSPHRASE_INPUT_H_
