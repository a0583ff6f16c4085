#!/bin/sh
# Install gorae and what it needs to run on Debian 12 (as root), start the daemon, make busybox:latest.
#   scripts/setup.sh              install (a regular package in /opt/gorae/venv) + start the daemon on
#                                 unix:///run/gorae.sock (a systemd unit where systemd runs the machine)
#   scripts/setup.sh --no-start   install only
#   scripts/setup.sh --editable   (with --no-start) install the checkout in development mode: what
#                                 scripts/test.sh uses; the test peers are test.sh's business, not a user's
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
START=1
EDITABLE=0
for arg in "$@"; do
    case "$arg" in
        --no-start) START=0 ;;
        --editable) EDITABLE=1 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root" >&2; exit 1; fi

export DEBIAN_FRONTEND=noninteractive
need=""
# runc under conmon, tini for --init, busybox-static for the offline busybox image, Docker's seccomp profile
# (golang-github-docker-docker-dev; containers-common's as a fallback), kernel networking tools, etcd-server
# (swarm mode's cluster store: each manager daemon runs its own etcd member)
for p in runc conmon tini busybox-static iptables conntrack iproute2 golang-github-containers-common golang-github-docker-docker-dev curl procps python3 python3-venv etcd-server; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# Debian's etcd-server enables a system-wide etcd on :2379; gorae runs its own members, so that one stays off
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi

VENV=/opt/gorae/venv
# Debian's interpreter (the python3 package above), not whatever python3 comes first on PATH: a pyenv or
# /usr/local build starts 3-5 ms slower, which is a third of a CLI command's whole time
PY=/usr/bin/python3
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p /opt/gorae
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$EDITABLE" = 1 ]; then
    "$VENV/bin/pip" install -q -e "$HERE[test]"
else
    "$VENV/bin/pip" install -q "$HERE"
fi
# /usr/local/bin/gorae: a launcher run with `python -IS` (no `site`, no .pth processing: that costs tens of ms
# at every command) and `-X utf8` (UTF-8 mode: the interpreter skips the locale's encoder at start, ~0.5 ms;
# gorae reads and writes UTF-8 whatever the locale, as docker and dockerd do) that puts the package and the
# venv's site-packages on sys.path itself: the package's directory first when it is not site-packages (an
# editable install), site-packages last as in a normal sys.path (stdlib imports never list it: the CLI needs
# nothing from it).
GORAE_SRC=$("$VENV/bin/python" -c 'import gorae, os; print(os.path.dirname(os.path.dirname(os.path.abspath(gorae.__file__))))')
GORAE_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
GORAE_FIRST="\"$GORAE_SRC\""
if [ "$GORAE_SRC" = "$GORAE_SITE" ]; then GORAE_FIRST=""; fi
cat > /usr/local/bin/gorae.new <<LAUNCHER
#!$VENV/bin/python -ISXutf8
"""gorae CLI launcher written by scripts/setup.sh."""
import sys
sys.path[:0] = [$GORAE_FIRST]
sys.path.append("$GORAE_SITE")
from gorae.cmd.main import run
run()
LAUNCHER
chmod 0755 /usr/local/bin/gorae.new
if /usr/local/bin/gorae.new --version >/dev/null 2>&1; then
    mv -f /usr/local/bin/gorae.new /usr/local/bin/gorae
else  # fall back to the venv's console script
    rm -f /usr/local/bin/gorae.new
    ln -sf "$VENV/bin/gorae" /usr/local/bin/gorae
fi

getent group docker >/dev/null 2>&1 || groupadd -r docker

[ "$START" = 1 ] || exit 0

# start the daemon (systemd when it runs the machine, else in the background)
if [ -d /run/systemd/system ]; then
    install -m 0644 "$HERE/scripts/gorae.service" /etc/systemd/system/gorae.service
    systemctl daemon-reload
    systemctl enable --now gorae.service
else
    if ! curl -fsS --unix-socket /run/gorae.sock http://localhost/_ping >/dev/null 2>&1; then
        mkdir -p /var/log
        nohup /usr/local/bin/gorae daemon >>/var/log/gorae.log 2>&1 &
    fi
fi
i=0
until curl -fsS --unix-socket /run/gorae.sock http://localhost/_ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "gorae daemon did not start; see /var/log/gorae.log" >&2; exit 1; }
    sleep 0.1
done

# busybox:latest from Debian's busybox-static, without the internet
if ! curl -fsS --unix-socket /run/gorae.sock http://localhost/images/busybox:latest/json >/dev/null 2>&1; then
    "$VENV/bin/python" -m gorae.image.bootstrap | curl -fsS --unix-socket /run/gorae.sock \
        -H 'Content-Type: application/x-tar' --data-binary @- \
        'http://localhost/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D' >/dev/null
fi
echo "gorae is running on unix:///run/gorae.sock"
