// Secrets typed by a person or handed over on a file descriptor: one line,
// read byte by byte (so each call takes exactly one line and leaves the
// rest for the next) straight into locked, wiped memory (SecretBytes),
// never into a std::string. Used by credbrokerd for the store's passphrase
// and by credctl for passphrases and PINs. Not thread-safe (a terminal's
// echo setting).
#ifndef CREDBROKER_COMMON_SECRET_INPUT_H_
#define CREDBROKER_COMMON_SECRET_INPUT_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/secret.h"

namespace credbroker {

// The longest secret line accepted, in bytes.
inline constexpr size_t kMaxSecretLine = 4096;

// One line of `fd` without its "\n" (and a "\r" before it).
// INVALID_ARGUMENT naming `what` ("passphrase", "approval PIN") when the
// line is empty, nothing could be read, or it is longer than
// kMaxSecretLine.
absl::StatusOr<SecretBytes> ReadSecretLine(int fd, absl::string_view what);

// Writes `prompt` to the terminal `tty`, reads one line with echo off (when
// `tty` is a terminal) and ends the line the person typed.
absl::StatusOr<SecretBytes> PromptSecretLine(int tty, absl::string_view prompt,
                                             absl::string_view what);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_SECRET_INPUT_H_
