// A small, strict JSON (RFC 8259) reader and a string quoter.
//
// ParseJson turns a complete JSON text into a JsonValue tree. It accepts
// exactly the RFC 8259 grammar (no comments, no trailing commas, no NaN, no
// single quotes, no leading zeros), requires valid UTF-8, decodes \uXXXX
// escapes including surrogate pairs, rejects lone surrogates, duplicate object
// keys and numbers that do not fit a double, and bounds nesting depth and
// input size. A leading UTF-8 byte-order mark is skipped (Windows tools write
// one). Error messages have the form "line L, column C: <what>" and never
// contain any of the input text, because the input may be a private key.
//
// JsonValue is an immutable-after-parse value type; distinct values may be
// used from different threads. String contents are wiped when a JsonValue is
// destroyed (best effort: a parse may hold a secret such as a PEM key).
#ifndef CREDBROKER_COMMON_JSON_H_
#define CREDBROKER_COMMON_JSON_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credbroker {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<JsonValue>;
  // Members in document order; keys are unique.
  using Object = std::vector<std::pair<std::string, JsonValue>>;

  JsonValue() = default;  // null
  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool b);
  static JsonValue Number(double d);
  static JsonValue String(std::string s);
  static JsonValue MakeArray(Array items);
  static JsonValue MakeObject(Object members);

  JsonValue(const JsonValue&) = default;
  JsonValue& operator=(const JsonValue&) = default;
  JsonValue(JsonValue&&) noexcept = default;
  JsonValue& operator=(JsonValue&&) noexcept = default;
  ~JsonValue();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors return the zero value (false, 0, "", empty) when the type
  // does not match.
  bool bool_value() const { return is_bool() && bool_; }
  double number_value() const { return is_number() ? number_ : 0; }
  const std::string& string_value() const { return string_; }
  const Array& array_items() const { return array_; }
  const Object& object_members() const { return object_; }

  // The member named `key` of an object; nullptr when absent or when this is
  // not an object.
  const JsonValue* Find(absl::string_view key) const;
  // The string member named `key`; nullopt when absent or not a string.
  std::optional<absl::string_view> FindString(absl::string_view key) const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

// A short name for a type, for error messages: "an object", "a string".
absl::string_view JsonTypeName(JsonValue::Type type);

struct JsonParseOptions {
  size_t max_depth = 64;           // Nested arrays/objects.
  size_t max_bytes = 1024 * 1024;  // Whole input.
};

// Where a parse failed. Lines and columns start at 1; columns count Unicode
// characters (UTF-8 sequences), not bytes.
struct JsonErrorPosition {
  int line = 0;
  int column = 0;
};

// Parses one complete JSON text (surrounding whitespace allowed).
// Returns INVALID_ARGUMENT "line L, column C: <what>" on any error, with the
// position also attached (see GetJsonErrorPosition); the message never
// contains input text.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text,
                                    const JsonParseOptions& options = {});

// The position of a ParseJson error; nullopt for any other status.
std::optional<JsonErrorPosition> GetJsonErrorPosition(
    const absl::Status& status);

// `s` as a JSON string literal, quotes included. Escapes '"', '\\' and
// control characters (\b \f \n \r \t, else \u00XX); invalid UTF-8 bytes
// become U+FFFD so that the output is always valid JSON.
std::string JsonQuote(absl::string_view s);

}  // namespace credbroker

#endif  // CREDBROKER_COMMON_JSON_H_
