// Fuzzes the store's record decoding: DecodeFieldValues on arbitrary
// plaintext, and Sealer::Open on arbitrary sealed bytes under a fixed key.
//
// Invariants: decoding fails only with DATA_LOSS; decode(encode(x)) == x for
// every decoded x and for field values built from the input (NUL-separated
// name, value, name, value, ...); Open of unsealed bytes fails with
// DATA_LOSS; Open(Seal(x)) == x, and fails under other associated data.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "broker/core/record_codec.h"
#include "broker/crypto/crypto.h"
#include "common/secret.h"
#include "tests/fuzz/fuzz_support.h"

namespace credbroker {
namespace fuzz {
namespace {

bool SameValues(const FieldValues& a, const FieldValues& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second != ib->second) return false;
  }
  return true;
}

void CheckRoundTrip(const FieldValues& values) {
  absl::StatusOr<FieldValues> decoded =
      DecodeFieldValues(EncodeFieldValues(values));
  Check(decoded.ok(), "an encoded record does not decode");
  Check(SameValues(*decoded, values), "decode(encode(x)) != x");
}

const Sealer& FixedSealer() {
  static const Sealer* const sealer = [] {
    Check(InitCrypto().ok(), "InitCrypto failed");
    return new Sealer(SecretBytes(std::string(kKeyBytes, '\x42')));
  }();
  return *sealer;
}

void Run(absl::string_view input) {
  SecretBytes plaintext(input);
  absl::StatusOr<FieldValues> decoded = DecodeFieldValues(plaintext);
  if (decoded.ok()) {
    CheckRoundTrip(*decoded);
  } else {
    Check(decoded.status().code() == absl::StatusCode::kDataLoss,
          "DecodeFieldValues failed with a code other than DATA_LOSS");
  }

  FieldValues built;
  std::vector<absl::string_view> parts = absl::StrSplit(input, '\0');
  for (size_t i = 0; i + 1 < parts.size(); i += 2) {
    if (parts[i].empty()) continue;
    built.emplace(std::string(parts[i]), SecretBytes(parts[i + 1]));
  }
  CheckRoundTrip(built);

  const Sealer& sealer = FixedSealer();
  const std::string ad = RecordAssociatedData("aws", "default", 1);
  absl::StatusOr<SecretBytes> opened = sealer.Open(input, ad, "aws/default");
  if (!opened.ok()) {
    Check(opened.status().code() == absl::StatusCode::kDataLoss,
          "Sealer::Open failed with a code other than DATA_LOSS");
  }
  std::string sealed = sealer.Seal(plaintext, ad);
  absl::StatusOr<SecretBytes> reopened = sealer.Open(sealed, ad, "aws/default");
  Check(reopened.ok() && *reopened == plaintext, "Open(Seal(x)) != x");
  Check(
      !sealer.Open(sealed, RecordAssociatedData("aws", "default", 2), "x").ok(),
      "a sealed record opens under other associated data");
}

}  // namespace
}  // namespace fuzz
}  // namespace credbroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credbroker::fuzz::Run(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
