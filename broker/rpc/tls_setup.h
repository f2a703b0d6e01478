// TLS for the daemon's TCP listeners: which certificate files they serve
// (the user's pair, or the data directory's self-signed one, created or
// replaced at start), the client CA for mutual TLS, and TlsRenewer, which
// renews the self-signed certificate while the daemon runs. The server
// re-reads the files (ServerOptions::tls_refresh_interval), so a renewed
// certificate is served without a restart.
#ifndef CREDBROKER_BROKER_RPC_TLS_SETUP_H_
#define CREDBROKER_BROKER_RPC_TLS_SETUP_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "broker/rpc/server.h"

namespace credbroker {

struct TlsSettings {
  std::string cert_file;       // --tls_cert: the user's pair, with key_file.
  std::string key_file;        // --tls_key
  std::string client_ca_file;  // --tls_client_ca
  // How often the files are checked: renewal of the self-signed
  // certificate, and gRPC re-reading whichever pair is served.
  absl::Duration refresh_interval = absl::Hours(1);
  // The self-signed certificate is renewed when it has less than this left.
  absl::Duration renew_before = absl::Hours(24 * 30);
};

// Renews the self-signed certificate at cert_file (a new certificate for
// the key at key_file, LoadOrCreateSelfSigned) when it is due, checking
// every `interval` on its own thread until destroyed; says so on stderr.
// Thread-safe; the destructor stops and joins the thread.
class TlsRenewer {
 public:
  using Clock = std::function<absl::Time()>;
  TlsRenewer(std::string cert_file, std::string key_file,
             const TlsSettings& settings, Clock clock);
  ~TlsRenewer();
  TlsRenewer(const TlsRenewer&) = delete;
  TlsRenewer& operator=(const TlsRenewer&) = delete;

 private:
  void Run();

  const std::string cert_file_;
  const std::string key_file_;
  const absl::Duration interval_;
  const absl::Duration renew_before_;
  const Clock clock_;
  absl::Notification stop_;
  std::thread thread_;
};

// Sets the TLS files of `options` for its TCP listeners (none, or
// --insecure_plaintext_tcp: nothing to do) and puts the lines to print at
// start in `note`. Returns the renewer of the data directory's self-signed
// certificate; null for a user-named pair or when there is no TLS.
// INVALID_ARGUMENT for flags that do not go together; FAILED_PRECONDITION
// or NOT_FOUND (naming the file) for files that cannot be used.
absl::StatusOr<std::unique_ptr<TlsRenewer>> ConfigureTls(
    const std::string& data_dir, const TlsSettings& settings,
    ServerOptions& options, std::string& note);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_RPC_TLS_SETUP_H_
