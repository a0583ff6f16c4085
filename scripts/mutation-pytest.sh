#!/bin/sh
# The test command scripts/mutation.sh gives mutmut: the archive unit tests, quick and repeatable
# (GORAE_MUTATION=1: a few derandomized hypothesis examples), no bytecode, and any failure reported as
# exit status 1 — mutmut 2.x counts only status 1 as a failed run, so a mutant that breaks the import
# (pytest's status 2, a collection error) would otherwise "survive".
# GORAE_MUTATION_MODULE (set by mutation.sh and mutation-check.sh) narrows the run to the test files that
# call the module's code, directly or through its callers in gorae/archive (docs/mutation.md, "Which tests");
# the module's own test file first, so `-x` stops a killed mutant early. Unknown or unset: every archive test.
cd "$(dirname "$0")/.."
t=tests/unit/test_archive_
case ${GORAE_MUTATION_MODULE:-} in
  changes) files="${t}changes.py ${t}init_artifacts.py ${t}overlay.py ${t}tree.py" ;;
  tarwriter) files="${t}tarwriter.py ${t}export.py ${t}apply.py ${t}copy.py ${t}fuzz.py ${t}init_artifacts.py
    ${t}mounts.py ${t}overlay.py" ;;
  inroot) files="${t}inroot.py ${t}pathstat.py ${t}mounts.py ${t}breakouts.py ${t}exact.py ${t}apply.py ${t}copy.py
    ${t}export.py ${t}fuzz.py ${t}names.py ${t}overlay.py ${t}init_artifacts.py ${t}tree.py" ;;
  tree) files="${t}tree_exact.py ${t}tree.py ${t}apply.py ${t}breakouts.py ${t}copy.py ${t}exact.py ${t}fuzz.py ${t}mounts.py
    ${t}names.py ${t}overlay.py" ;;
  *) files="${t}*.py" ;;
esac
# A temporary root of this run's own for pytest's tmp_path directories: pytest sessions that share
# /tmp/pytest-of-<user> (other mutants' runs, other jobs) remove each other's numbered directories at exit,
# and a session whose directory went meanwhile ends with an error, a false "killed". With GORAE_MUTATION set
# the suite's conftest also leaves that removal to this script: it uses archive.tree.remove_tree, the code
# under test when tree.py is mutated, and only a test may decide whether a mutant is killed.
tmproot=$(mktemp -d "${TMPDIR:-/tmp}/gorae-mutation.XXXXXX")
trap 'rm -rf --one-file-system "$tmproot"' EXIT
trap 'exit 1' INT TERM HUP
GORAE_MUTATION=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=src CI=true PYTEST_DEBUG_TEMPROOT="$tmproot" \
  "${GORAE_VENV:-/opt/gorae/venv}/bin/python" -B -m pytest -x -q -p no:cacheprovider $files "$@"
[ "$?" = 0 ] || exit 1
