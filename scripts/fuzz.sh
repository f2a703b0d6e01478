#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang-14, ASan + UBSan),
# replays each seed corpus (ctest), then fuzzes each target for a bounded
# time. Exits non-zero when any target crashes, leaks, times out or breaks
# an invariant; the input that did it is saved as build/fuzz/artifacts/*.
#   CREDBROKER_FUZZ_SECONDS=20   seconds per target (default 20)
#   scripts/fuzz.sh json_fuzzer  only the named targets
# Inputs found while fuzzing accumulate in build/fuzz/corpus-work/<target>
# (not in the repository); copy an interesting one to tests/fuzz/corpus/ by
# hand to keep it as a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
credbroker_install_deps "${credbroker_packages[@]}" "${credbroker_fuzz_packages[@]}"

seconds="${CREDBROKER_FUZZ_SECONDS:-10}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/credbroker-ccache}"

# target:corpus directory under tests/fuzz/corpus
all=(provider_fuzzer:provider gcp_key_fuzzer:gcp_key azure_file_fuzzer:azure_file
     json_fuzzer:json record_fuzzer:record)
targets=()
if [ $# -eq 0 ]; then
  targets=("${all[@]}")
else
  for name in "$@"; do
    found=""
    for t in "${all[@]}"; do [ "${t%%:*}" = "$name" ] && found="$t"; done
    [ -n "$found" ] || { echo "unknown fuzz target: $name" >&2; exit 2; }
    targets+=("$found")
  done
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
ctest --preset fuzz -j "$(nproc)"

out=build/fuzz
mkdir -p "$out/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  name="${t%%:*}"
  work="$out/corpus-work/$name"
  mkdir -p "$work"
  echo "== $name: ${seconds}s" >&2
  # -timeout: one input taking longer than 10 s is a bug (a hang).
  if ! "$out/tests/fuzz/$name" "$work" "tests/fuzz/corpus/${t#*:}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$name-" >"$out/$name.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$out/$name.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)' \
      "$out/$name.log" | tr '\n' ' ' >&2
    echo >&2
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing found a problem in: ${failed[*]} (inputs in $out/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, nothing found" >&2
