#!/usr/bin/env bash
# The Bazel build beside CMake (docs/BAZEL.md), offline, with Debian's
# bazel-bootstrap: first checks that the BUILD.bazel files have CMake's
# targets and sources (scripts/check_bazel_cmake.py), then builds and tests
# everything. Run by scripts/test.sh after ctest; alone after scripts/deps.sh
# has installed bazel-bootstrap and bazel-rules-java.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# The server is not left running (it holds ~1 GB); a fresh clone also gets
# its own output base, so only the disk cache (.bazelrc) carries over.
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT
flags=()
if [ -n "${CI:-}" ]; then
  flags+=(--show_progress_rate_limit=60 --color=no --curses=no)
fi
# Bazel 4 never trims its disk cache (.bazelrc): start it anew past 2 GB.
cache="$HOME/.cache/credbroker-bazel"
if [ -d "$cache" ] && [ "$(du -sm "$cache" | cut -f1)" -gt 2048 ]; then
  rm -rf "$cache"
fi
python3 scripts/check_bazel_cmake.py
bazel build "${flags[@]}" //...
# Tests run every time: the disk cache would otherwise answer with the
# results of an earlier run of the same binaries.
bazel test "${flags[@]}" --cache_test_results=no //...
echo "bazel: build and test in $((SECONDS - start)) s"
