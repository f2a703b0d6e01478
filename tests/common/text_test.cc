#include "common/text.h"

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(TextTest, PlainTextAndOtherScriptsPass) {
  EXPECT_FALSE(FindUnsafeText("deploy to AWS in us-east-1").has_value());
  EXPECT_FALSE(FindUnsafeText("").has_value());
  EXPECT_FALSE(FindUnsafeText("déployer sur Azure — région westeurope, 東京")
                   .has_value());
  EXPECT_FALSE(FindUnsafeText("emoji \xF0\x9F\x9A\x80 ok").has_value());
}

TEST(TextTest, ControlCharactersAreNamedWithTheirPosition) {
  auto esc = FindUnsafeText("deploy\x1b[2Kharmless");
  ASSERT_TRUE(esc.has_value());
  EXPECT_TRUE(absl::StrContains(*esc, "U+001B at byte 6")) << *esc;
  for (const std::string& bad :
       {std::string("a\rb"), std::string("a\nb"), std::string("a\tb"),
        std::string("nul\0here", 8), std::string("del\x7f"),
        std::string("c1 \xC2\x9B")}) {
    EXPECT_TRUE(FindUnsafeText(bad).has_value()) << EscapeForTerminal(bad);
  }
}

TEST(TextTest, BidirectionalOverridesAreRefused) {
  // U+202E RIGHT-TO-LEFT OVERRIDE, U+2066 LEFT-TO-RIGHT ISOLATE, U+200F RLM.
  for (const char* bad : {"deploy \xE2\x80\xAE"
                          "ecnatsni",
                          "x\xE2\x81\xA6y", "a\xE2\x80\x8F"}) {
    auto found = FindUnsafeText(bad);
    ASSERT_TRUE(found.has_value()) << bad;
    EXPECT_TRUE(absl::StrContains(*found, "bidirectional")) << *found;
  }
}

TEST(TextTest, InvalidUtf8IsRefused) {
  for (const std::string& bad :
       {std::string("\xff"), std::string("\xC3"),
        std::string("\xC0\xAF"),      // overlong '/'
        std::string("\xED\xA0\x80"),  // a surrogate
        std::string("\xF4\x90\x80\x80"), std::string("ab\x80")}) {
    auto found = FindUnsafeText(bad);
    ASSERT_TRUE(found.has_value()) << EscapeForTerminal(bad);
    EXPECT_TRUE(absl::StrContains(*found, "invalid UTF-8")) << *found;
  }
}

TEST(TextTest, FindInvalidUtf8GivesTheFirstBadByteOnly) {
  EXPECT_FALSE(
      FindInvalidUtf8("plain, \x1b escapes and \xE6\x9D\xB1\xE4\xBA\xAC")
          .has_value());
  EXPECT_EQ(FindInvalidUtf8("ab\x80"
                            "cd\xff"),
            std::optional<size_t>(2));
  EXPECT_EQ(FindInvalidUtf8("\xED\xA0\x80"),
            std::optional<size_t>(0));  // a surrogate
}

TEST(TextTest, EscapingLeavesNothingATerminalActsOn) {
  EXPECT_EQ(EscapeForTerminal("ok \xE2\x80\xAE x\x1b[1m\xff"),
            "ok \\u{202E} x\\u{001B}[1m\\xFF");
  EXPECT_EQ(EscapeForTerminal("région"), "région");
  EXPECT_FALSE(
      FindUnsafeText(EscapeForTerminal("a\r\n\x1b\xC2\x9B\xE2\x81\xA9\xfe"))
          .has_value());
}

}  // namespace
}  // namespace credbroker
