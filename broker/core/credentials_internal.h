// Helpers shared by the files that define CredentialManager
// (credentials*.cc). Not part of the core library's API.
#ifndef CREDBROKER_BROKER_CORE_CREDENTIALS_INTERNAL_H_
#define CREDBROKER_BROKER_CORE_CREDENTIALS_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/core/credentials.h"

namespace credbroker {
namespace credentials_internal {

inline constexpr char kDefaultProfile[] = "default";

// The facts cache's key prefix of provider/profile (NUL-separated: no
// profile is a prefix of another's key).
inline std::string FactsPrefix(absl::string_view provider,
                               absl::string_view profile) {
  return absl::StrCat(provider, absl::string_view("\0", 1), profile,
                      absl::string_view("\0", 1));
}

// FactsPrefix(provider, profile) followed by `version`, built at once.
inline std::string FactsKey(absl::string_view provider,
                            absl::string_view profile, int64_t version) {
  const absl::string_view nul("\0", 1);
  return absl::StrCat(provider, nul, profile, nul, version);
}

// Makes room in a full cache (kMaxCachedFacts entries) by dropping an
// eighth of it, the first in the hash map's order: entries in no particular
// order, and a call that fills the cache pays for 512 destructions, not for
// 4,096 as when the whole cache was emptied.
template <typename Cache>
void MakeRoom(Cache& cache, size_t limit) {
  if (cache.size() < limit) return;
  size_t drop = std::max<size_t>(1, limit / 8);
  for (auto it = cache.begin(); drop > 0 && it != cache.end(); --drop) {
    cache.erase(it++);
  }
}

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
