#!/bin/sh
# Mutation-test one module with mutmut 2.x (docs/mutation.md).
#   scripts/mutation.sh apply                            # src/gorae/archive/apply.py
#   scripts/mutation.sh src/gorae/container/state.py     # any module with a test set in scripts/mutation-env.sh
#   scripts/mutation.sh apply 85,88,150-151,399-         # only mutants on these lines (the others: "skipped")
#   GORAE_MUTATION_SAMPLE=1/4:16 scripts/mutation.sh src/gorae/gotemplate/exec.py   # a fixed random quarter
#                                                        # (seed 16) of the mutants (scripts/mutmut/mutmut_config.py)
# mutmut 2.x rewrites the module in place while it runs and restores it at the end; the script
# checks `git diff` afterwards so a mutated file is never left behind. Results: `mutmut results`.
set -eu
mod=${1:?module: an archive module name such as apply, or a path such as src/gorae/container/state.py}
cd "$(dirname "$0")/.."
venv=${GORAE_VENV:-/opt/gorae/venv}
. scripts/mutation-env.sh
export GORAE_MUTATION_FIRST="${GORAE_MUTATION_FIRST-$first}"
export GORAE_MUTATION_TESTS="${GORAE_MUTATION_TESTS:-$tests}"
GORAE_MUTATION_LINES=${2:-}
export GORAE_MUTATION_LINES
git diff --quiet -- src || { echo "src/ has uncommitted changes: commit or stash first" >&2; exit 2; }
# No __pycache__ (and -B in mutation-pytest.sh): mutmut rewrites the module in place, and a same-size mutant written in the same
# second as the previous one would otherwise run that one's stale .pyc (false kills and false survivors).
find src -name __pycache__ -prune -exec rm -rf {} +
runner="scripts/mutation-pytest.sh $deselect"
rc=0
# PYTHONPATH: mutmut imports scripts/mutmut/mutmut_config.py (the line filter); the test runs set their own.
PYTHONPATH=scripts/mutmut "$venv/bin/mutmut" run --paths-to-mutate "$src" --tests-dir tests/unit --runner "$runner" \
  --test-time-multiplier 3 --test-time-base 20 --simple-output --no-progress &
mm=$!
# mutmut 2.5.1's own timeout kills the runner's shell but not its pytest, and then waits for that pytest's
# output for ever: a mutant that loops (`while not x` -> `while x`) hangs the run. This watchdog ends a test
# run of this checkout older than $GORAE_MUTATION_HANG seconds (default 90; on a loaded machine a clean run can
# take longer: raise it, and re-check every mutant the watchdog names with scripts/mutation-check.sh).
here=$(pwd)
hang=${GORAE_MUTATION_HANG:-90}
(
  while kill -0 "$mm" 2>/dev/null; do
    for q in $(pgrep -f "pytest -x -q -p no:cacheprovider tests/unit/test_"); do
      [ "$(readlink "/proc/$q/cwd")" = "$here" ] || continue
      et=$(ps -o etimes= -p "$q" | tr -d ' ')
      [ -n "$et" ] && [ "$et" -gt "$hang" ] && {
        # mutmut counts the run killed (or "suspicious" when slow): name the mutant so it can be re-checked
        echo "watchdog: test run $q hung ${et}s: killed; the mutant: $(git diff -U0 -- "$src" | grep '^[-+][^-+]' | tr '\n' ' ')" >&2
        kill "$q"
      }
    done
    sleep 10
  done
) &
wait "$mm" || rc=$?
git diff --quiet -- src || { echo "mutmut left $src mutated: restoring" >&2; git checkout -- "$src"; }
rm -f "$src.bak"  # mutmut's copy of the original
"$venv/bin/mutmut" results || true
exit $rc
