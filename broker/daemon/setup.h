// The daemon's configuration steps that touch the disk or the process
// table: the spill, TLS for TCP listeners, the self-approval check.
#ifndef CREDBROKER_BROKER_DAEMON_SETUP_H_
#define CREDBROKER_BROKER_DAEMON_SETUP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/core/requests.h"
#include "broker/rpc/server.h"

namespace credbroker {

// The spill (RequestOptions::spill) in `spill_dir`: default
// <data_dir>-spill, "none" for no spill. FAILED_PRECONDITION when there is to
// be none but one with rows is left: the approvals recorded there must reach
// the store before the broker answers from it, or decided requests would
// open again.
absl::StatusOr<SpillOptions> ConfigureSpill(const std::string& data_dir,
                                            std::string spill_dir);

// --tls_cert, --tls_key, --tls_client_ca.
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string client_ca;
};

// TLS for the TCP listeners in `options.listen`: the user's pair, or the
// data directory's self-signed one (created or renewed here); the client CA
// for mutual TLS. `note` gets the lines to print at start. INVALID_ARGUMENT
// for flags that do not go together.
absl::Status ConfigureTls(const std::string& data_dir, const TlsFiles& files,
                          ServerOptions& options, std::string& note);

// Self-approval: is `pid` the agent's process, or does it run under it?
bool IsSameOrDescendant(int64_t pid, const Caller& agent);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_SETUP_H_
