"""Placement constraints (`node.role==manager`, `node.labels.zone!=b`, ...): swarmkit's syntax, its parse
errors, and whether a node (its Docker-shaped document) satisfies them.

Keys: node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> (the
node's Spec labels), engine.labels.<name> (its engine's labels). Values compare case-insensitively; a key
outside these never matches; a label the node lacks satisfies only `!=`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
_VALUE = re.compile(r"^[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$", re.IGNORECASE)


@dataclass(frozen=True)
class Constraint:
    key: str
    equal: bool  # == (True) or != (False)
    value: str

    def matches(self, node: dict[str, Any]) -> bool:
        found = _node_value(node, self.key)
        if found is _UNKNOWN:
            return False
        if found is None:  # a label the node does not have
            return not self.equal
        same = str(found).lower() == self.value.lower()
        return same if self.equal else not same


_UNKNOWN: Any = object()


def _node_value(node: dict[str, Any], key: str) -> Any:
    spec = node.get("Spec") or {}
    desc = node.get("Description") or {}
    k = key.lower()
    if k == "node.id":
        return node.get("ID", "")
    if k == "node.hostname":
        return desc.get("Hostname", "")
    if k == "node.role":
        return spec.get("Role", "")
    if k == "node.platform.os":
        return (desc.get("Platform") or {}).get("OS", "")
    if k == "node.platform.arch":
        return (desc.get("Platform") or {}).get("Architecture", "")
    if k.startswith("node.labels."):
        return (spec.get("Labels") or {}).get(key[len("node.labels.") :])
    if k.startswith("engine.labels."):
        return ((desc.get("Engine") or {}).get("Labels") or {}).get(key[len("engine.labels.") :])
    return _UNKNOWN


def parse_constraints(exprs: list[str]) -> list[Constraint]:
    """Parse each `key==value` / `key!=value`; ValueError with swarmkit's text otherwise."""
    out = []
    for expr in exprs:
        eq, ne = expr.find("=="), expr.find("!=")
        if eq < 0 and ne < 0:
            raise ValueError("constraint expected one operator from ==, !=")
        if ne >= 0 and (eq < 0 or ne < eq):
            key, value, equal = expr[:ne], expr[ne + 2 :], False
        else:
            key, value, equal = expr[:eq], expr[eq + 2 :], True
        key, value = key.strip(), value.strip()
        if not _KEY.match(key):
            raise ValueError(f"key '{key}' is invalid")
        if not _VALUE.match(value):
            raise ValueError(f"value '{value}' is invalid")
        out.append(Constraint(key, equal, value))
    return out


def satisfied(constraints: list[Constraint], node: dict[str, Any]) -> bool:
    return all(c.matches(node) for c in constraints)
