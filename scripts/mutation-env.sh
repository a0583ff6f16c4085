# Sourced by scripts/mutation.sh and scripts/mutation-check.sh (docs/mutation.md): from the module argument
# ($mod: an archive module's short name such as `apply`, or a path such as src/gorae/container/state.py) sets
#   src          the file mutmut mutates
#   tests        the unit test files mutation.sh runs for each mutant: those that reach the module's code,
#                directly or through its callers, its own test file first (`-x` stops a killed mutant early)
#   check_tests  the wider set mutation-check.sh judges a survivor against
#   first        the module's own test file, run first and alone with a short time limit
#   deselect     pytest --deselect options for slow tests that cannot kill its mutants
# GORAE_MUTATION_TESTS, when set, overrides both sets (scripts/mutation-pytest.sh reads it).
case $mod in
  */*) src=$mod ;;
  *) src=src/gorae/archive/$mod.py ;;
esac
[ -f "$src" ] || { echo "no $src" >&2; exit 2; }
deselect=""
t=tests/unit/test_archive_
case $src in
  src/gorae/archive/*)
    check_tests="${t}*.py"
    case $src in
      */changes.py) tests="${t}changes.py ${t}init_artifacts.py ${t}overlay.py ${t}tree.py" ;;
      */tarwriter.py) tests="${t}tarwriter.py ${t}export.py ${t}apply.py ${t}copy.py ${t}fuzz.py
        ${t}init_artifacts.py ${t}mounts.py ${t}overlay.py" ;;
      */inroot.py) tests="${t}inroot.py ${t}pathstat.py ${t}mounts.py ${t}breakouts.py ${t}exact.py ${t}apply.py
        ${t}copy.py ${t}export.py ${t}fuzz.py ${t}names.py ${t}overlay.py ${t}init_artifacts.py ${t}tree.py" ;;
      */tree.py) tests="${t}tree_exact.py ${t}tree.py ${t}apply.py ${t}breakouts.py ${t}copy.py ${t}exact.py ${t}fuzz.py
        ${t}mounts.py ${t}names.py ${t}overlay.py" ;;
      *) tests="${t}*.py" ;;
    esac
    # The deep-tree tests take seconds each; they only matter for tree.py's walker.
    [ "$src" = src/gorae/archive/tree.py ] || deselect="--deselect ${t}tree.py::test_layer_replacing_a_deep_tree
      --deselect ${t}tree.py::test_copy_of_a_deep_tree
      --deselect ${t}tree.py::test_a_recursive_walk_fails_where_ours_does_not" ;;
  src/gorae/container/state.py)
    # every unit test importing gorae.container.state (2-3 s in all)
    tests="tests/unit/test_container_state.py tests/unit/test_container_state_docker.py
      tests/unit/test_container_state_attach.py tests/unit/test_container_name_reservation.py
      tests/unit/test_health.py tests/unit/test_container_lifecycle.py"
    # and those reaching it through the container service
    check_tests="$tests tests/unit/test_store_diskfull.py tests/unit/test_api_system.py tests/unit/test_metrics.py" ;;
  src/gorae/gotemplate/*)
    # every unit test file reaching the engine, the quickest and most-killing first: the engine's own tests
    # (1 s), the golden cases (1 s), docker's formatters, the hypothesis properties (8 derandomized examples
    # each under GORAE_MUTATION=1); test_formatting.py only imports it. One pytest run, no first stage: a
    # survivor costs about 2 s of CPU instead of 3.5 (the engine's step limits make loops rare; the watchdog
    # ends one)
    tests="tests/unit/test_gotemplate.py tests/unit/test_gotemplate_exact.py tests/unit/test_gotemplate_golden.py
      tests/unit/test_cli_fidelity.py tests/unit/test_gotemplate_fuzz.py tests/unit/test_formatting.py"
    # survivors are judged with the start-up test too (the engine imports no `typing`: 2 s of subprocesses)
    check_tests="$tests tests/unit/test_cli_startup.py" ;;
  *) echo "no test set for $src: add one to scripts/mutation-env.sh" >&2; exit 2 ;;
esac
# the module's own test file, run first (scripts/mutation-pytest.sh)
case $src in
  src/gorae/archive/*) first=${t}$(basename "$src");;
  src/gorae/container/state.py) first=tests/unit/test_container_state_docker.py ;;
  *) first="" ;;
esac
[ -f "$first" ] || first=""
tests=$(echo $tests)
check_tests=$(echo $check_tests)
deselect=$(echo $deselect)
