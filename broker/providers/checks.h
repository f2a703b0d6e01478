// Internal to broker/providers: the shared provider base class, the
// built-in provider factories, and the small format checks every provider
// file uses. Not part of the providers API; include only from
// broker/providers/*.cc and their tests.
#ifndef CREDBROKER_BROKER_PROVIDERS_CHECKS_H_
#define CREDBROKER_BROKER_PROVIDERS_CHECKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/providers/provider.h"

namespace credbroker {
namespace providers_internal {

// The built-in catalog, one factory per provider file, in catalog order.
std::unique_ptr<Provider> NewAwsProvider();
std::unique_ptr<Provider> NewGcpProvider();
std::unique_ptr<Provider> NewAzureProvider();
std::unique_ptr<Provider> NewDigitalOceanProvider();
std::unique_ptr<Provider> NewMongoDbAtlasProvider();
std::unique_ptr<Provider> NewRedisCloudProvider();
std::unique_ptr<Provider> NewNetlifyProvider();
std::unique_ptr<Provider> NewAuth0Provider();
std::unique_ptr<Provider> NewVercelProvider();
std::unique_ptr<Provider> NewGithubProvider();
std::unique_ptr<Provider> NewSlackProvider();
std::unique_ptr<Provider> NewCustomProvider();

// The common part of every provider: holds the spec (with the guide's
// general troubleshooting and best practices after the provider's own items);
// Normalize refuses
// unknown field names and trims pasted whitespace; Validate reports missing
// required fields. Subclasses add file handling and per-field checks.
// Immutable, thread-safe.
class BasicProvider : public Provider {
 public:
  explicit BasicProvider(ProviderSpec spec);

  const ProviderSpec& spec() const override { return spec_; }
  absl::StatusOr<NormalizeResult> Normalize(
      FieldValues values, absl::string_view file_contents) const override;
  std::vector<Finding> Validate(const FieldValues& values) const override;

 protected:
  // Whether `name` may be a key of this provider's values. Default: the name
  // of a field in the spec.
  virtual bool AcceptsFieldName(absl::string_view name) const;
  // The description of an unknown-name violation for `name`.
  virtual std::string UnknownFieldDescription(absl::string_view name) const;
  // Runs after names are checked and values trimmed: derives fields, reads
  // `file_contents`. Default: a non-empty file is INVALID_ARGUMENT, as this
  // provider takes no file.
  virtual absl::Status NormalizeMore(absl::string_view file_contents,
                                     NormalizeResult& result) const;
  // Format checks of the fields present in `values` (missing required fields
  // are reported by Validate itself).
  virtual void CheckFields(const FieldValues& values,
                           std::vector<Finding>& findings) const = 0;

  // The label of field `name` ("AWS Access Key ID"), or `name` itself.
  std::string LabelOf(absl::string_view name) const;
  // The where_to_find text of field `name`, or the first how-to-get step.
  std::string WhereToFind(absl::string_view name) const;

 private:
  ProviderSpec spec_;
};

// The optional "expires_at" field (FieldSpec::expiry) of a provider whose
// console shows the credential's expiry date when it is created.
FieldSpec ExpiryField(std::string label, std::string where_to_find);

// The guide's general "credentials are invalid" checks, which BasicProvider
// appends to every provider's troubleshooting after its own items.
std::vector<std::string> GeneralTroubleshooting();
// The guide's "rotate regularly" advice, which BasicProvider appends to
// every provider's best practices.
std::vector<std::string> GeneralBestPractices();

// Finding builders.
Finding ErrorFinding(absl::string_view field, absl::string_view code,
                     std::string message, std::string fix);
Finding WarningFinding(absl::string_view field, absl::string_view code,
                       std::string message, std::string fix);
Finding InfoFinding(absl::string_view field, absl::string_view code,
                    std::string message, std::string fix = "");

// Character classes (ASCII).
bool IsHexString(absl::string_view s);  // non-empty, [0-9a-fA-F]
bool IsLowerHexString(absl::string_view s);
bool IsAlnumString(absl::string_view s);  // non-empty, [A-Za-z0-9]
// A GUID in 8-4-4-4-12 hex form, e.g. "00000000-0000-0000-0000-000000000000".
bool IsGuid(absl::string_view s);
// Any ASCII whitespace or control character.
bool HasWhitespaceOrControl(absl::string_view s);
// Unicode characters in UTF-8 `s` (continuation bytes not counted).
size_t CharCount(absl::string_view s);

// `s` without the whitespace a paste adds around a value: ASCII whitespace,
// no-break space (U+00A0), zero-width space (U+200B) and byte-order mark
// (U+FEFF).
absl::string_view TrimPasted(absl::string_view s);

// The value of `name` in `values` when present and non-empty, else "".
absl::string_view ValueOf(const FieldValues& values, absl::string_view name);
bool Has(const FieldValues& values, absl::string_view name);

// How a provider names its regions, for CheckRegion. The texts say what is
// wrong and how to fix it, in the provider's own terms.
struct RegionNaming {
  // The region a zone belongs to ("us-east-1a" -> "us-east-1"), or "" when
  // `value` is not a zone; nullptr for a provider without zones.
  absl::string_view (*region_of_zone)(absl::string_view value) = nullptr;
  bool (*well_formed)(absl::string_view region) = nullptr;
  absl::Span<const absl::string_view> known;  // Regions the broker knows.
  absl::string_view zone_message, zone_fix;
  absl::string_view malformed_message, malformed_fix;
  absl::string_view unknown_message, unknown_fix;
};
// Checks field "region": a zone or a value not in the provider's format is
// an error ("bad_region"); a well-formed region not in `known`, a warning
// ("unknown_region": it may be new).
void CheckRegion(absl::string_view region, const RegionNaming& naming,
                 std::vector<Finding>& findings);

// Reports "contains_whitespace" when a single-token value has inner spaces
// or line breaks (a copy across a wrapped line). Returns false if reported.
bool CheckSingleToken(absl::string_view field, absl::string_view label,
                      absl::string_view value, absl::string_view fix,
                      std::vector<Finding>& findings);

}  // namespace providers_internal
}  // namespace credbroker

#endif  // CREDBROKER_BROKER_PROVIDERS_CHECKS_H_
