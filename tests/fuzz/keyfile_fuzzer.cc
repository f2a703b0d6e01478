// Fuzzes the JSON key-file readers: the whole input is the file given to a
// provider's Normalize (`file_contents`), with no field values. Built twice:
// KEYFILE_PROVIDER is "gcp" (service account key) or "azure" (the
// `az ad sp create-for-rbac` output).
//
// "@@" in the file becomes the secret marker (see fuzz_support.h).
// Invariants: no finding, status message or field violation contains the
// marker; Normalize yields only non-blank values; a GCP key file that is
// not blank is kept, and the fields derived from it are its own (trimmed).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "broker/providers/checks.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "common/json.h"
#include "tests/fuzz/fuzz_support.h"

#ifndef KEYFILE_PROVIDER
#error "KEYFILE_PROVIDER must name the provider"
#endif

namespace credbroker {
namespace fuzz {
namespace {

void Run(absl::string_view input) {
  if (ContainsMarker(input)) return;
  static const Provider* const provider =
      ProviderRegistry::Default().Find(KEYFILE_PROVIDER);
  Check(provider != nullptr, "unknown KEYFILE_PROVIDER");
  std::string file = WithMarker(input);

  absl::StatusOr<NormalizeResult> normalized = provider->Normalize({}, file);
  if (!normalized.ok()) {
    CheckStatusHidesMarker(normalized.status());
    Check(normalized.status().code() == absl::StatusCode::kInvalidArgument,
          "Normalize failed with a code other than INVALID_ARGUMENT");
    return;
  }
  CheckFindingsHideMarker(normalized->findings);
  for (const auto& [name, value] : normalized->values) {
    Check(!value.empty(), "Normalize kept a blank value");
  }
  CheckFindingsHideMarker(provider->Validate(normalized->values));

  if (absl::string_view(KEYFILE_PROVIDER) == "gcp") {
    auto key = normalized->values.find("service_account_json");
    if (providers_internal::TrimPasted(file).empty()) return;
    Check(key != normalized->values.end(),
          "GCP Normalize dropped a non-empty key file");
    // Derived fields are the key's own, trimmed.
    absl::StatusOr<JsonValue> json = ParseJson(key->second.Reveal());
    Check(json.ok(), "GCP Normalize accepted a key that is not JSON");
    for (const char* name : {"project_id", "client_email"}) {
      auto it = normalized->values.find(name);
      if (it == normalized->values.end()) continue;
      std::optional<absl::string_view> from_key = json->FindString(name);
      Check(from_key.has_value() && providers_internal::TrimPasted(*from_key) ==
                                        it->second.Reveal(),
            "a derived GCP field differs from the key file's");
    }
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace credbroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credbroker::fuzz::Run(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
