#!/usr/bin/env bash
# Builds the release preset and starts credbrokerd in the foreground on the
# embedded store. Extra arguments go to credbrokerd (e.g. --data_dir DIR).
# Idempotent: installs only what is missing, rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
credbroker_install_deps "${credbroker_packages[@]}"

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/credbroker-ccache}"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >&2
echo "credctl is at $(pwd)/build/release/client/cli/credctl" >&2
exec build/release/broker/credbrokerd "$@"
