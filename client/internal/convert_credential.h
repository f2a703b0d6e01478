// Conversions between CredentialClient's plain types about stored
// credentials (client/credbroker/credential_types.h) and the messages of
// credential_service.proto, as convert.h does for types.proto: FromProto
// for what the broker answers, ToProto for what the client sends (and for
// printing an answer as the wire's JSON). A response that is only a list
// converts to and from a std::vector.
//
// The requests carrying values (PutCredentialRequest,
// ValidateCredentialRequest) get them in clear: the caller wipes them with
// WipeSecrets once the call is done.
#ifndef CREDBROKER_CLIENT_INTERNAL_CONVERT_CREDENTIAL_H_
#define CREDBROKER_CLIENT_INTERNAL_CONVERT_CREDENTIAL_H_

#include <vector>

#include "client/credbroker/credential_types.h"
#include "client/credbroker/types.h"
#include "client/internal/convert.h"
#include "credbroker/v1/credential_service.pb.h"

namespace credbroker {
namespace client {
namespace internal {

BindingState FromProto(v1::ResourceBinding::State s);
v1::ResourceBinding::State ToProto(BindingState s);

// Requests, sent only.
void ToProto(const ListCredentialsOptions& v, v1::ListCredentialsRequest* out);
void ToProto(const CredentialInput& v, v1::PutCredentialRequest* out);
void ToProto(const CredentialCandidate& v, v1::ValidateCredentialRequest* out);
// Wipes the values (and the file's contents) a request carried.
void WipeSecrets(v1::PutCredentialRequest* request);
void WipeSecrets(v1::ValidateCredentialRequest* request);

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

// AsProto (convert.h) for this file's types, which that template, declared
// before them, does not see.
template <typename P, typename T>
P CredentialAsProto(const T& v) {
  P out;
  ToProto(v, &out);
  return out;
}

}  // namespace internal
}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_INTERNAL_CONVERT_CREDENTIAL_H_
