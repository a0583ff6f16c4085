#!/bin/sh
# The test command scripts/mutation.sh gives mutmut: the module's unit tests ($GORAE_MUTATION_TESTS, set by
# scripts/mutation-env.sh; default the archive ones), quick and repeatable (GORAE_MUTATION=1: a few
# derandomized hypothesis examples), no bytecode, and any failure reported as exit status 1 — mutmut 2.x
# counts only status 1 as a failed run, so a mutant that breaks the import (pytest's status 2, a collection
# error) would otherwise "survive".
cd "$(dirname "$0")/.."
GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true \
  "${GORAE_VENV:-/opt/gorae/venv}/bin/python" -B -m pytest -x -q -p no:cacheprovider \
  ${GORAE_MUTATION_TESTS:-tests/unit/test_archive_*.py} "$@" \
  || exit 1
