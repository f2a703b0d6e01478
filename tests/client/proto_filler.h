// Fills every field of a protobuf message with a value that is not the
// default, recursing into sub-messages: a conversion that forgets a field
// then fails its round trip (convert_test.cc). Timestamps and durations
// get valid values.
#ifndef CREDBROKER_TESTS_CLIENT_PROTO_FILLER_H_
#define CREDBROKER_TESTS_CLIENT_PROTO_FILLER_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"

namespace credbroker {
namespace testing {

inline void FillEveryField(google::protobuf::Message* m, int seed = 1) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  const google::protobuf::Reflection* r = m->GetReflection();
  const std::string& type = d->full_name();
  if (type == "google.protobuf.Timestamp" ||
      type == "google.protobuf.Duration") {
    r->SetInt64(m, d->FindFieldByName("seconds"), 1700000000 + seed);
    r->SetInt32(m, d->FindFieldByName("nanos"), 1000 * seed);
    return;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const int count = f->is_repeated() ? 2 : 1;
    for (int n = 0; n < count; ++n) {
      const std::string text = absl::StrCat(f->name(), "-", seed, "-", n);
      const int number = seed + n + 1;
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_MESSAGE: {
          google::protobuf::Message* sub =
              f->is_repeated() ? r->AddMessage(m, f) : r->MutableMessage(m, f);
          FillEveryField(sub, number);  // A map entry too: key, value.
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING:
          if (f->is_repeated()) {
            r->AddString(m, f, text);
          } else {
            r->SetString(m, f, text);
          }
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          r->SetBool(m, f, true);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          if (f->is_repeated()) {
            r->AddInt64(m, f, number);
          } else {
            r->SetInt64(m, f, number);
          }
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          if (f->is_repeated()) {
            r->AddInt32(m, f, number);
          } else {
            r->SetInt32(m, f, number);
          }
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          r->SetUInt32(m, f, static_cast<uint32_t>(number));
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          r->SetUInt64(m, f, static_cast<uint64_t>(number));
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const google::protobuf::EnumDescriptor* e = f->enum_type();
          const auto* value = e->value(e->value_count() - 1 - n % 2);
          if (f->is_repeated()) {
            r->AddEnum(m, f, value);
          } else {
            r->SetEnum(m, f, value);
          }
          break;
        }
        default:
          ADD_FAILURE() << "FillEveryField cannot fill " << f->full_name();
          break;
      }
    }
  }
}

}  // namespace testing
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_CLIENT_PROTO_FILLER_H_
