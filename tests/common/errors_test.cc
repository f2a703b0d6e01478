#include "common/errors.h"

#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(ErrorsTest, ViolationsRoundTripThroughTheStatus) {
  absl::Status s = InvalidArgumentWithViolations(
      "bad input",
      {{"values.region", "not a region"}, {"profile", "too long"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bad input");
  std::vector<FieldViolation> v = GetFieldViolations(s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].field, "values.region");
  EXPECT_EQ(v[0].description, "not a region");
  EXPECT_EQ(v[1].field, "profile");
  EXPECT_EQ(v[1].description, "too long");
}

TEST(ErrorsTest, PlainStatusHasNoViolations) {
  EXPECT_TRUE(GetFieldViolations(absl::NotFoundError("x")).empty());
  EXPECT_TRUE(GetFieldViolations(absl::OkStatus()).empty());
}

TEST(ErrorsTest, SetOnOkStatusIsIgnored) {
  absl::Status ok;
  SetFieldViolations(ok, {{"a", "b"}});
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(GetFieldViolations(ok).empty());
}

TEST(ErrorsTest, EmptyDescriptionsSurvive) {
  absl::Status s = InvalidArgumentWithViolations("m", {{"f", ""}, {"", "d"}});
  std::vector<FieldViolation> v = GetFieldViolations(s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].field, "f");
  EXPECT_EQ(v[0].description, "");
  EXPECT_EQ(v[1].field, "");
  EXPECT_EQ(v[1].description, "d");
}

}  // namespace
}  // namespace credbroker
