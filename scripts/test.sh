#!/usr/bin/env bash
# Builds credbroker and runs every test through ctest. Exits non-zero on any
# failure. Idempotent: installs only what is missing, rebuilds only what
# changed.
#   CREDBROKER_PRESET=dev scripts/test.sh     another preset (default: ci)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
credbroker_install_deps "${credbroker_packages[@]}"

preset="${CREDBROKER_PRESET:-ci}"
jobs="$(nproc)"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/credbroker-ccache}"

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs" --timeout 600
