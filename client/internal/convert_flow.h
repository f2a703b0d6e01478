// Conversions between the plain types of the credential-needed flow
// (client/credbroker/agent.h, approval.h) and the generated messages of
// credential_broker.proto and approval_service.proto, both ways, like
// convert.h (whose helpers they use). tests/client/convert_flow_test.cc
// checks every field.
//
// Secret fields (grant values, an approval's values and PIN) are copied
// into SecretBytes by FromProto; ToProto copies them into the message,
// which the caller wipes with WipeSecrets after use.
//
// internal::AsProto (convert.h) cannot see these overloads, declared after
// its template: convert into a local message instead.
#ifndef CREDBROKER_CLIENT_INTERNAL_CONVERT_FLOW_H_
#define CREDBROKER_CLIENT_INTERNAL_CONVERT_FLOW_H_

#include "client/credbroker/agent.h"
#include "client/credbroker/approval.h"
#include "client/internal/convert.h"
#include "credbroker/v1/approval_service.pb.h"
#include "credbroker/v1/credential_broker.pb.h"

namespace credbroker {
namespace client {
namespace internal {

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

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CONVERT_FLOW_H_
