#include "broker/rpc/tls_setup.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/crypto/tls_cert.h"

namespace credbroker {
namespace {

std::string Day(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

// What a new or replaced pair says on stderr; nothing for one reused as is.
void Report(const TlsIdentity& id, const std::string& cert_file) {
  if (!id.replaced.empty()) {
    std::cerr << "credbrokerd: the TLS key and certificate " << cert_file
              << " were replaced by a new pair: " << id.replaced << "\n";
  }
  if (id.renewed) {
    std::cerr << "credbrokerd: renewed the TLS certificate " << cert_file
              << " (same key): SHA-256 fingerprint " << id.fingerprint
              << ", valid until " << Day(id.not_after) << "\n";
  }
}

}  // namespace

TlsRenewer::TlsRenewer(std::string cert_file, std::string key_file,
                       const TlsSettings& settings, Clock clock)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      interval_(std::max(settings.refresh_interval, absl::Milliseconds(10))),
      renew_before_(settings.renew_before),
      clock_(std::move(clock)),
      thread_([this] { Run(); }) {}

TlsRenewer::~TlsRenewer() {
  stop_.Notify();
  thread_.join();
}

void TlsRenewer::Run() {
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    absl::StatusOr<TlsIdentity> id =
        LoadOrCreateSelfSigned(cert_file_, key_file_, clock_(), renew_before_);
    if (!id.ok()) {
      std::cerr << "credbrokerd: WARNING: cannot renew the TLS certificate "
                << cert_file_ << ": " << id.status().message() << "\n";
      continue;
    }
    Report(*id, cert_file_);
  }
}

absl::StatusOr<std::unique_ptr<TlsRenewer>> ConfigureTls(
    const std::string& data_dir, const TlsSettings& settings,
    ServerOptions& options, std::string& note) {
  bool has_tcp = false;
  for (const std::string& spec : options.listen) {
    if (!absl::StartsWith(spec, "unix:")) has_tcp = true;
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (options.insecure_plaintext_tcp && !settings.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca needs TLS: it cannot be combined with "
        "--insecure_plaintext_tcp");
  }
  if (!has_tcp || options.insecure_plaintext_tcp) return nullptr;
  const bool generated = settings.cert_file.empty();
  const std::string cert_file =
      generated ? data_dir + "/tls.crt" : settings.cert_file;
  const std::string key_file =
      generated ? data_dir + "/tls.key" : settings.key_file;
  absl::StatusOr<TlsIdentity> id =
      generated ? LoadOrCreateSelfSigned(cert_file, key_file, absl::Now(),
                                         settings.renew_before)
                : LoadTlsIdentity(cert_file, key_file);
  if (!id.ok()) return id.status();
  Report(*id, cert_file);
  note = absl::StrCat("  TLS certificate: ", cert_file,
                      id->generated && !id->renewed ? " (generated now)" : "",
                      id->renewed ? " (renewed now)" : "", "\n",
                      "  TLS SHA-256 fingerprint: ", id->fingerprint, "\n",
                      "  TLS valid until: ", Day(id->not_after), "\n");
  if (!settings.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca =
        LoadCertificateBundle(settings.client_ca_file);
    if (!ca.ok()) return ca.status();
    absl::StrAppend(&note,
                    "  TLS client certificates required, from the CAs in ",
                    settings.client_ca_file, "\n");
  }
  options.tls_cert_file = cert_file;
  options.tls_key_file = key_file;
  options.tls_client_ca_file = settings.client_ca_file;
  options.tls_refresh_interval = settings.refresh_interval;
  if (!generated) return nullptr;
  return std::make_unique<TlsRenewer>(cert_file, key_file, settings,
                                      [] { return absl::Now(); });
}

}  // namespace credbroker
