// The catalog of providers: the guide's eleven plus "custom". Built once,
// immutable, safe to use from any thread.
#ifndef CREDBROKER_BROKER_PROVIDERS_REGISTRY_H_
#define CREDBROKER_BROKER_PROVIDERS_REGISTRY_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/providers/provider.h"

namespace credbroker {

class ProviderRegistry {
 public:
  // The built-in catalog.
  static const ProviderRegistry& Default();

  // NOT_FOUND-free lookup: nullptr when unknown.
  const Provider* Find(absl::string_view id) const;
  // INVALID_ARGUMENT naming the known providers when `id` is unknown.
  absl::StatusOr<const Provider*> Get(absl::string_view id) const;
  // In catalog order.
  const std::vector<std::unique_ptr<Provider>>& providers() const {
    return providers_;
  }

 private:
  ProviderRegistry();
  std::vector<std::unique_ptr<Provider>> providers_;
};

}  // namespace credbroker

#endif  // CREDBROKER_BROKER_PROVIDERS_REGISTRY_H_
