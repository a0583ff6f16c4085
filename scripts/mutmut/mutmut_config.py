"""mutmut 2.x hook (scripts/mutation.sh puts this directory on mutmut's PYTHONPATH).

- GORAE_MUTATION_LINES (e.g. "85,88,150-151,399-": 1-based lines and inclusive ranges, open at the end):
  mutants on other lines of the module are skipped (status "skipped", not run). mutmut 2.5.1 itself only
  mutates whole files.
- GORAE_MUTATION_SAMPLE ("K/N:SEED", e.g. "1/4:16"): a fixed random sample of the mutants: a mutant is kept
  when sha256("SEED:LINE:INDEX") taken as an integer is below K/N of the range (LINE its 1-based line, INDEX
  its number among the mutants of that line). The same source and SEED always pick the same mutants, chosen
  before any is run, independently of one another; the others are "skipped".
- Duplicate lines: mutmut 2.5.1's get_cached_mutation_statuses looks a mutant's cached status up by its
  line's *text*, so a mutant on the second of two identical lines got the first one's status (docs/mutation.md).
  Replaced here by the same function keyed by text and line number, as mutmut's other lookups are.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any


def _wanted(line: int) -> bool:
    spec = os.environ.get("GORAE_MUTATION_LINES", "")
    if not spec:
        return True
    for part in spec.split(","):
        lo, sep, hi = part.partition("-")
        if not sep:
            if line == int(lo):
                return True
        elif int(lo) <= line <= (int(hi) if hi else line):
            return True
    return False


def sampled(line: int, index: int, spec: str) -> bool:
    """Whether the mutant `index` of 1-based `line` is in the sample `spec` ("K/N:SEED"; empty: all)."""
    if not spec:
        return True
    frac, _, seed = spec.partition(":")
    k, _, n = frac.partition("/")
    h = int.from_bytes(hashlib.sha256(f"{seed}:{line}:{index}".encode()).digest()[:8], "big")
    return h * int(n) < int(k) << 64


def pre_mutation(context: Any) -> None:
    mid = context.mutation_id
    line = mid.line_number + 1
    if not _wanted(line) or not sampled(line, mid.index, os.environ.get("GORAE_MUTATION_SAMPLE", "")):
        context.skip = True


def init() -> None:
    """Called by `mutmut run` before it queues the mutants (not at import: mutmut imports this file
    halfway through its own __init__)."""
    from mutmut import UNTESTED, cache
    from pony.orm import db_session

    @cache.init_db
    @db_session
    def get_cached_mutation_statuses(filename: str, mutations: Any, hash_of_tests: str) -> dict[Any, str]:
        sourcefile = cache.SourceFile.get(filename=filename)
        assert sourcefile
        result = {}
        for mid in mutations:
            line = cache.Line.get(sourcefile=sourcefile, line=mid.line, line_number=mid.line_number)
            assert line
            mutant = cache.Mutant.get(line=line, index=mid.index) or cache.get_or_create(
                cache.Mutant, line=line, index=mid.index, defaults=dict(status=UNTESTED)
            )
            status = mutant.status
            if status != cache.OK_KILLED and (
                mutant.tested_against_hash != hash_of_tests
                or cache.NO_TESTS_FOUND in (mutant.tested_against_hash, hash_of_tests)
            ):
                status = UNTESTED
            result[mid] = status
        return result

    cache.get_cached_mutation_statuses = get_cached_mutation_statuses
