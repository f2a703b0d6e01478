// The checks every conversion test uses: a message filled in every field
// (proto_filler.h) survives message -> plain type -> message, and a
// request built from a plain value sets every field of its message.
#ifndef CREDBROKER_TESTS_CLIENT_ROUND_TRIP_H_
#define CREDBROKER_TESTS_CLIENT_ROUND_TRIP_H_

#include <string>
#include <vector>

#include "client/internal/convert.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/client/proto_filler.h"

namespace credbroker {
namespace client {
namespace internal {

// `original` -> T -> P gives `original` back, field for field.
template <typename T, typename P>
void ExpectRoundTrip(const P& original) {
  const T value = FromProto(original);
  P back;
  ToProto(value, &back);
  std::string differences;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differ.Compare(original, back))
      << P::descriptor()->full_name() << ": " << differences;
}

// The same for a P filled in every field.
template <typename T, typename P>
void ExpectRoundTrip() {
  P original;
  testing::FillEveryField(&original);
  ExpectRoundTrip<T>(original);
}

// Every field of `m` is set: a field a request's ToProto forgets stays at
// its default and is not.
inline void ExpectEveryFieldSet(const google::protobuf::Message& m) {
  std::vector<const google::protobuf::FieldDescriptor*> set;
  m.GetReflection()->ListFields(m, &set);
  EXPECT_EQ(static_cast<int>(set.size()), m.GetDescriptor()->field_count())
      << m.GetDescriptor()->full_name() << ": " << m.ShortDebugString();
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CLIENT_ROUND_TRIP_H_
