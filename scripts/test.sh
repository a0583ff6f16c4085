#!/bin/sh
# Set up (install, no daemon: the tests start their own) and run the whole test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh --no-start
exec /opt/gorae/venv/bin/python -m pytest -q -p no:cacheprovider "$@"
