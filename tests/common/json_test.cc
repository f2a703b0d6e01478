#include "common/json.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(JsonTest, ParsesScalars) {
  struct Case {
    const char* text;
    JsonValue::Type type;
  } cases[] = {
      {"null", JsonValue::Type::kNull},
      {"true", JsonValue::Type::kBool},
      {"false", JsonValue::Type::kBool},
      {"0", JsonValue::Type::kNumber},
      {"-0", JsonValue::Type::kNumber},
      {"\"\"", JsonValue::Type::kString},
      {"[]", JsonValue::Type::kArray},
      {"{}", JsonValue::Type::kObject},
      {" \t\r\n 1 \n", JsonValue::Type::kNumber},
  };
  for (const Case& c : cases) {
    absl::StatusOr<JsonValue> v = ParseJson(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_EQ(v->type(), c.type) << c.text;
  }
  EXPECT_TRUE(ParseJson("true")->bool_value());
  EXPECT_FALSE(ParseJson("false")->bool_value());
}

TEST(JsonTest, ParsesNumbers) {
  struct Case {
    const char* text;
    double value;
  } cases[] = {
      {"0", 0},
      {"-1", -1},
      {"42", 42},
      {"1.5", 1.5},
      {"-0.25", -0.25},
      {"1e3", 1000},
      {"1E+2", 100},
      {"25e-2", 0.25},
      {"123456789", 123456789},
      {"1.7976931348623157e308", 1.7976931348623157e308},
  };
  for (const Case& c : cases) {
    absl::StatusOr<JsonValue> v = ParseJson(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_DOUBLE_EQ(v->number_value(), c.value) << c.text;
  }
}

TEST(JsonTest, ParsesStringEscapes) {
  struct Case {
    const char* text;
    std::string value;
  } cases[] = {
      {R"("plain")", "plain"},
      {R"("a\"b\\c\/d")", "a\"b\\c/d"},
      {R"("\b\f\n\r\t")", "\b\f\n\r\t"},
      {R"("\u0041\u00e9\u20AC")", "A\xC3\xA9\xE2\x82\xAC"},
      {R"("\ud83d\ude00")", "\xF0\x9F\x98\x80"},  // U+1F600, surrogate pair
      {R"("\u0000")", std::string("\0", 1)},
      {"\"\xC3\xA9\xF0\x9F\x98\x80\"",
       "\xC3\xA9\xF0\x9F\x98\x80"},  // raw UTF-8
      {"\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\"",
       "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<JsonValue> v = ParseJson(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    ASSERT_TRUE(v->is_string());
    EXPECT_EQ(v->string_value(), c.value) << c.text;
  }
}

TEST(JsonTest, ParsesNestedStructuresInOrder) {
  absl::StatusOr<JsonValue> v = ParseJson(R"({
    "z": 1,
    "a": [true, null, {"k": "v"}, []],
    "m": {}
  })");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_object());
  const JsonValue::Object& members = v->object_members();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].first, "z");
  EXPECT_EQ(members[1].first, "a");
  EXPECT_EQ(members[2].first, "m");
  const JsonValue* a = v->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->array_items().size(), 4u);
  EXPECT_TRUE(a->array_items()[1].is_null());
  EXPECT_EQ(a->array_items()[2].FindString("k").value_or(""), "v");
  EXPECT_EQ(v->Find("missing"), nullptr);
  EXPECT_FALSE(v->FindString("z").has_value());  // a number, not a string
  EXPECT_EQ(a->Find("k"), nullptr);              // not an object
}

TEST(JsonTest, SkipsLeadingByteOrderMark) {
  absl::StatusOr<JsonValue> v = ParseJson("\xEF\xBB\xBF{\"a\": 1}");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->is_object());
}

struct BadCase {
  const char* name;
  std::string text;
  int line;
  int column;
  const char* what;  // A substring of the message.
};

TEST(JsonTest, ReportsErrorsWithLineAndColumn) {
  const BadCase cases[] = {
      {"empty", "", 1, 1, "empty"},
      {"blank", "  \n ", 2, 2, "empty"},
      {"unclosed object", "{", 1, 2, "end of input"},
      {"unclosed array", "[1, 2", 1, 6, "end of input"},
      {"trailing comma object", R"({"a":1,})", 1, 8, "trailing comma"},
      {"trailing comma array", "[1,]", 1, 4, "trailing comma"},
      {"missing colon", R"({"a" 1})", 1, 6, "':'"},
      {"missing comma", R"({"a":1 "b":2})", 1, 8, "','"},
      {"unquoted key", "{a:1}", 1, 2, "member name"},
      {"single quotes", "'a'", 1, 1, "double quotes"},
      {"bad literal on line 2", "{\n  \"a\": tru\n}", 2, 8, "unexpected"},
      {"leading zero", "01", 1, 2, "leading zeros"},
      {"lone minus", "-", 1, 2, "digit"},
      {"no fraction digits", "1.", 1, 3, "after '.'"},
      {"no exponent digits", "1e", 1, 3, "exponent"},
      {"leading dot", ".5", 1, 1, "unexpected"},
      {"leading plus", "+1", 1, 1, "unexpected"},
      {"NaN", "NaN", 1, 1, "unexpected"},
      {"Infinity", "-Infinity", 1, 2, "digit"},
      {"overflow", "[1e999]", 1, 2, "out of range"},
      {"underflow", "1e-999", 1, 1, "out of range"},
      {"unterminated string", "\"abc", 1, 5, "unterminated"},
      {"newline in string", "\"a\nb\"", 1, 3, "line break"},
      {"control char in string", "\"a\x01\"", 1, 3, "control character"},
      {"bad escape", R"("\x")", 1, 2, "escape"},
      {"short unicode escape", R"("\u12")", 1, 6, "hexadecimal"},
      {"lone high surrogate", R"("\ud800")", 1, 2, "surrogate"},
      {"high surrogate then letter", R"("\ud800\u0041")", 1, 2, "surrogate"},
      {"lone low surrogate", R"("\udc00")", 1, 2, "surrogate"},
      {"invalid utf8", "\"\xFF\"", 1, 2, "UTF-8"},
      {"overlong utf8", "\"\xC0\xAF\"", 1, 2, "UTF-8"},
      {"utf8 surrogate", "\"\xED\xA0\x80\"", 1, 2, "UTF-8"},
      {"truncated utf8", "\"\xE2\x82\"", 1, 2, "UTF-8"},
      {"text after value", "[1] x", 1, 5, "after the JSON value"},
      {"two values", "1 2", 1, 3, "after the JSON value"},
      {"comment", "// c\n1", 1, 1, "unexpected"},
      {"duplicate key", R"({"a":1,"a":2})", 1, 8, "duplicate"},
      {"column counts characters", "[\"\xC3\xA9\" x]", 1, 6, "','"},
      {"crlf lines", "{\r\n\"a\":\r\n}", 3, 1, "expected a value"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<JsonValue> v = ParseJson(c.text);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    std::string prefix =
        absl::StrCat("line ", c.line, ", column ", c.column, ": ");
    EXPECT_TRUE(absl::StartsWith(v.status().message(), prefix))
        << v.status().message();
    EXPECT_TRUE(absl::StrContains(v.status().message(), c.what))
        << v.status().message();
    std::optional<JsonErrorPosition> where = GetJsonErrorPosition(v.status());
    ASSERT_TRUE(where.has_value());
    EXPECT_EQ(where->line, c.line);
    EXPECT_EQ(where->column, c.column);
  }
}

TEST(JsonTest, ErrorMessagesNeverContainInput) {
  const std::string kMarker = "Zq7SECRETMARKERx9";
  const std::string inputs[] = {
      "{\"private_key\": \"" + kMarker + "\n\"}",
      "{\"k\": " + kMarker + "}",
      "[\"" + kMarker + "\" \"x\"]",
      "{\"" + kMarker + "\": 1, \"" + kMarker + "\": 2}",
      "\"" + kMarker + "\\q\"",
      "\"" + kMarker,
      kMarker,
      "'" + kMarker + "'",
      "{\"a\": \"" + kMarker + "\"} trailing " + kMarker,
      "1" + kMarker,
  };
  for (const std::string& input : inputs) {
    absl::StatusOr<JsonValue> v = ParseJson(input);
    ASSERT_FALSE(v.ok());
    EXPECT_FALSE(absl::StrContains(v.status().message(), "SECRET"))
        << "input leaked into the error message";
    EXPECT_FALSE(absl::StrContains(v.status().ToString(), "SECRET"));
  }
}

TEST(JsonTest, EnforcesDepthLimit) {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
  std::string deep = std::string(65, '[') + std::string(65, ']');
  absl::StatusOr<JsonValue> v = ParseJson(deep);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "column 65: nesting"))
      << v.status().message();

  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"a\":";
  objects += "1" + std::string(65, '}');
  EXPECT_FALSE(ParseJson(objects).ok());

  // Far deeper than the limit: refused without exhausting the stack.
  EXPECT_FALSE(ParseJson(std::string(1000000, '[')).ok());

  JsonParseOptions shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(ParseJson("[[1]]", shallow).ok());
  EXPECT_FALSE(ParseJson("[[[1]]]", shallow).ok());
}

TEST(JsonTest, EnforcesSizeLimit) {
  JsonParseOptions small;
  small.max_bytes = 10;
  EXPECT_TRUE(ParseJson("\"12345678\"", small).ok());  // 10 bytes
  absl::StatusOr<JsonValue> v = ParseJson("\"123456789\"", small);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(),
            "line 1, column 1: the input is 11 bytes; at most 10 are accepted");
}

TEST(JsonTest, LargeObjectsParse) {
  std::string text = "{";
  for (int i = 0; i < 50000; ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ",", "\"k", i, "\":", i);
  }
  text += "}";
  absl::StatusOr<JsonValue> v = ParseJson(text);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->object_members().size(), 50000u);
  text.insert(text.size() - 1, ",\"k123\":0");
  v = ParseJson(text);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "duplicate"));
}

// Deterministic mutations of a realistic document: every result is a value
// or a positioned error, never a crash, and never echoes the input.
TEST(JsonTest, MutatedInputsFailCleanly) {
  const std::string base =
      "{\n  \"type\": \"service_account\",\n  \"n\": [1, -2.5e3, true, "
      "null],\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nQk9HVVM="
      "\\n-----END PRIVATE KEY-----\\n\",\n  \"u\": \"\\u00e9\\ud83d"
      "\\ude00\"\n}\n";
  ASSERT_TRUE(ParseJson(base).ok());
  const char kBytes[] = "{}[]\",:\\/ \n\tu0eE+-.9aZ\x80\xC3\xFF";
  uint32_t seed = 12345;
  auto next = [&seed]() {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
  };
  for (int i = 0; i < 5000; ++i) {
    std::string text = base;
    int edits = 1 + next() % 3;
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t at = next() % text.size();
      switch (next() % 3) {
        case 0:
          text[at] = kBytes[next() % (sizeof(kBytes) - 1)];
          break;
        case 1:
          text.erase(at, 1 + next() % 4);
          break;
        default:
          text.insert(at, 1, kBytes[next() % (sizeof(kBytes) - 1)]);
      }
    }
    absl::StatusOr<JsonValue> v = ParseJson(text);
    if (v.ok()) continue;
    EXPECT_TRUE(absl::StartsWith(v.status().message(), "line "))
        << v.status().message();
    EXPECT_FALSE(absl::StrContains(v.status().message(), "Qk9HVVM"));
    EXPECT_FALSE(absl::StrContains(v.status().message(), "service_account"));
    EXPECT_TRUE(GetJsonErrorPosition(v.status()).has_value());
  }
}

TEST(JsonTest, ErrorPositionAbsentForOtherStatuses) {
  EXPECT_FALSE(GetJsonErrorPosition(absl::OkStatus()).has_value());
  EXPECT_FALSE(
      GetJsonErrorPosition(absl::InvalidArgumentError("x")).has_value());
}

TEST(JsonTest, BuildsValues) {
  JsonValue obj = JsonValue::MakeObject(
      {{"s", JsonValue::String("x")},
       {"n", JsonValue::Number(2)},
       {"a",
        JsonValue::MakeArray({JsonValue::Bool(true), JsonValue::Null()})}});
  EXPECT_EQ(obj.FindString("s").value_or(""), "x");
  EXPECT_EQ(obj.Find("n")->number_value(), 2);
  EXPECT_EQ(obj.Find("a")->array_items().size(), 2u);
  JsonValue copy = obj;
  EXPECT_EQ(copy.FindString("s").value_or(""), "x");
  JsonValue moved = std::move(copy);
  EXPECT_EQ(moved.FindString("s").value_or(""), "x");
  EXPECT_EQ(JsonTypeName(JsonValue::Type::kObject), "an object");
}

TEST(JsonQuoteTest, EscapesWhatJsonRequires) {
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"", "\"\""},
      {"plain text", "\"plain text\""},
      {"say \"hi\"", R"("say \"hi\"")"},
      {"back\\slash", R"("back\\slash")"},
      {"a\nb\tc\rd\be\ff", R"("a\nb\tc\rd\be\ff")"},
      {std::string("\x01\x1f\x7f", 3), R"("\u0001\u001f\u007f")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"caf\xC3\xA9 \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""},
      {"bad\xFFutf8", "\"bad\xEF\xBF\xBDutf8\""},
      {"cut\xE2\x82", "\"cut\xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"</script>", "\"</script>\""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(JsonQuote(c.in), c.out);
  }
}

TEST(JsonQuoteTest, RoundTripsThroughParser) {
  const std::string inputs[] = {
      "",
      "simple",
      "quotes \" and \\ backslashes",
      "\n\r\t\b\f",
      std::string("\0\x01\x1f", 3),
      "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
  };
  for (const std::string& s : inputs) {
    absl::StatusOr<JsonValue> v = ParseJson(JsonQuote(s));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->string_value() == s);
  }
}

}  // namespace
}  // namespace credbroker
