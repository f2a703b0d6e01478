// Fuzzes Provider::Normalize and Provider::Validate of every built-in
// provider.
//
// Input: a first line naming the provider ("aws", "gcp", ...; anything else
// picks one by its first byte), then "name=value" lines, then optionally a
// form feed (\f) followed by the file contents. "@@" in a value or the file
// becomes the secret marker (see fuzz_support.h).
//
// Invariants: no finding, status message or field violation contains the
// marker; normalized values are never blank; normalizing normalized values
// again succeeds and changes no value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "broker/providers/provider.h"
#include "broker/providers/registry.h"
#include "tests/fuzz/fuzz_support.h"

namespace credbroker {
namespace fuzz {
namespace {

const Provider& PickProvider(absl::string_view id) {
  const ProviderRegistry& registry = ProviderRegistry::Default();
  if (const Provider* p = registry.Find(id)) return *p;
  const auto& all = registry.providers();
  size_t pick = id.empty() ? 0 : static_cast<unsigned char>(id[0]);
  return *all[pick % all.size()];
}

bool SameValues(const FieldValues& a, const FieldValues& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second != ib->second) return false;
  }
  return true;
}

void Run(absl::string_view input) {
  if (ContainsMarker(input)) return;
  absl::string_view file;
  if (size_t ff = input.find('\f'); ff != absl::string_view::npos) {
    file = input.substr(ff + 1);
    input = input.substr(0, ff);
  }
  std::pair<absl::string_view, absl::string_view> head =
      absl::StrSplit(input, absl::MaxSplits('\n', 1));
  const Provider& provider = PickProvider(head.first);

  FieldValues values;
  for (absl::string_view line : absl::StrSplit(head.second, '\n')) {
    if (line.empty()) continue;
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    values.emplace(std::string(kv.first), SecretBytes(WithMarker(kv.second)));
  }
  std::string file_contents = WithMarker(file);

  // Validate must cope with values that were never normalized.
  CheckFindingsHideMarker(provider.Validate(values));

  absl::StatusOr<NormalizeResult> normalized =
      provider.Normalize(values, file_contents);
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
  CheckFindingsHideMarker(provider.Validate(normalized->values));

  absl::StatusOr<NormalizeResult> again =
      provider.Normalize(normalized->values, "");
  if (!again.ok()) CheckStatusHidesMarker(again.status());
  Check(again.ok(), "Normalize refused values it had normalized itself");
  Check(SameValues(again->values, normalized->values),
        "Normalize is not idempotent: normalizing again changed a value");
}

}  // namespace
}  // namespace fuzz
}  // namespace credbroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credbroker::fuzz::Run(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
