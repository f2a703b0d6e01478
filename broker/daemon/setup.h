// The daemon's configuration steps that touch the disk or the process
// table: the spill and the self-approval check (TLS: broker/rpc/tls_setup.h).
#ifndef CREDBROKER_BROKER_DAEMON_SETUP_H_
#define CREDBROKER_BROKER_DAEMON_SETUP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/core/requests.h"
#include "broker/rpc/server.h"
#include "broker/store/spilling_store.h"

namespace credbroker {

// The spill (OpenBrokerOptions::spill) in `spill_dir`: default
// <data_dir>-spill, "none" for no spill. FAILED_PRECONDITION when there is to
// be none but one with rows is left: the approvals recorded there must reach
// the store before the broker answers from it, or decided requests would
// open again.
absl::StatusOr<SpillOptions> ConfigureSpill(const std::string& data_dir,
                                            std::string spill_dir);

// Self-approval: is `pid` the agent's process, or does it run under it?
bool IsSameOrDescendant(int64_t pid, const Caller& agent);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_DAEMON_SETUP_H_
