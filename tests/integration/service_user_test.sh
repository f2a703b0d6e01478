#!/usr/bin/env bash
# The strongest setup, for real: scripts/install-service.sh makes a service
# user and a clients' group (unique names, temporary paths, no systemd
# needed), the built credbrokerd runs as that user, and a developer user in
# the group runs the agent and the approver (credctl) over the socket. The
# developer gets the whole flow and cannot read the data directory, the
# database or a key; a user outside the group is refused by the broker.
# Everything it creates is removed at the end, on failure too.
#   service_user_test.sh CREDBROKERD CREDCTL INSTALL_SERVICE_SH
# Needs root (exit 77, which ctest reports as skipped, otherwise).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: creating users and running the broker as one of them needs root"
  exit 77
fi
[ $# = 3 ] || { echo "usage: $0 CREDBROKERD CREDCTL INSTALL_SERVICE_SH" >&2; exit 2; }
# The user tools live in sbin, which Bazel's test PATH leaves out.
PATH="$PATH:/usr/sbin:/sbin"
for tool in setpriv runuser useradd userdel groupdel usermod getent; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing"; exit 1; }
done

suffix="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
svc="cbsvc$suffix"
grp="cbcli$suffix"
dev="cbdev$suffix"
work="$(mktemp -d /tmp/cbsu.XXXXXX)"
chmod 0755 "$work"
export CREDBROKER_SERVICE_USER="$svc" CREDBROKER_CLIENT_GROUP="$grp"
export CREDBROKER_STATE_DIR="$work/state" CREDBROKER_RUN_DIR="$work/run"
export CREDBROKER_TOKEN_DIR="$work/etc" CREDBROKER_UNIT_DIR="$work/systemd"
export CREDBROKER_UNIT_NAME="credbroker-$suffix"
install_sh="$3"
broker_pid=""

cleanup() {
  local rc=$?
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  bash "$install_sh" --uninstall --purge >/dev/null 2>&1 || true
  if getent passwd "$dev" >/dev/null; then userdel "$dev" 2>/dev/null || true; fi
  if getent group "$dev" >/dev/null; then groupdel "$dev" 2>/dev/null || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT INT TERM

fail() {
  echo "FAIL: $*"
  echo "--- broker stdout"; cat "$work/broker.out" 2>/dev/null || true
  echo "--- broker stderr"; cat "$work/broker.err" 2>/dev/null || true
  exit 1
}

# The binaries where the other users can run them (a build tree may be in
# a home directory they cannot enter).
mkdir -p "$work/bin"
install -m 0755 "$1" "$work/bin/credbrokerd"
install -m 0755 "$2" "$work/bin/credctl"
credctl="$work/bin/credctl"

useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$dev"
as_dev() { runuser -u "$dev" -- "$@"; }

# --- install, twice: the second run changes nothing and fails nothing.
bash "$install_sh" --credbrokerd "$work/bin/credbrokerd" --client "$dev" >"$work/install1.out" 2>&1 ||
  fail "install-service.sh: $(cat "$work/install1.out")"
cp "$work/systemd/credbroker-$suffix.service" "$work/unit.first"
bash "$install_sh" --credbrokerd "$work/bin/credbrokerd" --client "$dev" >"$work/install2.out" 2>&1 ||
  fail "install-service.sh, second run: $(cat "$work/install2.out")"
cmp -s "$work/unit.first" "$work/systemd/credbroker-$suffix.service" || fail "the unit changed on a second run"
if [ ! -d /run/systemd/system ]; then
  grep -q "systemd is not running here" "$work/install2.out" || fail "no word that systemd is not running"
fi
unit="$work/systemd/credbroker-$suffix.service"
grep -qx "User=$svc" "$unit" || fail "the unit does not run as $svc"
grep -q -- "--allow_group=$grp" "$unit" || fail "the unit does not allow $grp"
getent passwd "$svc" >/dev/null || fail "no user $svc"
id -nG "$dev" | tr ' ' '\n' | grep -qx "$grp" || fail "$dev is not in $grp"
[ "$(stat -c '%U %a' "$work/state")" = "$svc 700" ] || fail "data directory: $(stat -c '%U %a' "$work/state")"
[ "$(stat -c '%U %G %a' "$work/run")" = "$svc $grp 2750" ] || fail "socket directory: $(stat -c '%U %G %a' "$work/run")"
[ "$(stat -c '%U %G %a' "$work/etc")" = "$svc $grp 2750" ] || fail "token directory: $(stat -c '%U %G %a' "$work/etc")"

# --- the broker as the service user: the unit's command, plus a key file
# (the weakest key mode: the separate user must protect even that), TLS on
# loopback (a second key), and a socket in an open directory, where only the
# broker's own check stands between another user and the API.
mkdir -m 0755 "$work/open"
chown "$svc:$grp" "$work/open"
chmod 2755 "$work/open"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
read -r -a argv <<<"$exec_start"
setpriv --reuid="$svc" --regid="$svc" --init-groups -- "${argv[@]}" \
  --listen="unix:$work/run/broker.sock,unix:$work/open/b.sock,127.0.0.1:0" \
  --key_source=file --threads=4 >"$work/broker.out" 2>"$work/broker.err" </dev/null &
broker_pid=$!
for _ in $(seq 1 300); do
  grep -qx ready "$work/broker.out" 2>/dev/null && break
  kill -0 "$broker_pid" 2>/dev/null || fail "the broker exited"
  sleep 0.1
done
grep -qx ready "$work/broker.out" || fail "the broker did not become ready in 30 s"
[ "$(stat -c '%U' /proc/"$broker_pid")" = "$svc" ] || fail "the broker does not run as $svc"
[ "$(stat -c '%G %a' "$work/run/broker.sock")" = "$grp 660" ] ||
  fail "socket: $(stat -c '%G %a' "$work/run/broker.sock")"
for t in approver agent; do
  [ "$(stat -c '%U %G %a' "$work/etc/$t.token")" = "$svc $grp 640" ] ||
    fail "$t.token: $(stat -c '%U %G %a' "$work/etc/$t.token")"
done
chmod 0666 "$work/open/b.sock"

# --- the developer: the whole flow over the socket.
broker="unix:$work/run/broker.sock"
approver=(--broker "$broker" --token_file "$work/etc/approver.token" --timeout 20)
agent=(--broker "$broker" --token_file "$work/etc/agent.token")
random="$(head -c 96 /dev/urandom | base32 | tr -dc 'A-Z2-7')"
key_id="AKIA${random:0:16}"
random="$(head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
secret="${random:0:40}"
as_dev "$credctl" "${approver[@]}" set aws --field "access_key_id=$key_id" \
  --field "secret_access_key=$secret" >"$work/set.out" 2>&1 || fail "credctl set: $(cat "$work/set.out")"
printf '482916\n' >"$work/pin"
chmod 0644 "$work/pin"
as_dev "$credctl" "${approver[@]}" pin set --pin_fd 0 <"$work/pin" >"$work/pin.out" 2>&1 ||
  fail "credctl pin set: $(cat "$work/pin.out")"
# setsid: the agent in a session of its own (an approver in the agent's
# session is refused as the agent).
runuser -u "$dev" -- setsid "$credctl" "${agent[@]}" request aws --action "deploy as $dev" \
  --timeout 60 >"$work/request.out" 2>"$work/request.err" &
request_pid=$!
id=""
for _ in $(seq 1 300); do
  id="$(as_dev "$credctl" "${approver[@]}" pending 2>/dev/null | awk -v a="deploy as $dev" 'index($0, a) {print $1; exit}')"
  [ -n "$id" ] && break
  sleep 0.1
done
[ -n "$id" ] || fail "the agent's request never became pending"
as_dev "$credctl" "${approver[@]}" approve "$id" --pin_fd 0 <"$work/pin" >"$work/approve.out" 2>&1 ||
  fail "credctl approve: $(cat "$work/approve.out")"
wait "$request_pid" || fail "credctl request exited $?: $(cat "$work/request.err")"
grep -q "grant_id" "$work/request.out" || fail "the agent got no grant"
grep -qF "$key_id" "$work/request.out" || fail "the grant does not carry the approved credential"
# The audit log tells the developer's processes apart by uid.
dev_uid="$(id -u "$dev")"
as_dev "$credctl" "${approver[@]}" audit --json >"$work/audit.out" 2>&1 || fail "credctl audit"
grep -q "credctl, pid [0-9]*, uid $dev_uid" "$work/audit.out" ||
  fail "the audit log does not name credctl of uid $dev_uid"

# --- what the developer (and so an agent running as them) cannot read.
for f in "$work/state/credbroker.db" "$work/state/master.key" "$work/state/tls.key"; do
  [ -e "$f" ] || fail "$f does not exist"
  if as_dev cat "$f" >/dev/null 2>&1; then fail "$dev could read $f"; fi
done
if as_dev ls "$work/state" >/dev/null 2>&1; then fail "$dev could list the data directory"; fi
if as_dev cp "$work/state/credbroker.db" /tmp/ >/dev/null 2>&1; then fail "$dev could copy the database"; fi

# --- a user outside the group: refused by the broker itself on the open
# socket (the filesystem would let it connect), and kept out of the socket
# and token directories.
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
if "${nobody[@]}" "$credctl" --broker "unix:$work/open/b.sock" --token_file /dev/null \
     --timeout 5 providers >"$work/nobody.out" 2>&1; then
  fail "uid 65534 got an answer: $(cat "$work/nobody.out")"
fi
for _ in $(seq 1 100); do
  grep -q "refused a connection from uid 65534" "$work/broker.err" && break
  sleep 0.1
done
grep -q "refused a connection from uid 65534" "$work/broker.err" || fail "the broker did not refuse uid 65534"
if "${nobody[@]}" cat "$work/etc/approver.token" >/dev/null 2>&1; then fail "uid 65534 read a token"; fi
# The developer gets in on that same socket: the group is what counts.
as_dev "$credctl" --broker "unix:$work/open/b.sock" --token_file "$work/etc/approver.token" \
  --timeout 5 list >/dev/null 2>&1 || fail "$dev was refused on the open socket"

# --- uninstall removes the user, the group and the unit.
kill -TERM "$broker_pid"
wait "$broker_pid" || fail "the broker exited non-zero on SIGTERM"
broker_pid=""
bash "$install_sh" --uninstall --purge >"$work/uninstall.out" 2>&1 || fail "uninstall: $(cat "$work/uninstall.out")"
getent passwd "$svc" >/dev/null && fail "$svc is still there"
getent group "$grp" >/dev/null && fail "$grp is still there"
[ -e "$unit" ] && fail "the unit is still there"
[ -e "$work/state" ] && fail "--purge left the data directory"
echo "PASS"
