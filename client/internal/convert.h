// Conversions between the client's plain types (client/credbroker/*.h) and
// the generated protobuf messages, in both directions: FromProto for what
// the broker sends, ToProto for what the client sends (and for printing a
// result as the wire's JSON, which credctl --json does). Every field is
// converted; tests/client/convert_test.cc fills every field of each message
// and checks that a round trip gives it back.
//
// Secret fields are copied into SecretBytes by FromProto; ToProto copies
// them into the message, which the caller wipes when it held secrets.
#ifndef CREDBROKER_CLIENT_INTERNAL_CONVERT_H_
#define CREDBROKER_CLIENT_INTERNAL_CONVERT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/credbroker/types.h"
#include "credbroker/v1/types.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"

namespace credbroker {
namespace client {
namespace internal {

// Times and durations: an unset message is InfinitePast / ZeroDuration and
// back.
absl::Time FromProto(const google::protobuf::Timestamp& t);
void ToProto(absl::Time t, google::protobuf::Timestamp* out);
bool HasTime(absl::Time t);
absl::Duration FromProto(const google::protobuf::Duration& d);
void ToProto(absl::Duration d, google::protobuf::Duration* out);

// Enums keep the wire's numbers; a number this client does not know becomes
// kUnspecified.
Readiness FromProto(v1::Readiness r);
v1::Readiness ToProto(Readiness r);
Severity FromProto(v1::Severity s);
v1::Severity ToProto(Severity s);
Scope FromProto(v1::Scope s);
v1::Scope ToProto(Scope s);
RequestState FromProto(v1::RequestState s);
v1::RequestState ToProto(RequestState s);

FieldSpec FromProto(const v1::FieldSpec& m);
void ToProto(const FieldSpec& v, v1::FieldSpec* out);
ProviderInfo FromProto(const v1::ProviderInfo& m);
void ToProto(const ProviderInfo& v, v1::ProviderInfo* out);
Finding FromProto(const v1::Finding& m);
void ToProto(const Finding& v, v1::Finding* out);
MaskedField FromProto(const v1::MaskedField& m);
void ToProto(const MaskedField& v, v1::MaskedField* out);
CredentialSummary FromProto(const v1::CredentialSummary& m);
void ToProto(const CredentialSummary& v, v1::CredentialSummary* out);
CredentialNeeded FromProto(const v1::CredentialNeeded& m);
void ToProto(const CredentialNeeded& v, v1::CredentialNeeded* out);
Grant FromProto(const v1::Grant& m);
void ToProto(const Grant& v, v1::Grant* out);
GrantInfo FromProto(const v1::GrantInfo& m);
void ToProto(const GrantInfo& v, v1::GrantInfo* out);
ApprovalRequest FromProto(const v1::ApprovalRequest& m);
void ToProto(const ApprovalRequest& v, v1::ApprovalRequest* out);
AuditEvent FromProto(const v1::AuditEvent& m);
void ToProto(const AuditEvent& v, v1::AuditEvent* out);
PasskeyChallenge FromProto(const v1::PasskeyChallenge& m);
void ToProto(const PasskeyChallenge& v, v1::PasskeyChallenge* out);
PasskeyAssertion FromProto(const v1::PasskeyAssertion& m);
void ToProto(const PasskeyAssertion& v, v1::PasskeyAssertion* out);

// Repeated fields: each element through the FromProto / ToProto above.
template <typename T, typename P>
std::vector<T> ListFromProto(const google::protobuf::RepeatedPtrField<P>& ms) {
  std::vector<T> out;
  out.reserve(ms.size());
  for (const P& m : ms) out.push_back(FromProto(m));
  return out;
}
template <typename T, typename P>
void ListToProto(const std::vector<T>& vs,
                 google::protobuf::RepeatedPtrField<P>* out) {
  out->Reserve(out->size() + static_cast<int>(vs.size()));
  for (const T& v : vs) ToProto(v, out->Add());
}
std::vector<std::string> StringsFromProto(
    const google::protobuf::RepeatedPtrField<std::string>& ms);
void StringsToProto(const std::vector<std::string>& vs,
                    google::protobuf::RepeatedPtrField<std::string>* out);

// A message of the plain value `v`, for callers that want the message
// itself (credctl --json prints it).
template <typename P, typename T>
P AsProto(const T& v) {
  P out;
  ToProto(v, &out);
  return out;
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CONVERT_H_
