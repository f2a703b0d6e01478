// Fuzzes ParseJson and JsonQuote.
//
// Invariants: an error is INVALID_ARGUMENT with a position and a message
// that holds no input text (checked with the marker: "@@" in the input
// becomes kMarker); a parsed value printed back as JSON parses to an equal
// value; JsonQuote of any bytes is a JSON string, equal to the bytes when
// they are valid UTF-8.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "common/json.h"
#include "tests/fuzz/fuzz_support.h"

namespace credbroker {
namespace fuzz {
namespace {

void Print(const JsonValue& v, std::string& out) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      out += "null";
      return;
    case JsonValue::Type::kBool:
      out += v.bool_value() ? "true" : "false";
      return;
    case JsonValue::Type::kNumber: {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.17g", v.number_value());
      out += buf;
      return;
    }
    case JsonValue::Type::kString:
      out += JsonQuote(v.string_value());
      return;
    case JsonValue::Type::kArray: {
      out += '[';
      bool first = true;
      for (const JsonValue& item : v.array_items()) {
        if (!first) out += ',';
        first = false;
        Print(item, out);
      }
      out += ']';
      return;
    }
    case JsonValue::Type::kObject: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.object_members()) {
        if (!first) out += ',';
        first = false;
        out += JsonQuote(key);
        out += ':';
        Print(value, out);
      }
      out += '}';
      return;
    }
  }
}

bool Equal(const JsonValue& a, const JsonValue& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case JsonValue::Type::kNull:
      return true;
    case JsonValue::Type::kBool:
      return a.bool_value() == b.bool_value();
    case JsonValue::Type::kNumber:
      return a.number_value() == b.number_value() &&
             std::signbit(a.number_value()) == std::signbit(b.number_value());
    case JsonValue::Type::kString:
      return a.string_value() == b.string_value();
    case JsonValue::Type::kArray: {
      const auto& x = a.array_items();
      const auto& y = b.array_items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equal(x[i], y[i])) return false;
      }
      return true;
    }
    case JsonValue::Type::kObject: {
      const auto& x = a.object_members();
      const auto& y = b.object_members();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (x[i].first != y[i].first || !Equal(x[i].second, y[i].second)) {
          return false;
        }
      }
      return true;
    }
  }
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF.
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

void Run(absl::string_view raw) {
  if (ContainsMarker(raw)) return;
  std::string input = WithMarker(raw);

  absl::StatusOr<JsonValue> parsed = ParseJson(input);
  if (!parsed.ok()) {
    Check(parsed.status().code() == absl::StatusCode::kInvalidArgument,
          "ParseJson failed with a code other than INVALID_ARGUMENT");
    Check(GetJsonErrorPosition(parsed.status()).has_value(),
          "a ParseJson error has no position");
    CheckStatusHidesMarker(parsed.status());
  } else {
    std::string printed;
    Print(*parsed, printed);
    absl::StatusOr<JsonValue> reparsed = ParseJson(printed);
    Check(reparsed.ok(), "a parsed value printed back is not valid JSON");
    Check(Equal(*parsed, *reparsed),
          "a parsed value printed back parses to another value");
  }

  std::string quoted = JsonQuote(raw);
  absl::StatusOr<JsonValue> unquoted = ParseJson(quoted);
  Check(unquoted.ok() && unquoted->is_string(),
        "JsonQuote produced something that is not a JSON string");
  if (IsValidUtf8(raw)) {
    Check(unquoted->string_value() == raw,
          "JsonQuote of valid UTF-8 does not round-trip");
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace credbroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credbroker::fuzz::Run(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
