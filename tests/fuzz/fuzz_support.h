// Shared by the libFuzzer targets in tests/fuzz: the secret marker, a search
// for it that gives the fuzzer no hint, and invariant checks on findings and
// statuses. Test-only code.
//
// The marker: every "@@" in a fuzzed secret value or key file is replaced by
// kMarker before the code under test sees it, so that a seed such as
// "secret=abc@@def" exercises a long distinctive secret. Inputs that already
// contain kMarker are skipped, so the marker can only reach the code through
// a value or a file, never through a field name.
#ifndef CREDBROKER_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define CREDBROKER_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/providers/provider.h"
#include "common/errors.h"

namespace credbroker {
namespace fuzz {

inline constexpr absl::string_view kMarker = "Qz7MARKERxW93kLp0vTf";

// Byte-by-byte search, written out so that no memmem/strstr hook hands the
// marker to the fuzzer as a dictionary word.
inline bool ContainsMarker(absl::string_view text) {
  const size_t n = kMarker.size();
  if (text.size() < n) return false;
  for (size_t i = 0; i + n <= text.size(); ++i) {
    size_t j = 0;
    while (j < n && text[i + j] == kMarker[j]) ++j;
    if (j == n) return true;
  }
  return false;
}

// `s` with each "@@" replaced by kMarker.
inline std::string WithMarker(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '@' && i + 1 < s.size() && s[i + 1] == '@') {
      out.append(kMarker.data(), kMarker.size());
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Prints what broke (never input bytes) and aborts, which libFuzzer reports
// as a crash with the input saved.
[[noreturn]] inline void Fail(absl::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

inline void Check(bool ok, absl::string_view what) {
  if (!ok) Fail(what);
}

// No finding may carry the marker in any of its strings.
inline void CheckFindingsHideMarker(const std::vector<Finding>& findings) {
  for (const Finding& f : findings) {
    Check(!ContainsMarker(f.field), "a finding's field holds secret bytes");
    Check(!ContainsMarker(f.code), "a finding's code holds secret bytes");
    Check(!ContainsMarker(f.message), "a finding's message holds secret bytes");
    Check(!ContainsMarker(f.fix), "a finding's fix holds secret bytes");
    Check(f.severity == Severity::kInfo || f.severity == Severity::kWarning ||
              f.severity == Severity::kError,
          "a finding has an unknown severity");
  }
}

// No status message, payload or field violation may carry the marker.
inline void CheckStatusHidesMarker(const absl::Status& status) {
  Check(!ContainsMarker(status.message()),
        "a status message holds secret bytes");
  Check(!ContainsMarker(
            status.ToString(absl::StatusToStringMode::kWithEverything)),
        "a status payload holds secret bytes");
  for (const FieldViolation& v : GetFieldViolations(status)) {
    Check(!ContainsMarker(v.field), "a violation's field holds secret bytes");
    Check(!ContainsMarker(v.description),
          "a violation's description holds secret bytes");
  }
}

}  // namespace fuzz
}  // namespace credbroker

#endif  // CREDBROKER_TESTS_FUZZ_FUZZ_SUPPORT_H_
