// Conversions between core types and credbroker.v1 messages. Pure functions.
#ifndef CREDBROKER_BROKER_RPC_CONVERT_H_
#define CREDBROKER_BROKER_RPC_CONVERT_H_

#include <string>

#include "absl/time/time.h"
#include "broker/core/credentials.h"
#include "broker/core/requests.h"
#include "broker/providers/provider.h"
#include "common/secret.h"
#include "credbroker/v1/credential_broker.pb.h"
#include "credbroker/v1/types.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"

namespace credbroker {

void ToProto(absl::Time t, google::protobuf::Timestamp* out);
void ToProto(absl::Duration d, google::protobuf::Duration* out);
absl::Time FromProto(const google::protobuf::Timestamp& t);
absl::Duration FromProto(const google::protobuf::Duration& d);

v1::Readiness ToProto(Readiness r);
v1::Severity ToProto(Severity s);
void ToProto(const FieldSpec& in, v1::FieldSpec* out);
void ToProto(const ProviderSpec& in, v1::ProviderInfo* out);
void ToProto(const Finding& in, v1::Finding* out);
void ToProto(const MaskedField& in, v1::MaskedField* out);
void ToProto(const CredentialSummary& in, v1::CredentialSummary* out);

Need FromProto(const v1::CredentialNeeded& in);
void ToProto(const Need& in, v1::CredentialNeeded* out);
void ToProto(const RequestView& in, v1::ApprovalRequest* out);
void ToProto(const GrantRecord& in, absl::Time now, v1::GrantInfo* out);
// The update an agent receives; a grant's values are copied into the message.
void ToProto(const NeedUpdate& in, v1::NeedUpdate* out);
Scope FromProto(v1::Scope scope);

// Moves values out of a request map into wiped memory, wiping the request's
// copies.
FieldValues TakeValues(google::protobuf::Map<std::string, std::string>* values);
SecretBytes TakeString(std::string* value);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_CONVERT_H_
