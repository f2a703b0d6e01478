#include "common/secret.h"

#include <ostream>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(SecretBytesTest, HoldsTheValueAndRevealsItExplicitly) {
  SecretBytes s("hunter2-marker");
  EXPECT_EQ(s.size(), 14u);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(s.Reveal() == "hunter2-marker");
}

template <typename T, typename = void>
struct Streamable : std::false_type {};
template <typename T>
struct Streamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                          << std::declval<const T&>())>>
    : std::true_type {};

// A secret cannot be printed, concatenated or turned into a string by
// accident: each of these would be a compile error.
TEST(SecretBytesTest, CannotBeStringifiedImplicitly) {
  EXPECT_FALSE((std::is_convertible_v<SecretBytes, std::string>));
  EXPECT_FALSE((std::is_convertible_v<SecretBytes, absl::string_view>));
  EXPECT_FALSE((std::is_constructible_v<absl::AlphaNum, const SecretBytes&>));
  EXPECT_FALSE(Streamable<SecretBytes>::value);
  EXPECT_TRUE(Streamable<std::string>::value);  // The probe itself works.
}

TEST(SecretBytesTest, CopiesAreDeepAndIndependent) {
  SecretBytes a("first-value");
  SecretBytes b = a;
  EXPECT_TRUE(a == b);
  EXPECT_NE(a.data(), b.data());
  a.Clear();
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(b.Reveal() == "first-value");
}

TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  SecretBytes a("moved-value");
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): specified.
  EXPECT_TRUE(b.Reveal() == "moved-value");
  SecretBytes c("other");
  c = std::move(b);
  EXPECT_TRUE(c.Reveal() == "moved-value");
}

TEST(SecretBytesTest, EqualityComparesContents) {
  EXPECT_TRUE(SecretBytes("abc") == SecretBytes("abc"));
  EXPECT_TRUE(SecretBytes("abc") != SecretBytes("abd"));
  EXPECT_TRUE(SecretBytes("abc") != SecretBytes("abcd"));
  EXPECT_TRUE(SecretBytes() == SecretBytes(""));
}

TEST(SecretBytesTest, TakeFromWipesTheSourceString) {
  std::string source = "pasted-secret";
  SecretBytes s = SecretBytes::TakeFrom(source);
  EXPECT_TRUE(source.empty());
  EXPECT_TRUE(s.Reveal() == "pasted-secret");
}

TEST(SecretBytesTest, WipeStringZeroesBeforeClearing) {
  std::string s = "abcdef";
  const char* data = s.data();
  WipeString(s);
  EXPECT_TRUE(s.empty());
  // Small-string storage is still ours to read: it must hold zeros now.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(data[i], '\0');
}

TEST(SecretBytesTest, ZeroedHasRequestedSize) {
  SecretBytes s = SecretBytes::Zeroed(32);
  ASSERT_EQ(s.size(), 32u);
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s.data()[i], 0);
  s.mutable_data()[0] = 7;
  EXPECT_EQ(s.data()[0], 7);
}

}  // namespace
}  // namespace credbroker
