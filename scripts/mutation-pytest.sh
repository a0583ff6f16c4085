#!/bin/sh
# The test command scripts/mutation.sh gives mutmut: the module's unit tests ($GORAE_MUTATION_TESTS, set by
# scripts/mutation-env.sh; default the archive ones), quick and repeatable (GORAE_MUTATION=1: a few
# derandomized hypothesis examples), no bytecode, and any failure reported as exit status 1 — mutmut 2.x
# counts only status 1 as a failed run, so a mutant that breaks the import (pytest's status 2, a collection
# error) would otherwise "survive".
# GORAE_MUTATION_FIRST (the module's own test file, set by mutation-env.sh) runs first, alone, under a
# $GORAE_MUTATION_FIRST_HANG-second limit (default 30; it takes a second or two): most mutants fail there,
# and a mutant that loops is ended in that time instead of by mutation.sh's slower watchdog.
cd "$(dirname "$0")/.."
py="${GORAE_VENV:-/opt/gorae/venv}/bin/python"
if [ -n "${GORAE_MUTATION_FIRST:-}" ]; then
  GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true \
    timeout "${GORAE_MUTATION_FIRST_HANG:-30}" "$py" -B -m pytest -x -q -p no:cacheprovider $GORAE_MUTATION_FIRST \
    || exit 1
fi
GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true \
  "$py" -B -m pytest -x -q -p no:cacheprovider \
  ${GORAE_MUTATION_TESTS:-tests/unit/test_archive_*.py} "$@" \
  || exit 1
