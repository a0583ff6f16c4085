#!/bin/sh
# Re-check mutants of one module by hand, outside mutmut's cache logic (docs/mutation.md: mutmut 2.5.1
# skips mutants on a line whose text occurs twice in the module, keeping their old status):
#   scripts/mutation-check.sh chunks 206 239 240
#   scripts/mutation-check.sh src/gorae/container/state.py survivors   # every mutant of the module mutmut
#                                                   # left survived, suspicious or untested
# Copies src/, tests/ and scripts/ of this checkout and .mutmut-cache into a temporary directory, applies
# each mutant there (`mutmut apply ID`), runs scripts/mutation-pytest.sh over the module's wider test set
# (check_tests in scripts/mutation-env.sh: e.g. every archive test for an archive module, where mutation.sh
# may run fewer; GORAE_MUTATION_TESTS overrides it), prints
# "ID killed|SURVIVED" with line, diff and the first failing test. Never touches this checkout; may run
# beside a mutmut run.
set -u
mod=${1:?module name, e.g. chunks, or a path}; shift
cd "$(dirname "$0")/.."
here=$(pwd)
venv=${GORAE_VENV:-/opt/gorae/venv}
. scripts/mutation-env.sh
export GORAE_MUTATION_FIRST="${GORAE_MUTATION_FIRST-$first}"
export GORAE_MUTATION_TESTS="${GORAE_MUTATION_TESTS:-$check_tests}"
ids="$*"
if [ "$ids" = survivors ]; then
  ids=$("$venv/bin/python" - "$here/.mutmut-cache" "$src" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute(
    "SELECT m.id FROM mutant m JOIN line l ON m.line = l.id JOIN sourcefile s ON l.sourcefile = s.id"
    " WHERE s.filename = ? AND m.status IN ('bad_survived', 'ok_suspicious', 'untested') ORDER BY m.id",
    (sys.argv[2],),
)
print(" ".join(str(r[0]) for r in rows))
PY
)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM  # (a trap alone would run and carry on with the next mutant)
cp -r src tests scripts "$tmp/"
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
"$venv/bin/python" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))" \
  "$here/.mutmut-cache" "$tmp/.mutmut-cache"
cd "$tmp"
for id in $ids; do
  cp "$here/$src" "$src"
  "$venv/bin/mutmut" apply "$id" >/dev/null 2>&1 || { echo "$id: mutmut apply failed"; continue; }
  d=$(diff "$here/$src" "$src" | grep -E '^([0-9]|[<>])' | tr -s ' ' | tr '\n' ' ')
  # mutmut finds a mutant by its line's text *and number*: after an edit above it, it may apply nothing
  [ -n "$d" ] || { echo "$id: not applied (its line moved since the run: check against the run's source)"; continue; }
  timeout "${GORAE_MUTATION_HANG:-90}" sh scripts/mutation-pytest.sh $deselect >out.txt 2>&1
  rc=$?
  case $rc in 0) st=SURVIVED ;; 124) st="killed (hung)" ;; *) st=killed ;; esac
  echo "$id $st: $d :: $(grep -E '^(FAILED|ERROR)' out.txt | head -1 | cut -c1-110)"
done
