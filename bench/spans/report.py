"""Summarise a GORAE_SPANS file: count, median and total microseconds per span name."""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    by: dict[str, list[int]] = defaultdict(list)
    with open(path) as f:
        for line in f:
            _, dur, name = line.rstrip("\n").split(" ", 2)
            by[name].append(int(dur))
    print(f"{'span':<60}{'n':>6}{'median ms':>11}{'total ms':>10}")
    for name, ds in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        print(f"{name:<60}{len(ds):>6}{statistics.median(ds) / 1000:>11.2f}{sum(ds) / 1000:>10.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
