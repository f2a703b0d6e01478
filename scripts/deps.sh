#!/usr/bin/env bash
# Installs the Debian 12 packages credbroker builds and tests with, if any is
# missing. Sourced by run.sh and test.sh. Not root and something missing:
# prints the exact apt-get line and exits 1.
credbroker_packages=(
  cmake ninja-build g++ pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libsodium-dev libcbor-dev libssl-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev
  python3 python3-grpcio python3-protobuf
  openssl util-linux passwd
  clang-format
)

# The Bazel build (scripts/bazel.sh, docs/BAZEL.md): Bazel 4 and the
# rules_java it loads, both from Debian; nothing else is downloaded.
credbroker_bazel_packages=(bazel-bootstrap bazel-rules-java)

# The fuzz preset (scripts/fuzz.sh): clang-14; libclang-rt-14-dev holds the
# libFuzzer, ASan and UBSan runtimes for clang.
credbroker_fuzz_packages=(clang-14 libclang-rt-14-dev)

credbroker_install_deps() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "credbroker needs these Debian packages: ${missing[*]}" >&2
    echo "Install them as root with:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
