#!/bin/sh
# Re-check mutants of one module by hand, outside mutmut's cache logic (docs/mutation.md: mutmut 2.5.1
# skips mutants on a line whose text occurs twice in the module, keeping their old status):
#   scripts/mutation-check.sh chunks 206 239 240
# Copies src/, tests/ and scripts/ of this checkout and .mutmut-cache into a temporary directory, applies
# each mutant there (`mutmut apply ID`), runs scripts/mutation-pytest.sh, prints "ID killed|SURVIVED"
# with the diff and the first failing test. Never touches this checkout; may run beside a mutmut run.
# Runs every archive test, deep-tree tests included (no GORAE_MUTATION_MODULE narrowing): a mutant that
# survived mutation.sh's narrowed run is judged against the whole archive suite.
set -u
mod=${1:?module name, e.g. chunks}; shift
cd "$(dirname "$0")/.."
here=$(pwd)
venv=${GORAE_VENV:-/opt/gorae/venv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM  # (a trap alone would run and carry on with the next mutant)
cp -r src tests scripts "$tmp/"
"$venv/bin/python" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))" \
  "$here/.mutmut-cache" "$tmp/.mutmut-cache"
cd "$tmp"
f=src/gorae/archive/$mod.py
for id in "$@"; do
  cp "$here/$f" "$f"
  "$venv/bin/mutmut" apply "$id" >/dev/null 2>&1 || { echo "$id: mutmut apply failed"; continue; }
  d=$(diff "$here/$f" "$f" | grep '^[<>]' | tr -s ' ' | tr '\n' ' ')
  # mutmut finds a mutant by its line's text *and number*: after an edit above it, it may apply nothing
  [ -n "$d" ] || { echo "$id: not applied (its line moved since the run: check against the run's source)"; continue; }
  timeout "${GORAE_MUTATION_HANG:-90}" sh scripts/mutation-pytest.sh >out.txt 2>&1
  rc=$?
  case $rc in 0) st=SURVIVED ;; 124) st="killed (hung)" ;; *) st=killed ;; esac
  echo "$id $st: $d :: $(grep -E '^(FAILED|ERROR)' out.txt | head -1 | cut -c1-110)"
done
