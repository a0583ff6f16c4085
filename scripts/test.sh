#!/bin/sh
# Set up for the tests and run the whole suite (as root, Debian 12): gorae installed from this checkout in
# development mode (no daemon started: the tests start their own), plus the peers the tests compare against
# and drive it with — Debian's docker.io (the docker CLI and a reference dockerd), skopeo, docker-compose v1 (tests/compat/test_compose.py), zsh and fish (the
# completion scripts), tmux, openssl and docker-registry (the reference registry bench/registry.py compares
# with), and the monitoring peers: Debian's prometheus and graphite-carbon (the metrics tests scrape and push
# to them), chromium + chromium-driver (the dashboard test drives the page headless), git (git daemon and git
# http-backend serve the git build contexts of tests/compat/test_build_git.py; `gorae deploy`'s tests push with it)
# and openssh-server/-client (those pushes also go over ssh to a private sshd on 127.0.0.1). None of these is part
# of a user's install (scripts/setup.sh).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh --no-start --editable

export DEBIAN_FRONTEND=noninteractive
need=""
command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
for p in skopeo docker-registry docker-compose zsh fish tmux openssl prometheus graphite-carbon chromium chromium-driver openssh-server openssh-client git; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# On a systemd machine the package starts its own dockerd, which sets FORWARD to DROP and rewrites the
# firewall: the tests start private dockerds on their own roots instead.
if [ -d /run/systemd/system ]; then
    systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
    # the prometheus package starts a server on :9090; the tests start their own on free ports
    systemctl disable --now prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true
    # docker-registry and graphite-carbon start servers on :5000 and :2003; the tests start their own
    systemctl disable --now docker-registry.service carbon-cache.service >/dev/null 2>&1 || true
fi

exec /opt/gorae/venv/bin/python -m pytest -q -p no:cacheprovider "$@"
