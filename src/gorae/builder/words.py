"""Dockerfile word processing: `$v`, `${v}`, `${v:-d}`, `${v:+a}` (and `-`/`+` without the colon), quotes and
the escape character, as the classic builder's shell lexer does. Pure functions; never runs a shell."""

from __future__ import annotations

from collections.abc import Mapping

from gorae.errors import InvalidParameter


def _name_end(s: str, i: int) -> int:
    j = i
    while j < len(s) and (s[j].isalnum() or s[j] == "_"):
        j += 1
    return j


def _braced(s: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    """`s[i]` is just after `${`: the value and the index after the closing brace."""
    j = _name_end(s, i)
    name = s[i:j]
    if not name:
        raise InvalidParameter(f"failed to process \"{s}\": missing ':' in substitution")
    if j >= len(s):
        raise InvalidParameter(f"failed to process \"{s}\": missing '}}'")
    if s[j] == "}":
        return env.get(name, ""), j + 1
    op = s[j]
    colon = op == ":"
    if colon:
        j += 1
        if j >= len(s):
            raise InvalidParameter(f"failed to process \"{s}\": missing '}}'")
        op = s[j]
    if op not in "-+?":
        raise InvalidParameter(f'failed to process "{s}": unsupported modifier ({op}) in substitution')
    word, k = _word_until_brace(s, j + 1, env, escape)
    set_ = name in env and (env[name] != "" or not colon)
    if op == "-":
        return (env[name] if set_ else word), k
    if op == "+":
        return (word if set_ else ""), k
    if not set_:
        raise InvalidParameter(f'failed to process "{s}": {name}: {word or "is not allowed to be unset"}')
    return env[name], k


_NO_DOUBLE_QUOTE = "unexpected end of statement while looking for matching double-quote"


def _word_until_brace(s: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    return _until(s, i, env, escape, "}", None, "missing '}'")


def _until(
    s: str, i: int, env: Mapping[str, str], escape: str, close: str, escapable: str | None, missing: str
) -> tuple[str, int]:
    """The text from `s[i]` to the `close` character (variables expanded) and the index after it; `escape`
    takes the next character literally (only one of `escapable`, unless None: any). No `close`: `missing`."""
    out: list[str] = []
    while i < len(s):
        c = s[i]
        if c == close:
            return "".join(out), i + 1
        if c == escape and i + 1 < len(s) and (escapable is None or s[i + 1] in escapable):
            out.append(s[i + 1])
            i += 2
        elif c == "$":
            v, i = _dollar(s, i + 1, env, escape)
            out.append(v)
        else:
            out.append(c)
            i += 1
    raise InvalidParameter(f'failed to process "{s}": {missing}')


def _dollar(s: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    """`s[i]` is just after `$`."""
    if i < len(s) and s[i] == "{":
        return _braced(s, i + 1, env, escape)
    j = _name_end(s, i)
    if j == i:
        return "$", i
    return env.get(s[i:j], ""), j


def _process(s: str, env: Mapping[str, str], escape: str, split: bool) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    has = False
    i = 0
    while i < len(s):
        c = s[i]
        if split and c in " \t\r\n":
            if has:
                words.append("".join(cur))
                cur, has = [], False
            i += 1
            continue
        has = True
        if c == escape:
            if i + 1 < len(s):
                cur.append(s[i + 1])
            i += 2
        elif c == "'":
            end = s.find("'", i + 1)
            if end < 0:
                raise InvalidParameter(
                    f'failed to process "{s}": unexpected end of statement while looking for matching single-quote'
                )
            cur.append(s[i + 1 : end])
            i = end + 1
        elif c == '"':
            quoted, i = _until(s, i + 1, env, escape, '"', '"$' + escape, _NO_DOUBLE_QUOTE)
            cur.append(quoted)
        elif c == "$":
            v, i = _dollar(s, i + 1, env, escape)
            cur.append(v)
        else:
            cur.append(c)
            i += 1
    if has:
        words.append("".join(cur))
    return words


def process_word(s: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word: variables expanded, quotes and escapes removed (ENV values, COPY paths, WORKDIR, ...)."""
    return "".join(_process(s, env, escape, split=False))


def process_words(s: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Whitespace-separated words (outside quotes), each processed (EXPOSE, VOLUME, ...)."""
    return _process(s, env, escape, split=True)
