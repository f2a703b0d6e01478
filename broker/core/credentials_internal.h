// Helpers shared by the files that define CredentialManager
// (credentials*.cc). Not part of the core library's API.
#ifndef CREDBROKER_BROKER_CORE_CREDENTIALS_INTERNAL_H_
#define CREDBROKER_BROKER_CORE_CREDENTIALS_INTERNAL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "broker/core/credentials.h"

namespace credbroker {
namespace credentials_internal {

inline constexpr char kDefaultProfile[] = "default";

// Findings about the credential's own expiry (a field marked `expiry`) at
// `now`. `stored`: about a stored credential (EXPIRED readiness, a warning)
// rather than one being entered (refused, an error).
void CheckExpiryAt(const ProviderSpec& spec, std::optional<absl::Time> expiry,
                   absl::Time now, bool stored, std::vector<Finding>& findings);

Readiness ReadinessOf(const std::vector<std::string>& missing,
                      const std::vector<Finding>& findings, bool rotation_due);

}  // namespace credentials_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_CORE_CREDENTIALS_INTERNAL_H_
