// Conversions between the plain types of client/credbroker/access_types.h
// and the generated messages of credential_service.proto and
// lock_service.proto, with the conventions of convert.h: FromProto for what
// the broker sends, ToProto for what the client sends (and for credctl's
// --json output). tests/client/convert_access_test.cc checks every field.
//
// ToProto of a request holding a PIN or a passphrase copies the secret
// into the message: the caller wipes the message's strings after the call
// (WipeSecrets below).
#ifndef CREDBROKER_CLIENT_INTERNAL_CONVERT_ACCESS_H_
#define CREDBROKER_CLIENT_INTERNAL_CONVERT_ACCESS_H_

#include <vector>

#include "client/credbroker/access_types.h"
#include "credbroker/v1/credential_service.pb.h"
#include "credbroker/v1/lock_service.pb.h"

namespace credbroker {
namespace client {
namespace internal {

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

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CONVERT_ACCESS_H_
