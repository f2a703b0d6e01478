// credbroker's C++ client library: typed calls to a running credbrokerd over
// its Unix socket or loopback TCP, with the bearer token attached and a
// deadline on every call. No gRPC type appears here; errors are
// absl::Status with the broker's code and message, and field violations
// readable with credbroker::GetFieldViolations (common/errors.h).
//
// A client is safe to use from several threads at once.
#ifndef CREDBROKER_CLIENT_CREDBROKER_CLIENT_H_
#define CREDBROKER_CLIENT_CREDBROKER_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/credbroker/access_types.h"
#include "common/secret.h"
#include "credbroker/v1/credential_service.pb.h"

namespace credbroker {
namespace client {

struct Options {
  // "unix:/path/broker.sock" or "127.0.0.1:PORT". Empty: DefaultAddress().
  std::string address;
  // The bearer token itself (not the file).
  std::string token;
  // Deadline of each call.
  absl::Duration timeout = absl::Seconds(30);
  // TLS, for a TCP address (a unix: address ignores these). A TCP address
  // uses TLS unless insecure_plaintext is set.
  // PEM file of the certificate(s) to trust for the broker. Empty: the
  // default data directory's tls.crt (the broker's self-signed one) when it
  // exists, else the system's roots.
  std::string tls_ca_file;
  // Client certificate and its key (PEM files), for a broker started with
  // --tls_client_ca.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Plaintext TCP, for a broker started with --insecure_plaintext_tcp.
  bool insecure_plaintext = false;
};

// unix:<data dir>/broker.sock for the default data directory.
std::string DefaultAddress();
// <data dir>/<role>.token for the default data directory.
std::string DefaultTokenFile(const std::string& role);
// Reads a token file (trailing whitespace removed). NOT_FOUND with a hint to
// start the broker when absent.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

class CredentialClient {
 public:
  // Creates the channel; nothing is sent until the first call.
  static absl::StatusOr<std::unique_ptr<CredentialClient>> Connect(
      const Options& options);
  ~CredentialClient();

  absl::StatusOr<v1::ListProvidersResponse> ListProviders();
  absl::StatusOr<v1::ListCredentialsResponse> ListCredentials(
      const v1::ListCredentialsRequest& request);
  absl::StatusOr<v1::CredentialSummary> GetCredential(
      const v1::GetCredentialRequest& request);
  absl::StatusOr<v1::PutCredentialResponse> PutCredential(
      const v1::PutCredentialRequest& request);
  absl::StatusOr<v1::DeleteCredentialResponse> DeleteCredential(
      const v1::DeleteCredentialRequest& request);
  absl::StatusOr<v1::ValidateCredentialResponse> ValidateCredential(
      const v1::ValidateCredentialRequest& request);
  absl::StatusOr<v1::ResolveRequirementsResponse> ResolveRequirements(
      const v1::ResolveRequirementsRequest& request);
  // One page of grants, oldest first. INVALID_ARGUMENT for a bad page_size
  // or page_token.
  absl::StatusOr<GrantPage> ListGrants(const GrantQuery& query);
  // Ends a grant now; its agent is told to stop using it. NOT_FOUND for an
  // unknown grant, FAILED_PRECONDITION when it has already ended.
  absl::Status RevokeGrant(const std::string& grant_id,
                           const std::string& reason);
  // One page of audit events, oldest first. INVALID_ARGUMENT for a bad
  // page_size or page_token, or `until` before `since`.
  absl::StatusOr<AuditPage> ListAuditEvents(const AuditQuery& query);
  // Standing approvals, oldest first: the active ones, or all.
  absl::StatusOr<std::vector<StandingApproval>> ListStandingApprovals(
      bool include_ended);
  // NOT_FOUND for an unknown id, FAILED_PRECONDITION when already revoked.
  absl::Status RevokeStandingApproval(const std::string& id);
  // History (times and fingerprints, never values) and rollback, which
  // stores a new version with an earlier version's values.
  absl::StatusOr<v1::ListCredentialVersionsResponse> ListCredentialVersions(
      const v1::ListCredentialVersionsRequest& request);
  absl::StatusOr<v1::RollbackCredentialResponse> RollbackCredential(
      const v1::RollbackCredentialRequest& request);
  absl::StatusOr<v1::SetDefaultProfileResponse> SetDefaultProfile(
      const v1::SetDefaultProfileRequest& request);
  absl::StatusOr<v1::ListBindingsResponse> ListBindings(
      const v1::ListBindingsRequest& request);
  // The approval PIN: set, change, clear (empty new_pin); its status.
  // SetApprovalPin returns whether a PIN is set now. Here and below, the
  // copies of the PINs made for a call are wiped after it.
  absl::StatusOr<bool> SetApprovalPin(const PinChange& change);
  absl::StatusOr<ApprovalPinStatus> GetApprovalPinStatus();
  // Walks the audit log's hash chain; a break is in the answer.
  absl::StatusOr<AuditLogCheck> VerifyAuditLog();
  // Passkeys: registration (the ceremony itself runs in a browser), list,
  // removal.
  absl::StatusOr<PasskeyChallenge> BeginPasskeyRegistration();
  absl::StatusOr<Passkey> FinishPasskeyRegistration(
      const PasskeyRegistration& registration);
  absl::StatusOr<PasskeyList> ListPasskeys();
  absl::Status RemovePasskey(const PasskeyRemoval& removal);
  // Unlocks a locked broker with the store's passphrase. True when it was
  // locked.
  absl::StatusOr<bool> Unlock(const SecretBytes& passphrase);
  // Locked or not, and what protects the store's key.
  absl::StatusOr<LockState> GetLockState();
  // Locks now. True when it was unlocked.
  absl::StatusOr<bool> Lock();
  // Changes what protects the store's key. The copies of `change`'s secrets
  // (the passphrases, the PIN) made for the call are wiped after it.
  absl::StatusOr<RekeyResult> Rekey(const KeyChange& change);

 private:
  struct Impl;
  explicit CredentialClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace client
}  // namespace credbroker

#endif  // CREDBROKER_CLIENT_CREDBROKER_CLIENT_H_
