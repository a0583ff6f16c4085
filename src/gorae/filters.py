"""List filters (a leaf): the `filters=` query value of the Engine API, parsed and matched once for every resource.

Semantics are moby's `filters.Args`: a filter is a key with a set of values; a key given several values matches
when any value matches (`exact`, `fuzzy`, `regex`), except labels, where every `label=` value must hold
(`match_labels`). A key that is absent matches everything. Clients send two encodings — the current
`{"key": {"value": true}}` and the legacy `{"key": ["value"]}` — and both parse to the same thing.

`Filters` is a dict of key → list of values (so code that reads `filters.get("key", [])` and JSON encoding keep
working), with moby's matching methods. It never raises anything but `InvalidParameter`, with dockerd's wording ("invalid filter 'key'").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gorae.errors import InvalidParameter

_TRUE = ("true", "1")
_FALSE = ("false", "0")


class Filters(dict[str, list[str]]):
    """Filter keys → values, in the order the client sent them; keys without values are dropped."""

    def __init__(self, args: Mapping[str, Iterable[str]] | None = None) -> None:
        super().__init__()
        for key, values in (args or {}).items():
            vals = list(values)
            if vals:
                self[key] = vals

    # -- parsing ------------------------------------------------------------------------------

    @classmethod
    def parse(cls, raw: str | None) -> Filters:
        """The `filters` query parameter (JSON); empty or absent → no filters; bad JSON → InvalidParameter."""
        if raw is None or raw.strip() == "":
            return cls()
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid filter: {e}") from None
        return cls.from_json(doc)

    @classmethod
    def from_json(cls, doc: Any) -> Filters:
        """A decoded filters document (either encoding); `None` → no filters."""
        if doc is None or doc == {}:
            return cls()
        if not isinstance(doc, dict):
            raise InvalidParameter("invalid filter: expected a JSON object")
        out: dict[str, list[str]] = {}
        for key, value in doc.items():
            if isinstance(value, dict):
                out[key] = [str(v) for v in value]  # moby keeps a value whatever its bool
            elif isinstance(value, list):
                out[key] = [v if isinstance(v, str) else json.dumps(v) for v in value]
            elif isinstance(value, str):
                out[key] = [value]
            else:
                raise InvalidParameter(f"invalid filter: bad value for {key!r}")
        return cls(out)

    def to_json(self) -> str:
        """The current wire encoding, `{"key": {"value": true}}`."""
        return json.dumps({k: dict.fromkeys(v, True) for k, v in self.items()})

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str, default: list[str] | None = None) -> list[str]:  # type: ignore[override]
        """The values of `key`; `default` (or an empty list) when it was not given."""
        found = super().get(key)
        if found is not None:
            return found
        return default if default is not None else []

    def contains(self, key: str) -> bool:
        return key in self

    # -- checking -----------------------------------------------------------------------------

    def validate(self, accepted: Iterable[str]) -> None:
        """Refuse a key this resource does not know, as dockerd does."""
        allowed = set(accepted)
        for key in self:
            if key not in allowed:
                raise InvalidParameter(f"invalid filter '{key}'")

    # -- matching -----------------------------------------------------------------------------

    def exact(self, key: str, value: str) -> bool:
        """True when `key` is absent or one of its values equals `value`."""
        wanted = dict.get(self, key)
        return wanted is None or value in wanted

    def fuzzy(self, key: str, value: str) -> bool:
        """True when `key` is absent or `value` starts with one of its values (ids, names)."""
        wanted = dict.get(self, key)
        return wanted is None or any(value.startswith(w) for w in wanted)

    def regex(self, key: str, value: str) -> bool:
        """True when `key` is absent or one of its values, as a regular expression, is found in `value`
        (an invalid expression matches as a plain substring)."""
        wanted = dict.get(self, key)
        return wanted is None or any(_search(w, value) for w in wanted)

    def match_labels(self, labels: Mapping[str, str] | None, key: str = "label") -> bool:
        """True when every `key` value (`k` or `k=v`) holds for `labels`; True when `key` is absent."""
        wanted = dict.get(self, key)
        if wanted is None:
            return True
        return all(label_matches(labels or {}, expr) for expr in wanted)

    def bool_or_default(self, key: str, default: bool) -> bool:
        """A boolean filter (`dangling`, ...): `default` when absent; InvalidParameter unless true/false/1/0."""
        values = dict.get(self, key)
        if not values:
            return default
        result = default
        for v in values:
            low = v.lower()
            if low in _TRUE:
                result = True
            elif low in _FALSE:
                result = False
            else:
                raise InvalidParameter(f"invalid filter '{key}={v}'")
        return result


def label_matches(labels: Mapping[str, str], expr: str) -> bool:
    """`k` holds when the label exists; `k=v` when it has that value."""
    key, sep, value = expr.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return pattern in value
