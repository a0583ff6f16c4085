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
# A temporary root of this run's own for pytest's tmp_path directories: pytest sessions that share
# /tmp/pytest-of-<user> (other mutants' runs, other jobs) remove each other's numbered directories at exit,
# and a session whose directory went meanwhile ends with an error, a false "killed". With GORAE_MUTATION set
# the suite's conftest also leaves that removal to this script: it uses archive.tree.remove_tree, the code
# under test when tree.py is mutated, and only a test may decide whether a mutant is killed.
PYTEST_DEBUG_TEMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/gorae-mutation.XXXXXX")
export PYTEST_DEBUG_TEMPROOT
trap 'rm -rf --one-file-system "$PYTEST_DEBUG_TEMPROOT"' EXIT
trap 'exit 1' INT TERM HUP
if [ -n "${GORAE_MUTATION_FIRST:-}" ]; then
  GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true \
    timeout "${GORAE_MUTATION_FIRST_HANG:-30}" "$py" -B -m pytest -x -q -p no:cacheprovider $GORAE_MUTATION_FIRST \
    || exit 1
fi
GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true \
  "$py" -B -m pytest -x -q -p no:cacheprovider \
  ${GORAE_MUTATION_TESTS:-tests/unit/test_archive_*.py} "$@" \
  || exit 1
