#include "broker/providers/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/providers/checks.h"
#include "common/errors.h"

namespace credbroker {

ProviderRegistry::ProviderRegistry() {
  namespace pi = providers_internal;
  providers_.push_back(pi::NewAwsProvider());
  providers_.push_back(pi::NewGcpProvider());
  providers_.push_back(pi::NewAzureProvider());
  providers_.push_back(pi::NewDigitalOceanProvider());
  providers_.push_back(pi::NewMongoDbAtlasProvider());
  providers_.push_back(pi::NewRedisCloudProvider());
  providers_.push_back(pi::NewNetlifyProvider());
  providers_.push_back(pi::NewAuth0Provider());
  providers_.push_back(pi::NewVercelProvider());
  providers_.push_back(pi::NewGithubProvider());
  providers_.push_back(pi::NewSlackProvider());
  providers_.push_back(pi::NewCustomProvider());
}

const ProviderRegistry& ProviderRegistry::Default() {
  static const ProviderRegistry* const kRegistry = new ProviderRegistry();
  return *kRegistry;
}

const Provider* ProviderRegistry::Find(absl::string_view id) const {
  for (const auto& p : providers_) {
    if (p->spec().id == id) return p.get();
  }
  return nullptr;
}

absl::StatusOr<const Provider*> ProviderRegistry::Get(
    absl::string_view id) const {
  const Provider* p = Find(id);
  if (p != nullptr) return p;
  std::vector<absl::string_view> ids;
  for (const auto& q : providers_) ids.push_back(q->spec().id);
  std::string known = absl::StrJoin(ids, ", ");
  // The id is not echoed: it is caller input of any length.
  return InvalidArgumentWithViolations(
      absl::StrCat("unknown provider; known providers: ", known),
      {{"provider", absl::StrCat("use one of the provider ids: ", known)}});
}

}  // namespace credbroker
