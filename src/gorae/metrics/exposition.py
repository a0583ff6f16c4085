"""The Prometheus text format (0.0.4), written fast: the bytes `prometheus_client.generate_latest` writes
for the same registry (tests/unit/test_metrics.py compares them), at a fraction of its cost.

prometheus-client escapes and validates every label name and value of every sample one call at a time, which
with 200 containers (~5000 samples) took most of a 100 ms scrape budget; here each distinct label value is
escaped once per scrape and names, which our collectors make valid, are written as they are. Families whose
names need UTF-8 quoting are handed to prometheus-client.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from gorae.metrics.containers import RenderedFamily

_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").fullmatch
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").fullmatch
_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class _Slow(Exception):
    """A name that needs prometheus-client's escaping."""


class _OneFamily:
    """A registry of one already-collected family (for the slow path)."""

    def __init__(self, fam: object) -> None:
        self._fam = fam

    def collect(self) -> list[object]:
        return [self._fam]


def text_format(registry: CollectorRegistry) -> bytes:
    """`registry` in the Prometheus text format 0.0.4."""
    out: list[str] = []
    escaped: dict[str, str] = {}
    for fam in registry.collect():
        if isinstance(fam, RenderedFamily):
            out.append(fam.text())  # the container families: written as they were collected
            continue
        name, mtype = fam.name, fam.type
        if mtype == "counter":
            name += "_total"
        elif mtype == "info":
            name += "_info"
        mtype = _TYPES.get(mtype, mtype)
        if not _LEGACY_NAME(name):
            out.append(generate_latest(_OneFamily(fam)).decode())  # type: ignore[arg-type]
            continue
        start = len(out)
        try:
            doc = fam.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {doc}\n")
            out.append(f"# TYPE {name} {mtype}\n")
            extra: dict[str, list[str]] = {}
            for s in fam.samples:
                labels = s.labels
                if labels:
                    parts = []
                    for k in sorted(labels):
                        if not _LEGACY_LABEL(k):
                            raise _Slow
                        v = labels[k]
                        e = escaped.get(v)
                        if e is None:
                            e = escaped[v] = _escape(v)
                        parts.append(f'{k}="{e}"')
                    text = "{" + ",".join(parts) + "}"
                else:
                    text = ""
                if not _LEGACY_NAME(s.name):
                    raise _Slow
                ts = "" if s.timestamp is None else f" {int(float(s.timestamp) * 1000):d}"
                line = f"{s.name}{text} {floatToGoString(s.value)}{ts}\n"  # type: ignore[no-untyped-call]
                for suffix in _OM_SUFFIXES:
                    if s.name == fam.name + suffix:
                        extra.setdefault(suffix, []).append(line)
                        break
                else:
                    out.append(line)
            for suffix, lines in sorted(extra.items()):
                out.append(f"# HELP {fam.name}{suffix} {doc}\n")
                out.append(f"# TYPE {fam.name}{suffix} gauge\n")
                out.extend(lines)
        except _Slow:
            del out[start:]
            out.append(generate_latest(_OneFamily(fam)).decode())  # type: ignore[arg-type]
    return "".join(out).encode()
