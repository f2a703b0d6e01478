// Checks for text that a person reads in an approval prompt: the agent
// writes it (the need's action and context), so it must not be able to
// redraw the prompt (ESC sequences, CR), hide text (NUL) or reorder it
// (bidirectional overrides). Thread-safe, no state.
#ifndef CREDBROKER_COMMON_TEXT_H_
#define CREDBROKER_COMMON_TEXT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace credbroker {

// What is wrong with `text`, in words ("a control character U+001B at byte
// 7"), or nullopt when it is valid UTF-8 free of C0 and C1 control
// characters (tab included), DEL, and bidirectional formatting characters
// (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C).
std::optional<std::string> FindUnsafeText(absl::string_view text);

// The byte offset of the first byte that is not valid UTF-8 in `text`, or
// nullopt when all of it is valid UTF-8.
std::optional<size_t> FindInvalidUtf8(absl::string_view text);

// `text` with every character FindUnsafeText objects to, and every byte of
// invalid UTF-8, written as \u{XXXX} or \xNN: safe to print to a terminal.
std::string EscapeForTerminal(absl::string_view text);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_TEXT_H_
