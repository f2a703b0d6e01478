#include "common/text.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"

namespace credbroker {
namespace {

// The code point at text[i] and its length in bytes; length 0 for invalid
// UTF-8 (bad lead or continuation byte, overlong form, surrogate, > U+10FFFF).
struct Decoded {
  uint32_t cp = 0;
  size_t len = 0;
};

Decoded DecodeAt(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return {b0, 1};
  size_t len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {};
  }
  if (i + len > text.size()) return {};
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {cp, len};
}

bool Unsafe(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

}  // namespace

std::optional<std::string> FindUnsafeText(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeAt(text, i);
    if (d.len == 0) {
      return absl::StrFormat("invalid UTF-8 (byte 0x%02X at byte %d)",
                             static_cast<uint8_t>(text[i]), i);
    }
    if (Unsafe(d.cp)) {
      return absl::StrFormat("a %s U+%04X at byte %d",
                             d.cp < 0xA0 ? "control character"
                                         : "bidirectional formatting "
                                           "character",
                             d.cp, i);
    }
    i += d.len;
  }
  return std::nullopt;
}

std::optional<size_t> FindInvalidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeAt(text, i);
    if (d.len == 0) return i;
    i += d.len;
  }
  return std::nullopt;
}

std::string EscapeForTerminal(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    Decoded d = DecodeAt(text, i);
    if (d.len == 0) {
      absl::StrAppendFormat(&out, "\\x%02X", static_cast<uint8_t>(text[i]));
      ++i;
      continue;
    }
    if (Unsafe(d.cp)) {
      absl::StrAppendFormat(&out, "\\u{%04X}", d.cp);
    } else {
      out.append(text.data() + i, d.len);
    }
    i += d.len;
  }
  return out;
}

}  // namespace credbroker
