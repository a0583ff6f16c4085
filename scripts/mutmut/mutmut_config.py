"""mutmut 2.x hook (scripts/mutation.sh puts this directory on mutmut's PYTHONPATH): with
GORAE_MUTATION_LINES set (e.g. "85,88,150-151,399-": 1-based lines and inclusive ranges, open at the end),
mutants on other lines of the module are skipped (status "skipped", not run). mutmut 2.5.1 itself only
mutates whole files."""

from __future__ import annotations

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


def pre_mutation(context: Any) -> None:
    if not _wanted(context.mutation_id.line_number + 1):
        context.skip = True
