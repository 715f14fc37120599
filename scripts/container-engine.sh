#!/usr/bin/env bash
# Make a Docker-API container engine answer for the container tests, idempotently.
#
# Prints `export NAME=value` lines on stdout for `eval "$(scripts/container-engine.sh)"`;
# everything else (progress, reasons) goes to stderr. Always exits 0: when no engine can be
# provided it exports nothing and says why, and the container tests skip with that reason.
#
#  1. DOCKER_HOST or /var/run/docker.sock already answers -> use it, install nothing.
#  2. root on Debian -> apt-get install podman runc debootstrap (only if missing), write
#     $CONF_FILE, start `podman system service` on $SOCK if it does not answer, wait for it.
#  3. otherwise -> explain and export nothing.
set -u

CONF_DIR=/etc/pytest-tfserving
CONF_FILE=$CONF_DIR/containers.conf
SOCK_DIR=/run/pytest-tfserving
SOCK=$SOCK_DIR/podman.sock
LOG=$SOCK_DIR/podman-service.log

say() { echo "container-engine: $*" >&2; }

# True when a Docker-API engine answers _ping on the unix socket $1.
answers() {
    local sock=$1
    [ -S "$sock" ] || return 1
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 3 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
    else
        python3 - "$sock" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
sys.exit(0 if b" 200 " in s.recv(256) else 1)
PY
    fi
}

print_exports() {
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export CONTAINERS_CONF=$CONF_FILE"
    echo "export TESTCONTAINERS_CONNECTION_MODE=docker_host"
    echo "export TESTCONTAINERS_RYUK_DISABLED=true"
}

# 1. An engine that already answers wins (a developer's Docker, CI's service, our earlier start).
if [ -n "${DOCKER_HOST:-}" ]; then
    case "$DOCKER_HOST" in
        unix://*)
            if answers "${DOCKER_HOST#unix://}"; then
                say "using the engine at DOCKER_HOST=$DOCKER_HOST"
                # Our own Podman service: repeat its settings so a second eval changes nothing.
                [ "$DOCKER_HOST" = "unix://$SOCK" ] && print_exports
                exit 0
            fi
            say "DOCKER_HOST=$DOCKER_HOST does not answer; trying to provide Podman" ;;
        *)
            say "DOCKER_HOST=$DOCKER_HOST is not a unix socket; leaving it to the Docker client"
            exit 0 ;;
    esac
fi
if answers /var/run/docker.sock; then
    say "using the engine at /var/run/docker.sock"
    exit 0
fi
# A service whose working directory was deleted (started from a checkout that is gone) still
# answers _ping, but conmon cannot start containers from it ("write child: broken pipe"): stop it
# so it is started again, from /.
PID_FILE=$SOCK_DIR/podman-service.pid
if [ -f "$PID_FILE" ]; then
    pid=$(cat "$PID_FILE" 2>/dev/null)
    if [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" != "/" ]; then
        say "podman service (pid $pid) runs in $(readlink "/proc/$pid/cwd" 2>/dev/null || echo '?'), not /; restarting it"
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        rm -f "$SOCK" "$PID_FILE"
    fi
fi
if answers "$SOCK" && [ -f "$CONF_FILE" ]; then
    say "podman service already answers on $SOCK"
    print_exports
    exit 0
fi

# 3. Only root on Debian can get Podman here.
if [ "$(id -u)" != 0 ]; then
    say "no container engine answers and this user is not root (cannot install Podman); container tests will skip"
    exit 0
fi
if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    say "no container engine answers and this is not Debian (no apt-get to install Podman); container tests will skip"
    exit 0
fi

# 2. Install what is missing.
missing=()
for pkg in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2 || true
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
            say "apt-get install ${missing[*]} failed; container tests will skip"
            exit 0
        fi
    fi
fi

# crun fails here ("cgroups in hybrid mode not supported") and the default ulimits cannot be set
# inside this VM ("setrlimit ... operation not permitted"): runc, cgroupfs and modest ulimits work.
mkdir -p "$CONF_DIR" "$SOCK_DIR"
desired_conf='# Written by pytest-tfserving scripts/container-engine.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
if [ ! -f "$CONF_FILE" ] || [ "$(cat "$CONF_FILE")" != "$(printf '%s' "$desired_conf")" ]; then
    printf '%s' "$desired_conf" > "$CONF_FILE"
fi
export CONTAINERS_CONF=$CONF_FILE

if ! answers "$SOCK"; then
    rm -f "$SOCK"
    say "starting podman system service on $SOCK (log: $LOG)"
    # From /: the service and every conmon it forks keep this directory as their working
    # directory, and a checkout (ours, a CI clone) may be deleted while the service lives on.
    (cd / && exec nohup setsid podman system service --time=0 "unix://$SOCK" >"$LOG" 2>&1 </dev/null) &
    echo $! > "$PID_FILE"
    for _ in $(seq 1 100); do
        answers "$SOCK" && break
        sleep 0.2
    done
    if ! answers "$SOCK"; then
        say "podman service did not answer on $SOCK within 20 s; see $LOG; container tests will skip"
        tail -n 20 "$LOG" >&2 || true
        exit 0
    fi
fi
say "podman service answers on $SOCK"
print_exports
exit 0
