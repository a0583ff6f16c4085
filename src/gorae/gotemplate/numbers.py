"""Template literals: Go's number syntax (strconv.ParseInt/ParseUint/ParseFloat with base 0) and
string/character unquoting (strconv.Unquote, UnquoteChar). Errors are ValueError with Go's text."""

from __future__ import annotations

from .nodes import NumberNode

__all__ = ["parse_number", "unquote", "unquote_char"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _goq(s: str) -> str:
    from .gofmt import quote

    return quote(s)


def _underscore_ok(s: str) -> bool:
    saw = "^"
    i = 0
    if s[:1] in ("-", "+"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _parse_uint(s: str) -> int | None:
    """strconv.ParseUint(s, 0, 64)."""
    if not s:
        return None
    orig = s
    base = 10
    if s[0] == "0":
        if len(s) >= 3 and s[1].lower() == "b":
            base, s = 2, s[2:]
        elif len(s) >= 3 and s[1].lower() == "o":
            base, s = 8, s[2:]
        elif len(s) >= 3 and s[1].lower() == "x":
            base, s = 16, s[2:]
        else:
            base, s = 8, s[1:]
    if "_" in orig:
        if not _underscore_ok(orig):
            return None
        s = s.replace("_", "")
    if s == "" and base == 8 and orig.strip("_") == "0":
        return 0
    if s == "":
        return None
    digits = "0123456789abcdef"[:base]
    if any(c.lower() not in digits for c in s):
        return None
    value = int(s, base)
    return value if value <= _UINT64_MAX else None


def _parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64)."""
    if not s:
        return None
    neg = s[0] == "-"
    body = s[1:] if s[0] in "+-" else s
    u = _parse_uint(body)
    if u is None:
        return None
    value = -u if neg else u
    if value < _INT64_MIN or value > _INT64_MAX:
        return None
    return value


def _parse_float(s: str) -> float | None:
    """strconv.ParseFloat(s, 64) for the literals the lexer can produce."""
    if "_" in s and not _underscore_ok(s):
        return None
    body = s.replace("_", "")
    neg = body.startswith("-")
    unsigned = body.lstrip("+-")
    if len(body) - len(unsigned) > 1:
        return None
    try:
        if unsigned[:2].lower() == "0x":
            if "p" not in unsigned.lower():
                return None
            value = float.fromhex(unsigned)
        else:
            if not unsigned or unsigned.lower().strip(".") in ("", "inf", "infinity", "nan"):
                return None
            value = float(unsigned)
    except (ValueError, OverflowError):
        return None
    if value - value != 0:  # out of range (inf; the lexer makes no NaN or Inf): Go's ParseFloat fails
        return None
    return -value if neg else value


def parse_number(pos: int, text: str, complex_item: bool) -> NumberNode:
    """A NumberNode from a number or complex token, like Go's Tree.newNumber."""
    n = NumberNode(pos, text)
    if complex_item:
        try:
            c = complex(text.replace("i", "j"))  # underscores: Python's rules are Go's (between digits)
        except ValueError:
            raise ValueError(f"illegal number syntax: {_goq(text)}") from None
        if c.real - c.real != 0 or c.imag - c.imag != 0:  # a part out of range: Go's Sscan fails
            raise ValueError(f"illegal number syntax: {_goq(text)}")
        n.is_complex, n.complex_value = True, c
        _simplify_complex(n)
        return n
    if text.endswith("i"):
        f = _parse_float(text[:-1])  # Go's ParseFloat: no 0b/0o prefix, 0x only with a p exponent
        if f is not None:
            n.is_complex, n.complex_value = True, complex(0, f)
            _simplify_complex(n)
            return n
    u = _parse_uint(text)
    if u is not None:
        n.is_uint, n.uint_value = True, u
    i = _parse_int(text)
    if i is not None:
        n.is_int, n.int_value = True, i
        if i == 0:
            n.is_uint, n.uint_value = True, 0
    if n.is_int:
        n.is_float, n.float_value = True, float(n.int_value)
    elif n.is_uint:
        n.is_float, n.float_value = True, float(n.uint_value)
    else:
        f = _parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {_goq(text)}")
            n.is_float, n.float_value = True, f
            if f - f == 0 and f == int(f):  # finite (inf - inf and NaN are NaN), without importing `math`
                iv = int(f)
                if _INT64_MIN <= iv <= _INT64_MAX:
                    n.is_int, n.int_value = True, iv
                if 0 <= iv <= _UINT64_MAX:
                    n.is_uint, n.uint_value = True, iv
    if not (n.is_int or n.is_uint or n.is_float):
        raise ValueError(f"illegal number syntax: {_goq(text)}")
    return n


def _simplify_complex(n: NumberNode) -> None:
    c = n.complex_value
    n.is_float = c.imag == 0
    if n.is_float:
        n.float_value = c.real
        if c.real - c.real == 0 and c.real == int(c.real):  # finite
            iv = int(c.real)
            n.is_int = _INT64_MIN <= iv <= _INT64_MAX
            n.int_value = iv if n.is_int else 0
            n.is_uint = 0 <= iv <= _UINT64_MAX
            n.uint_value = iv if n.is_uint else 0


def unquote_char(s: str, quote: str) -> tuple[int, str]:
    """strconv.UnquoteChar: the first (possibly escaped) character of s and the rest.
    A \\x or octal escape yields a byte value (returned as its code point)."""
    if not s:
        raise ValueError("invalid syntax")
    c = s[0]
    if c == quote and quote in "'\"":
        raise ValueError("invalid syntax")
    if c != "\\":
        return ord(c), s[1:]
    if len(s) <= 1:
        raise ValueError("invalid syntax")
    c = s[1]
    s = s[2:]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], s
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        if len(s) < n:
            raise ValueError("invalid syntax")
        digits = s[:n]
        if any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("invalid syntax")
        v = int(digits, 16)
        s = s[n:]
        if c == "x":
            return v, s
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise ValueError("invalid syntax")
        return v, s
    if "0" <= c <= "7":
        if len(s) < 2:
            raise ValueError("invalid syntax")
        digits = c + s[:2]
        if any(d not in "01234567" for d in digits):
            raise ValueError("invalid syntax")
        v = int(digits, 8)
        if v > 255:
            raise ValueError("invalid syntax")
        return v, s[2:]
    if c in "'\"":
        if c != quote:
            raise ValueError("invalid syntax")
        return ord(c), s
    raise ValueError("invalid syntax")


def unquote(s: str) -> str:
    """strconv.Unquote for "...", `...` and '...' literals. Bytes from \\x and octal escapes are
    decoded as UTF-8 (invalid sequences become U+FFFD)."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"'`":
        raise ValueError("invalid syntax")
    q = s[0]
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if "\n" in body:
        raise ValueError("invalid syntax")
    if "\\" not in body and q not in body:
        if q == '"':
            return body
        if len(body) == 1:
            return body
        raise ValueError("invalid syntax")
    out = bytearray()
    while body:
        is_byte = body[0] == "\\" and len(body) > 1 and (body[1] == "x" or "0" <= body[1] <= "7")
        v, body = unquote_char(body, q)
        if is_byte:
            out.append(v)
        else:
            out.extend(chr(v).encode("utf-8", "surrogatepass"))
        if q == "'" and body:
            raise ValueError("invalid syntax")
    return out.decode("utf-8", "replace")
