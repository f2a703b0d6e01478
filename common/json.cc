#include "common/json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <system_error>
#include <unordered_set>

#include "absl/strings/charconv.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/secret.h"

namespace credbroker {

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}

JsonValue JsonValue::Number(double d) {
  JsonValue v;
  v.type_ = Type::kNumber;
  v.number_ = d;
  return v;
}

JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}

JsonValue JsonValue::MakeArray(Array items) {
  JsonValue v;
  v.type_ = Type::kArray;
  v.array_ = std::move(items);
  return v;
}

JsonValue JsonValue::MakeObject(Object members) {
  JsonValue v;
  v.type_ = Type::kObject;
  v.object_ = std::move(members);
  return v;
}

JsonValue::~JsonValue() {
  WipeString(string_);
  for (auto& member : object_) WipeString(member.first);
}

const JsonValue* JsonValue::Find(absl::string_view key) const {
  for (const auto& [name, value] : object_) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::optional<absl::string_view> JsonValue::FindString(
    absl::string_view key) const {
  const JsonValue* v = Find(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return absl::string_view(v->string_value());
}

absl::string_view JsonTypeName(JsonValue::Type type) {
  switch (type) {
    case JsonValue::Type::kNull:
      return "null";
    case JsonValue::Type::kBool:
      return "a boolean";
    case JsonValue::Type::kNumber:
      return "a number";
    case JsonValue::Type::kString:
      return "a string";
    case JsonValue::Type::kArray:
      return "an array";
    case JsonValue::Type::kObject:
      return "an object";
  }
  return "a value";
}

namespace {

constexpr char kPositionUrl[] = "credbroker/json_error_position";

// Appends code point `cp` (already validated) as UTF-8.
void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8SequenceLength(absl::string_view s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t min;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

class Parser {
 public:
  Parser(absl::string_view text, const JsonParseOptions& options)
      : text_(text), options_(options) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    if (text_.size() > options_.max_bytes) {
      pos_ = 0;
      return Error(absl::StrCat("the input is ", text_.size(),
                                " bytes; at most ", options_.max_bytes,
                                " are accepted"));
    }
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // UTF-8 BOM
    SkipWhitespace();
    if (AtEnd()) return Error("the input is empty; expected a JSON value");
    JsonValue value;
    absl::Status s = ParseValue(value, 0);
    if (!s.ok()) return s;
    SkipWhitespace();
    if (!AtEnd()) return Error("unexpected text after the JSON value");
    return value;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd()) {
      char c = Peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  // INVALID_ARGUMENT at the current position. `what` must not contain input.
  absl::Status Error(absl::string_view what) const {
    JsonErrorPosition where;
    where.line = 1;
    where.column = 1;
    size_t end = std::min(pos_, text_.size());
    for (size_t i = 0; i < end; ++i) {
      unsigned char c = static_cast<unsigned char>(text_[i]);
      if (c == '\n') {
        ++where.line;
        where.column = 1;
      } else if ((c & 0xC0) != 0x80) {  // not a UTF-8 continuation byte
        ++where.column;
      }
    }
    absl::Status status = absl::InvalidArgumentError(absl::StrCat(
        "line ", where.line, ", column ", where.column, ": ", what));
    status.SetPayload(kPositionUrl,
                      absl::Cord(absl::StrCat(where.line, ":", where.column)));
    return status;
  }

  absl::Status ParseValue(JsonValue& out, size_t depth) {
    if (AtEnd()) return Error("unexpected end of input; expected a value");
    switch (Peek()) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case '"': {
        std::string s;
        absl::Status status = ParseString(s);
        if (!status.ok()) {
          WipeString(s);
          return status;
        }
        out = JsonValue::String(std::move(s));
        return absl::OkStatus();
      }
      case 't':
        return ParseLiteral("true", JsonValue::Bool(true), out);
      case 'f':
        return ParseLiteral("false", JsonValue::Bool(false), out);
      case 'n':
        return ParseLiteral("null", JsonValue::Null(), out);
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) {
          return ParseNumber(out);
        }
        if (Peek() == '\'') {
          return Error("strings must use double quotes");
        }
        return Error("unexpected character; expected a value");
    }
  }

  absl::Status ParseLiteral(absl::string_view word, JsonValue value,
                            JsonValue& out) {
    if (text_.substr(pos_, word.size()) != word) {
      return Error("unexpected character; expected a value");
    }
    pos_ += word.size();
    out = std::move(value);
    return absl::OkStatus();
  }

  absl::Status ParseObject(JsonValue& out, size_t depth) {
    if (depth > options_.max_depth) {
      return Error(absl::StrCat("nesting is deeper than ", options_.max_depth,
                                " levels"));
    }
    ++pos_;  // '{'
    JsonValue::Object members;
    std::unordered_set<std::string> names;
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      out = JsonValue::MakeObject(std::move(members));
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (AtEnd()) return Error("unexpected end of input inside an object");
      if (Peek() != '"') {
        return Error(Peek() == '}' ? "trailing comma before '}'"
                                   : "expected a member name in double quotes");
      }
      size_t key_pos = pos_;
      std::string key;
      absl::Status status = ParseString(key);
      if (!status.ok()) return status;
      // A set rather than a scan of `members`: a large object must not cost
      // quadratic time.
      if (!names.insert(key).second) {
        pos_ = key_pos;
        return Error("duplicate member name in an object");
      }
      SkipWhitespace();
      if (AtEnd() || Peek() != ':') {
        return Error("expected ':' after a member name");
      }
      ++pos_;
      SkipWhitespace();
      JsonValue value;
      status = ParseValue(value, depth);
      if (!status.ok()) return status;
      members.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error("unexpected end of input inside an object");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        out = JsonValue::MakeObject(std::move(members));
        return absl::OkStatus();
      }
      return Error("expected ',' or '}' after an object member");
    }
  }

  absl::Status ParseArray(JsonValue& out, size_t depth) {
    if (depth > options_.max_depth) {
      return Error(absl::StrCat("nesting is deeper than ", options_.max_depth,
                                " levels"));
    }
    ++pos_;  // '['
    JsonValue::Array items;
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      out = JsonValue::MakeArray(std::move(items));
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (!AtEnd() && Peek() == ']') return Error("trailing comma before ']'");
      JsonValue value;
      absl::Status status = ParseValue(value, depth);
      if (!status.ok()) return status;
      items.push_back(std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error("unexpected end of input inside an array");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        out = JsonValue::MakeArray(std::move(items));
        return absl::OkStatus();
      }
      return Error("expected ',' or ']' after an array element");
    }
  }

  // Reads 4 hex digits at pos_ into `unit`.
  absl::Status ParseHex4(uint32_t& unit) {
    unit = 0;
    for (int i = 0; i < 4; ++i) {
      if (AtEnd()) return Error("unexpected end of input in a \\u escape");
      char c = Peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return Error("a \\u escape needs four hexadecimal digits");
      }
      unit = unit * 16 + digit;
      ++pos_;
    }
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      unsigned char c = static_cast<unsigned char>(Peek());
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) {
        return Error(c == '\n' ? "line break inside a string (write \\n)"
                               : "control character inside a string");
      }
      if (c == '\\') {
        absl::Status s = ParseEscape(out);
        if (!s.ok()) return s;
        continue;
      }
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      size_t len = Utf8SequenceLength(text_.substr(pos_));
      if (len == 0) return Error("invalid UTF-8 in a string");
      out.append(text_.data() + pos_, len);
      pos_ += len;
    }
  }

  // Parses one backslash escape (pos_ at the backslash) and appends what it
  // stands for to `out`.
  absl::Status ParseEscape(std::string& out) {
    ++pos_;
    if (AtEnd()) return Error("unterminated string");
    char e = Peek();
    ++pos_;
    switch (e) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '/':
        out.push_back('/');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u':
        return ParseUnicodeEscape(out);
      default:
        pos_ -= 2;
        return Error("invalid escape sequence in a string");
    }
    return absl::OkStatus();
  }

  // Parses the four hex digits of a "\\u" escape (pos_ just after the u),
  // joining a surrogate pair, and appends the code point as UTF-8.
  absl::Status ParseUnicodeEscape(std::string& out) {
    size_t escape_pos = pos_ - 2;
    uint32_t unit;
    absl::Status s = ParseHex4(unit);
    if (!s.ok()) return s;
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      pos_ = escape_pos;
      return Error(
          "a \\u escape holds a low surrogate without a "
          "preceding high surrogate");
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") {
        pos_ = escape_pos;
        return Error(
            "a \\u escape holds a high surrogate that is "
            "not followed by a low surrogate escape");
      }
      pos_ += 2;
      uint32_t low;
      s = ParseHex4(low);
      if (!s.ok()) return s;
      if (low < 0xDC00 || low > 0xDFFF) {
        pos_ = escape_pos;
        return Error(
            "a \\u escape holds a high surrogate that is "
            "not followed by a low surrogate escape");
      }
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(unit, out);
    return absl::OkStatus();
  }

  absl::Status ParseNumber(JsonValue& out) {
    size_t start = pos_;
    auto digits = [&]() {
      size_t n = 0;
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
        ++pos_;
        ++n;
      }
      return n;
    };
    if (Peek() == '-') ++pos_;
    if (AtEnd() || Peek() < '0' || Peek() > '9') {
      return Error("a number needs a digit after '-'");
    }
    if (Peek() == '0') {
      ++pos_;
      if (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
        return Error("numbers may not have leading zeros");
      }
    } else {
      digits();
    }
    if (!AtEnd() && Peek() == '.') {
      ++pos_;
      if (digits() == 0) return Error("a number needs digits after '.'");
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (digits() == 0) return Error("a number needs digits in its exponent");
    }
    absl::string_view literal = text_.substr(start, pos_ - start);
    double d = 0;
    absl::from_chars_result r =
        absl::from_chars(literal.data(), literal.data() + literal.size(), d);
    // RFC 8259 section 6 lets a parser limit the range of numbers: one that
    // overflows or underflows a double is refused rather than rounded.
    if (r.ec != std::errc() || !std::isfinite(d)) {
      pos_ = start;
      return Error("the number is out of range for a double");
    }
    out = JsonValue::Number(d);
    return absl::OkStatus();
  }

  absl::string_view text_;
  const JsonParseOptions& options_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<JsonValue> ParseJson(absl::string_view text,
                                    const JsonParseOptions& options) {
  return Parser(text, options).ParseDocument();
}

std::optional<JsonErrorPosition> GetJsonErrorPosition(
    const absl::Status& status) {
  auto payload = status.GetPayload(kPositionUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string flat(*payload);
  std::pair<std::string, std::string> parts = absl::StrSplit(flat, ':');
  JsonErrorPosition where;
  if (!absl::SimpleAtoi(parts.first, &where.line) ||
      !absl::SimpleAtoi(parts.second, &where.column)) {
    return std::nullopt;
  }
  return where;
}

std::string JsonQuote(absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s.substr(i));
      if (len == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

}  // namespace credbroker
