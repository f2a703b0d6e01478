#include "broker/core/record_codec.h"

#include "gtest/gtest.h"

namespace credbroker {
namespace {

TEST(RecordCodecTest, RoundTripsFieldValues) {
  FieldValues in;
  in.emplace("access_key_id", SecretBytes("AKIAIOSFODNN7EXAMPLE"));
  in.emplace("empty", SecretBytes(""));
  in.emplace("secret_access_key", SecretBytes(std::string(300, 'k')));
  std::string binary("a\0b\xff", 4);
  in.emplace("binary", SecretBytes(binary));
  SecretBytes encoded = EncodeFieldValues(in);
  absl::StatusOr<FieldValues> out = DecodeFieldValues(encoded);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), in.size());
  for (const auto& [name, value] : in) {
    ASSERT_EQ(out->count(name), 1u) << name;
    EXPECT_TRUE(out->at(name) == value) << name;
  }
}

TEST(RecordCodecTest, EmptyRecordRoundTrips) {
  absl::StatusOr<FieldValues> out = DecodeFieldValues(EncodeFieldValues({}));
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

TEST(RecordCodecTest, RejectsMalformedRecords) {
  FieldValues in;
  in.emplace("name", SecretBytes("value"));
  SecretBytes good = EncodeFieldValues(in);
  std::string bytes(good.Reveal());

  EXPECT_EQ(DecodeFieldValues(SecretBytes("")).status().code(),
            absl::StatusCode::kDataLoss);
  std::string wrong_version = bytes;
  wrong_version[0] = 9;
  EXPECT_EQ(DecodeFieldValues(SecretBytes(wrong_version)).status().code(),
            absl::StatusCode::kDataLoss);
  // Every truncation is detected.
  for (size_t n = 2; n < bytes.size(); ++n) {
    EXPECT_EQ(
        DecodeFieldValues(SecretBytes(bytes.substr(0, n))).status().code(),
        absl::StatusCode::kDataLoss)
        << n;
  }
  // A length that runs past the end.
  std::string too_long = bytes;
  too_long[1] = 100;
  EXPECT_EQ(DecodeFieldValues(SecretBytes(too_long)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, RejectsRepeatedNames) {
  std::string rec(
      "\x01\x01"
      "a\x01x\x01"
      "a\x01y",
      9);
  EXPECT_EQ(DecodeFieldValues(SecretBytes(rec)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(RecordCodecTest, AssociatedDataNamesTheIdentity) {
  std::string a = RecordAssociatedData("aws", "default", 1);
  EXPECT_NE(a, RecordAssociatedData("aws", "default", 2));
  EXPECT_NE(a, RecordAssociatedData("aws", "prod", 1));
  EXPECT_NE(a, RecordAssociatedData("gcp", "default", 1));
  // Separators keep "ab"/"c" apart from "a"/"bc".
  EXPECT_NE(RecordAssociatedData("ab", "c", 1),
            RecordAssociatedData("a", "bc", 1));
}

}  // namespace
}  // namespace credbroker
