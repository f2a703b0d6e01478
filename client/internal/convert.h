// Conversions between the client's plain types (client/credbroker/*.h) and
// the generated protobuf messages, in both directions: FromProto for what
// the broker sends, ToProto for what the client sends (and for printing a
// result as the wire's JSON, which credctl --json does). Every field is
// converted; tests/client/convert*_test.cc fill every field of each message
// and check that a round trip gives it back. One header declares them all,
// so that the templates at its end see every overload; the definitions are
// in convert.cc (types.proto), convert_credential.cc, convert_access.cc and
// convert_flow.cc.
//
// Secret fields are copied into SecretBytes by FromProto; ToProto copies
// them into the message, which the caller wipes with WipeSecrets after the
// call.
#ifndef CREDBROKER_CLIENT_INTERNAL_CONVERT_H_
#define CREDBROKER_CLIENT_INTERNAL_CONVERT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/credbroker/access_types.h"
#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/credbroker/credential_types.h"
#include "client/credbroker/types.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_broker.pb.h"
#include "credbroker/v1/credential_service.pb.h"
#include "credbroker/v1/lock_service.pb.h"
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

// --- credential_service.proto: stored credentials (credential_types.h).
BindingState FromProto(v1::ResourceBinding::State s);
v1::ResourceBinding::State ToProto(BindingState s);

// Requests, sent only.
void ToProto(const ListCredentialsOptions& v, v1::ListCredentialsRequest* out);
void ToProto(const CredentialInput& v, v1::PutCredentialRequest* out);
void ToProto(const CredentialCandidate& v, v1::ValidateCredentialRequest* out);
// Wipes the values (and the file's contents) a request carried.
void WipeSecrets(v1::PutCredentialRequest& m);
void WipeSecrets(v1::ValidateCredentialRequest& m);

// Answers.
std::vector<ProviderInfo> FromProto(const v1::ListProvidersResponse& m);
void ToProto(const std::vector<ProviderInfo>& v,
             v1::ListProvidersResponse* out);
CredentialPage FromProto(const v1::ListCredentialsResponse& m);
void ToProto(const CredentialPage& v, v1::ListCredentialsResponse* out);
StoredCredential FromProto(const v1::PutCredentialResponse& m);
void ToProto(const StoredCredential& v, v1::PutCredentialResponse* out);
Diagnosis FromProto(const v1::ValidateCredentialResponse& m);
void ToProto(const Diagnosis& v, v1::ValidateCredentialResponse* out);
Requirement FromProto(const v1::Requirement& m);
void ToProto(const Requirement& v, v1::Requirement* out);
std::vector<Requirement> FromProto(const v1::ResolveRequirementsResponse& m);
void ToProto(const std::vector<Requirement>& v,
             v1::ResolveRequirementsResponse* out);
CredentialVersion FromProto(const v1::CredentialVersion& m);
void ToProto(const CredentialVersion& v, v1::CredentialVersion* out);
CredentialHistory FromProto(const v1::ListCredentialVersionsResponse& m);
void ToProto(const CredentialHistory& v,
             v1::ListCredentialVersionsResponse* out);
RolledBackCredential FromProto(const v1::RollbackCredentialResponse& m);
void ToProto(const RolledBackCredential& v,
             v1::RollbackCredentialResponse* out);
DefaultProfileChange FromProto(const v1::SetDefaultProfileResponse& m);
void ToProto(const DefaultProfileChange& v, v1::SetDefaultProfileResponse* out);
ResourceBinding FromProto(const v1::ResourceBinding& m);
void ToProto(const ResourceBinding& v, v1::ResourceBinding* out);
std::vector<ResourceBinding> FromProto(const v1::ListBindingsResponse& m);
void ToProto(const std::vector<ResourceBinding>& v,
             v1::ListBindingsResponse* out);

// --- credential_service.proto and lock_service.proto: grants, audit,
// PIN, passkeys, lock (access_types.h).
KeySource FromProto(v1::KeySource s);
v1::KeySource ToProto(KeySource s);

// Requests, only ever sent.
void ToProto(const GrantQuery& v, v1::ListGrantsRequest* out);
void ToProto(const AuditQuery& v, v1::ListAuditEventsRequest* out);
void ToProto(const PinChange& v, v1::SetApprovalPinRequest* out);
void ToProto(const PasskeyRegistration& v,
             v1::FinishPasskeyRegistrationRequest* out);
void ToProto(const PasskeyRemoval& v, v1::RemovePasskeyRequest* out);
void ToProto(const KeyChange& v, v1::RekeyRequest* out);

// Wipes the secret strings of a request message built by ToProto.
void WipeSecrets(v1::SetApprovalPinRequest& m);
void WipeSecrets(v1::FinishPasskeyRegistrationRequest& m);
void WipeSecrets(v1::RemovePasskeyRequest& m);
void WipeSecrets(v1::RekeyRequest& m);

// Answers.
GrantPage FromProto(const v1::ListGrantsResponse& m);
void ToProto(const GrantPage& v, v1::ListGrantsResponse* out);
AuditPage FromProto(const v1::ListAuditEventsResponse& m);
void ToProto(const AuditPage& v, v1::ListAuditEventsResponse* out);
AuditLogCheck FromProto(const v1::VerifyAuditLogResponse& m);
void ToProto(const AuditLogCheck& v, v1::VerifyAuditLogResponse* out);
StandingApproval FromProto(const v1::StandingApproval& m);
void ToProto(const StandingApproval& v, v1::StandingApproval* out);
std::vector<StandingApproval> FromProto(
    const v1::ListStandingApprovalsResponse& m);
void ToProto(const std::vector<StandingApproval>& v,
             v1::ListStandingApprovalsResponse* out);
ApprovalPinStatus FromProto(const v1::ApprovalPinStatus& m);
void ToProto(const ApprovalPinStatus& v, v1::ApprovalPinStatus* out);
Passkey FromProto(const v1::Passkey& m);
void ToProto(const Passkey& v, v1::Passkey* out);
PasskeyList FromProto(const v1::ListPasskeysResponse& m);
void ToProto(const PasskeyList& v, v1::ListPasskeysResponse* out);
LockState FromProto(const v1::LockState& m);
void ToProto(const LockState& v, v1::LockState* out);
RekeyResult FromProto(const v1::RekeyResponse& m);
void ToProto(const RekeyResult& v, v1::RekeyResponse* out);

// --- credential_broker.proto and approval_service.proto: the flow
// (agent.h, approval.h).
ApprovalEvent::Kind FromProto(v1::ApprovalEvent::Kind k);
v1::ApprovalEvent::Kind ToProto(ApprovalEvent::Kind k);

NeedUpdate FromProto(const v1::NeedUpdate& m);
void ToProto(const NeedUpdate& v, v1::NeedUpdate* out);
ApprovalEvent FromProto(const v1::ApprovalEvent& m);
void ToProto(const ApprovalEvent& v, v1::ApprovalEvent* out);
FormField FromProto(const v1::FormField& m);
void ToProto(const FormField& v, v1::FormField* out);
CredentialForm FromProto(const v1::CredentialForm& m);
void ToProto(const CredentialForm& v, v1::CredentialForm* out);
Approval FromProto(const v1::ApproveRequest& m);
void ToProto(const Approval& v, v1::ApproveRequest* out);
ApprovalResult FromProto(const v1::ApproveResponse& m);
void ToProto(const ApprovalResult& v, v1::ApproveResponse* out);
FormQuery FromProto(const v1::GetCredentialFormRequest& m);
void ToProto(const FormQuery& v, v1::GetCredentialFormRequest* out);

// Wipes the secret strings of a message that held them.
void WipeSecrets(v1::NeedUpdate& m);
void WipeSecrets(v1::Grant& m);
void WipeSecrets(v1::ApproveRequest& m);

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
