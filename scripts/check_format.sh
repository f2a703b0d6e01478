#!/usr/bin/env bash
# Checks that every C++ source and header follows .clang-format (Debian 12's
# clang-format 14). Lists the files that do not and exits 1; fix them with
#   git ls-files '*.cc' '*.h' | xargs clang-format -i
# Also checks that the client stands alone: nothing under client/ includes
# a header under broker/ (what both share is in common/), and its public
# headers (client/credbroker/) name no generated protobuf type.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "check_format: ${#bad[@]} file(s) do not follow .clang-format:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "fix with: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "check_format: ${#files[@]} C++ files follow .clang-format"
if git grep -n '#include "broker/' -- client/ >&2; then
  echo "check_format: client/ includes broker/ headers (move what both" \
    "need to common/)" >&2
  exit 1
fi
if git grep -nE '\.pb\.h|v1::|google::protobuf|client/internal/' \
  -- 'client/credbroker/*.h' >&2; then
  echo "check_format: the client's public headers name generated protobuf" \
    "types or internal headers (use the plain types of" \
    "client/credbroker/types.h)" >&2
  exit 1
fi
