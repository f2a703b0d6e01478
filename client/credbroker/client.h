// credbroker's C++ client library: typed calls to a running credbrokerd over
// its Unix socket or loopback TCP, with the bearer token attached and a
// deadline on every call. No gRPC type appears here; errors are
// absl::Status with the broker's code and message, and field violations
// readable with credbroker::GetFieldViolations (common/errors.h).
//
// A client is safe to use from several threads at once.
#ifndef CREDBROKER_CLIENT_CREDBROKER_CLIENT_H_
#define CREDBROKER_CLIENT_CREDBROKER_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/credbroker/access_types.h"
#include "client/credbroker/credential_types.h"
#include "common/secret.h"

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

  // The provider catalog.
  absl::StatusOr<std::vector<ProviderInfo>> ListProviders();
  // One page of the stored credentials, masked, ordered by provider and
  // profile. INVALID_ARGUMENT for a bad page_size or page_token.
  absl::StatusOr<CredentialPage> ListCredentials(
      const ListCredentialsOptions& options = {});
  // One provider/profile (empty profile: the provider's default), masked;
  // version 0 is the current one. NOT_FOUND when nothing is stored.
  absl::StatusOr<CredentialSummary> GetCredential(const std::string& provider,
                                                  const std::string& profile,
                                                  int64_t version = 0);
  // Normalizes, validates and stores a new version. INVALID_ARGUMENT with
  // field violations on bad values (nothing is stored). The values are
  // wiped from the message once sent.
  absl::StatusOr<StoredCredential> PutCredential(const CredentialInput& input);
  // Removes every version; the number removed. NOT_FOUND when nothing is
  // stored.
  absl::StatusOr<int64_t> DeleteCredential(const std::string& provider,
                                           const std::string& profile);
  // Diagnoses candidate values (or the stored ones) without storing
  // anything: problems are findings, not errors. NOT_FOUND when asked about
  // the stored credential and none is.
  absl::StatusOr<Diagnosis> ValidateCredential(
      const CredentialCandidate& candidate);
  // The credentials `targets` need, one per provider in target order; an
  // empty profile means each provider's default (or the one bound to
  // `resource`). INVALID_ARGUMENT naming each target that names no
  // provider.
  absl::StatusOr<std::vector<Requirement>> ResolveRequirements(
      const std::vector<std::string>& targets, const std::string& profile = "",
      const std::string& resource = "");
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
  // stores a new version with an earlier version's values. NOT_FOUND when
  // nothing is stored.
  absl::StatusOr<CredentialHistory> ListCredentialVersions(
      const std::string& provider, const std::string& profile);
  // NOT_FOUND for an unknown version; FAILED_PRECONDITION when it is the
  // current one.
  absl::StatusOr<RolledBackCredential> RollbackCredential(
      const std::string& provider, const std::string& profile, int64_t version);
  // The profile used for `provider` when a call leaves it empty (empty:
  // back to "default"); it need not be stored yet.
  absl::StatusOr<DefaultProfileChange> SetDefaultProfile(
      const std::string& provider, const std::string& profile);
  // Resource bindings of `provider` (empty: every provider), ordered by
  // provider and resource.
  absl::StatusOr<std::vector<ResourceBinding>> ListBindings(
      const std::string& provider = "");
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
