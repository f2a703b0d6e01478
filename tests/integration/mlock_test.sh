#!/usr/bin/env bash
# Memory locking on the real daemon, under RLIMIT_MEMLOCK set with prlimit:
# a limit too small to lock the secrets' memory gets a warning at start
# naming the limit and how to raise it, and as many pages as it allows are
# locked; with --require_mlock the daemon refuses to start; with room
# enough it starts silently with pages locked.
#   mlock_test.sh CREDBROKERD
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 CREDBROKERD" >&2; exit 2; }
daemon="$1"
command -v prlimit >/dev/null || { echo "FAIL: prlimit (util-linux) is missing"; exit 1; }

work="$(mktemp -d /tmp/cbml.XXXXXX)"
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM

# Root locks memory past any limit (CAP_IPC_LOCK): the daemon runs without
# that capability, as a user's daemon does.
wrap=()
if [ "$(id -u)" = 0 ]; then wrap=(setpriv --bounding-set=-ipc_lock --); fi

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.out "$work"/*.err; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done
  exit 1
}

# start NAME MEMLOCK_BYTES [FLAGS...]: runs the daemon in the background.
start() {
  local name="$1" limit="$2"
  shift 2
  prlimit --memlock="$limit:$limit" -- ${wrap[@]+"${wrap[@]}"} "$daemon" \
    --data_dir="$work/data" --listen="unix:$work/data/b.sock" --key_source=file \
    --approval_factor=none --threads=2 "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
  pid=$!
}

wait_ready() {
  for _ in $(seq 1 300); do
    grep -qx ready "$work/$1.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || fail "$1: the daemon exited"
    sleep 0.1
  done
  fail "$1: not ready in 30 s"
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || fail "$1: exit status $? on SIGTERM"
  pid=""
}

# No memory may be locked: a warning naming the limit, and the daemon serves.
start warn 0
wait_ready warn
stop warn
grep -q "WARNING: memory for secrets cannot be locked" "$work/warn.err" || fail "no warning"
grep -q "RLIMIT_MEMLOCK is 0 bytes" "$work/warn.err" || fail "the warning does not name the limit"
grep -q "LimitMEMLOCK=" "$work/warn.err" || fail "the warning does not say how to raise it"

# The same with --require_mlock: refused, non-zero, never ready.
start refuse 0 --require_mlock
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" != 0 ] || fail "--require_mlock started with RLIMIT_MEMLOCK 0"
grep -q "RLIMIT_MEMLOCK is 0 bytes" "$work/refuse.err" || fail "the refusal does not name the limit"
grep -qx ready "$work/refuse.out" && fail "--require_mlock served anyway"

# Room for 4 pages of the 16 reserved: those are locked (page by page, not
# all or nothing), the rest is warned about.
start partial 16384
wait_ready partial
stop partial
grep -Eq "bytes not locked, [1-9][0-9]* locked\)" "$work/partial.err" ||
  fail "nothing locked under a 16 KiB limit"

# Room enough (4 MiB): starts with --require_mlock, no warning, pages locked.
start room $((4 * 1024 * 1024)) --require_mlock
wait_ready room
locked_kb="$(awk '/^VmLck:/ {print $2}' "/proc/$pid/status")"
stop room
grep -q "memory for secrets" "$work/room.err" && fail "a warning with room enough"
[ "${locked_kb:-0}" -gt 0 ] || fail "no memory locked (VmLck ${locked_kb:-?} kB)"
echo "PASS"
