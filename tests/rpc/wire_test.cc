#include "broker/rpc/wire.h"

#include <google/protobuf/util/message_differencer.h>

#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace {

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

v1::SessionRequest NeedRequest() {
  v1::SessionRequest r;
  r.mutable_need()->set_need_id("n1");
  r.mutable_need()->set_provider("aws");
  r.mutable_need()->set_action("deploy #1# to prod");
  (*r.mutable_need()->mutable_context())["region"] = "us-#2#-1";
  (*r.mutable_need()->mutable_context())["k#3#"] = "v";
  return r;
}

TEST(WireTest, ValidBytesParseAsTheyAre) {
  v1::SessionRequest in = NeedRequest();
  v1::SessionRequest out;
  std::vector<FieldViolation> invalid;
  ASSERT_TRUE(
      ParseNamingInvalidUtf8(Buffer(in.SerializeAsString()), &out, &invalid));
  EXPECT_TRUE(invalid.empty());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(out, in));
}

TEST(WireTest, InvalidUtf8IsNamedByFieldAndParsedEscaped) {
  std::string bytes = absl::StrReplaceAll(NeedRequest().SerializeAsString(),
                                          {{"#1#", "\xff\xfe!"},
                                           {"#2#", "\xc3(x"},
                                           {"#3#",
                                            "\x80"
                                            "ab"}});
  v1::SessionRequest out;
  ASSERT_FALSE(out.ParseFromString(bytes));  // What the generated parser does.
  std::vector<FieldViolation> invalid;
  ASSERT_TRUE(ParseNamingInvalidUtf8(Buffer(bytes), &out, &invalid));
  std::vector<std::string> fields;
  for (const FieldViolation& v : invalid) {
    fields.push_back(v.field);
    EXPECT_THAT(v.description, ::testing::HasSubstr("invalid UTF-8"));
  }
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre(
                          "need.action", "need.context.region",
                          "need.context.k\\x80ab (key)"));
  EXPECT_EQ(out.need().action(), "deploy \\xFF\\xFE! to prod");
  EXPECT_EQ(out.need().context().at("region"), "us-\\xC3(x-1");
  EXPECT_EQ(out.need().need_id(), "n1");
}

TEST(WireTest, BytesThatAreNotTheMessageAreRefused) {
  v1::SessionRequest out;
  std::vector<FieldViolation> invalid;
  EXPECT_FALSE(
      ParseNamingInvalidUtf8(Buffer("\x12\x7f short"), &out, &invalid));
}

TEST(WireTest, SerializedBytesAreWipedWhenTheLastReferenceGoes) {
  v1::NeedUpdate update;
  update.set_need_id("n1");
  (*update.mutable_grant()->mutable_values())["secret_access_key"] =
      "s3cr3t-value";
  const size_t before = LiveWipedBytes();
  {
    grpc::ByteBuffer buffer = SerializeWiped(update);
    EXPECT_EQ(LiveWipedBytes(), before + update.ByteSizeLong());
    grpc::ByteBuffer shared(buffer);  // What gRPC holds while it writes.
    buffer.Clear();
    EXPECT_EQ(LiveWipedBytes(), before + update.ByteSizeLong());
    grpc::Slice flat;
    ASSERT_TRUE(shared.DumpToSingleSlice(&flat).ok());
    v1::NeedUpdate back;
    ASSERT_TRUE(
        back.ParseFromArray(flat.begin(), static_cast<int>(flat.size())));
    EXPECT_EQ(back.grant().values().at("secret_access_key"), "s3cr3t-value");
  }
  EXPECT_EQ(LiveWipedBytes(), before);
  WipeGrantValues(update);
  EXPECT_TRUE(update.grant().values().empty());
}

}  // namespace
}  // namespace credbroker
