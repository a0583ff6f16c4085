#!/bin/sh
# Install gorae and everything it needs on Debian 12 (as root), start the daemon, make busybox:latest.
#   scripts/setup.sh            install + start the daemon on unix:///run/gorae.sock
#   scripts/setup.sh --no-start install only (what CI uses before the tests, which start their own daemons)
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
START=1
[ "${1:-}" = "--no-start" ] && START=0

if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root" >&2; exit 1; fi

export DEBIAN_FRONTEND=noninteractive
need=""
for p in runc conmon tini busybox-static iptables iproute2 golang-github-containers-common golang-github-docker-docker-dev curl procps python3 python3-venv tmux; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
# the docker CLI, docker-py and a reference dockerd are test peers (Debian's docker.io)
if [ "${GORAE_WITH_PEERS:-1}" = 1 ]; then
    command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
    dpkg -s skopeo >/dev/null 2>&1 || need="$need skopeo"
    # shells whose completion scripts the CLI tests load (gorae completion zsh|fish)
    for p in zsh fish; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
fi
if [ -n "$need" ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

VENV=/opt/gorae/venv
PY=python3
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p /opt/gorae
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -e "$HERE[test]"
# /usr/local/bin/gorae: a launcher run with `python -IS` (no `site`, no .pth processing: that costs tens of ms
# at every command) that puts the package and the venv's site-packages on sys.path itself.
GORAE_SRC=$("$VENV/bin/python" -c 'import gorae, os; print(os.path.dirname(os.path.dirname(os.path.abspath(gorae.__file__))))')
GORAE_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > /usr/local/bin/gorae.new <<LAUNCHER
#!$VENV/bin/python -IS
"""gorae CLI launcher written by scripts/setup.sh."""
import sys
sys.path[:0] = ["$GORAE_SRC", "$GORAE_SITE"]
from gorae.cmd.main import main
sys.exit(main())
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
