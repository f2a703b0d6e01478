// credbrokerd's passkey flags (--passkey_origins, --passkey_rp_id,
// --require_passkey, --passkey_require_uv) and the Passkeys they configure.
#ifndef CREDBROKER_BROKER_PASSKEY_FLAGS_H_
#define CREDBROKER_BROKER_PASSKEY_FLAGS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "broker/core/approval_pin.h"
#include "broker/core/audit.h"
#include "broker/core/passkeys.h"

namespace credbroker {

// Passkeys configured from the flags and loaded from the store.
// INVALID_ARGUMENT for flags that do not fit together (--require_passkey
// without an origin, an RP ID that is an IP address or a URL).
// Whether `filename` (absl::CommandLineFlag::Filename) is this file, so
// that credbrokerd --help lists these flags with its own.
bool IsPasskeyFlagFile(absl::string_view filename);

absl::StatusOr<std::unique_ptr<Passkeys>> PasskeysFromFlags(
    Store* store, const Sealer* sealer, AuditLog* audit, ApprovalPin* pin);

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_PASSKEY_FLAGS_H_
