#!/usr/bin/env bash
# Installs credbrokerd as a system service that runs as its own user, the
# strongest setup: an agent running as you cannot read the store at all.
#
#   sudo scripts/install-service.sh [--credbrokerd PATH] [--client USER]...
#   sudo scripts/install-service.sh --uninstall [--purge]
#
# Creates (each only when missing; running it again changes nothing else):
#   - the system user `credbroker`, the only one that can read the data
#     directory /var/lib/credbroker (0700) and its spill directory;
#   - the group `credbroker-clients`, the people allowed to connect
#     (--client USER adds USER; the membership counts from their next login);
#   - /run/credbroker (the socket) and /etc/credbroker (approver.token and
#     agent.token, made 0640 for the group by the broker), both 2750
#     credbroker:credbroker-clients: members can connect and read the tokens,
#     nobody else can, and nothing there opens the store;
#   - the systemd unit /etc/systemd/system/credbroker.service, enabled and
#     started only when systemd is running (not in most containers and CI).
# --uninstall stops and removes the unit, the socket and token directories,
# the user and the group; the data directory (your stored credentials) is
# kept unless --purge.
#
# Paths and names can be changed through the environment (the tests use
# this): CREDBROKER_SERVICE_USER, CREDBROKER_CLIENT_GROUP,
# CREDBROKER_STATE_DIR, CREDBROKER_RUN_DIR, CREDBROKER_TOKEN_DIR,
# CREDBROKER_UNIT_DIR, CREDBROKER_UNIT_NAME.
set -euo pipefail

user="${CREDBROKER_SERVICE_USER:-credbroker}"
group="${CREDBROKER_CLIENT_GROUP:-credbroker-clients}"
state_dir="${CREDBROKER_STATE_DIR:-/var/lib/credbroker}"
run_dir="${CREDBROKER_RUN_DIR:-/run/credbroker}"
token_dir="${CREDBROKER_TOKEN_DIR:-/etc/credbroker}"
unit_dir="${CREDBROKER_UNIT_DIR:-/etc/systemd/system}"
unit_name="${CREDBROKER_UNIT_NAME:-credbroker}"
daemon=/usr/local/bin/credbrokerd
uninstall=0
purge=0
clients=()

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --credbrokerd) daemon="${2:?--credbrokerd needs a path}"; shift 2 ;;
    --client) clients+=("${2:?--client needs a user name}"); shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage ;;
    *) echo "install-service.sh: unknown argument $1" >&2; usage ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "install-service.sh: run it as root (sudo): it creates a system user and group" >&2
  exit 1
fi

unit_file="$unit_dir/$unit_name.service"
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

if [ "$uninstall" = 1 ]; then
  if systemd_running && [ -f "$unit_file" ]; then
    systemctl disable --now "$unit_name.service" || true
  fi
  rm -f "$unit_file"
  if systemd_running; then systemctl daemon-reload || true; fi
  rm -rf "$run_dir" "$token_dir"
  if [ "$purge" = 1 ]; then
    rm -rf "$state_dir" "$state_dir-spill"
  elif [ -d "$state_dir" ]; then
    echo "kept $state_dir (your stored credentials; --purge removes it)"
  fi
  if getent passwd "$user" >/dev/null; then userdel "$user"; fi
  if getent group "$user" >/dev/null; then groupdel "$user"; fi
  if getent group "$group" >/dev/null; then groupdel "$group"; fi
  echo "credbroker service removed"
  exit 0
fi

if [ ! -x "$daemon" ]; then
  echo "install-service.sh: warning: $daemon is not an executable yet; install" \
       "credbrokerd there (or name it with --credbrokerd PATH) before starting" >&2
fi

getent group "$group" >/dev/null || groupadd --system "$group"
if ! getent passwd "$user" >/dev/null; then
  useradd --system --user-group --home-dir "$state_dir" --no-create-home \
    --shell /usr/sbin/nologin --comment "credbroker credential broker" "$user"
fi
for c in ${clients[@]+"${clients[@]}"}; do
  if ! id -nG "$c" | tr ' ' '\n' | grep -qx "$group"; then usermod -aG "$group" "$c"; fi
done

# Private to the broker's user. The setgid directories give what the broker
# creates in them (the socket, the token files) to the clients' group.
make_dir() {  # MODE OWNER GROUP DIR
  mkdir -p "$4"
  chown "$2:$3" "$4"
  chmod "$1" "$4"
}
make_dir 0700 "$user" "$user" "$state_dir"
make_dir 0700 "$user" "$user" "$state_dir-spill"
make_dir 2750 "$user" "$group" "$run_dir"
make_dir 2750 "$user" "$group" "$token_dir"

exec_start="$daemon --data_dir=$state_dir --listen=unix:$run_dir/broker.sock \
--allow_group=$group --token_dir=$token_dir --require_mlock"
mkdir -p "$unit_dir"
cat >"$unit_file.tmp" <<EOF
# Written by credbroker's scripts/install-service.sh.
[Unit]
Description=credbroker credential broker (runs as $user)
After=network-online.target

[Service]
Type=simple
User=$user
Group=$user
# /run is emptied at boot: the socket directory is made again, as root.
ExecStartPre=+/bin/sh -c 'mkdir -p $run_dir && chown $user:$group $run_dir && chmod 2750 $run_dir'
ExecStart=$exec_start
Restart=on-failure
UMask=0077
LimitCORE=0
LimitMEMLOCK=64M
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ReadWritePaths=$state_dir $state_dir-spill $run_dir $token_dir
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=multi-user.target
EOF
mv "$unit_file.tmp" "$unit_file"
echo "wrote $unit_file"

if systemd_running; then
  systemctl daemon-reload
  systemctl enable --now "$unit_name.service"
  echo "started $unit_name.service"
else
  echo "systemd is not running here: $unit_name.service is written but not enabled or started."
  echo "Start the broker as $user yourself, e.g.:"
  echo "  runuser -u $user -- $exec_start"
fi
cat <<EOF
The store is protected by a passphrase: start the broker once from a terminal
to choose it (runuser -u $user -- $daemon --data_dir=$state_dir ...), then, after
each service start, unlock it as a client: credctl --broker unix:$run_dir/broker.sock \\
  --token_file $token_dir/approver.token unlock
Clients (members of $group): credctl --broker unix:$run_dir/broker.sock \\
  --token_file $token_dir/approver.token providers
EOF
