# Sourced by scripts/mutation.sh and scripts/mutation-check.sh (docs/mutation.md): from the module argument
# ($1: an archive module's short name such as `apply`, or a path such as src/gorae/container/state.py) sets
#   src                    the file mutmut mutates
#   GORAE_MUTATION_TESTS   the unit test files that cover it (read by scripts/mutation-pytest.sh)
#   deselect               pytest --deselect options for slow tests that cannot kill its mutants
# A module's test set is every unit test file that imports it, directly or through its only users
# (grep tests/unit); the survivors are re-checked against a wider set (docs/mutation.md).
case $1 in
  */*) src=$1 ;;
  *) src=src/gorae/archive/$1.py ;;
esac
[ -f "$src" ] || { echo "no $src" >&2; exit 2; }
deselect=""
case $src in
  src/gorae/archive/*)
    tests="tests/unit/test_archive_*.py"
    # The deep-tree tests take seconds each; they only matter for tree.py's walker.
    [ "$src" = src/gorae/archive/tree.py ] || deselect="--deselect tests/unit/test_archive_tree.py::test_layer_replacing_a_deep_tree
      --deselect tests/unit/test_archive_tree.py::test_copy_of_a_deep_tree
      --deselect tests/unit/test_archive_tree.py::test_a_recursive_walk_fails_where_ours_does_not" ;;
  src/gorae/container/state.py)
    tests="tests/unit/test_container_state.py tests/unit/test_container_state_docker.py
      tests/unit/test_container_state_attach.py tests/unit/test_container_name_reservation.py
      tests/unit/test_health.py tests/unit/test_container_lifecycle.py" ;;
  src/gorae/cli/gotemplate/*)
    tests="tests/unit/test_gotemplate*.py tests/unit/test_formatting.py" ;;
  *) echo "no test set for $src: add one to scripts/mutation-env.sh" >&2; exit 2 ;;
esac
GORAE_MUTATION_TESTS=${GORAE_MUTATION_TESTS:-$(echo $tests)}
export GORAE_MUTATION_TESTS
deselect=$(echo $deselect)
