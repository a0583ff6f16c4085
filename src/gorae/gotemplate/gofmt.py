"""Go's fmt package for template values: `Sprint`, `Sprintln`, `Sprintf` and `%v`.

Covers the verbs and flags templates use (v s q d x X o O b c U e E f F g G t T %, flags
`+ - # space 0`, widths, precisions, `*` and `[n]` argument indexes) and Go's error forms
(`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA int=1)`, `%!(NOVERB)`). Maps print as `map[k:v]` with
sorted keys, lists as `[a b]`, nil as `<nil>`, floats like Go's shortest `%g`.
"""

from __future__ import annotations

from .values import kind, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from typing import Any

__all__ = ["float_digits", "format_float", "quote", "quote_rune", "sprint", "sprintf", "sprintln"]

_TOO_LARGE = 1_000_000
_MAX_RUNE = 0x10FFFF


def _is_print(ch: str) -> bool:
    return ch == " " or ch.isprintable()


def quote(s: str, ascii_only: bool = False, q: str = '"') -> str:
    """strconv.Quote / QuoteToASCII (and QuoteRune when q is "'")."""
    out = [q]
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte of the command line (surrogateescape): Go's \xNN
            out.append(f"\\x{o - 0xDC00:02x}")
            continue
        if 0xD800 <= o <= 0xDFFF:  # any other lone surrogate: what Go holds instead (a JSON "\ud800": U+FFFD)
            ch, o = "\ufffd", 0xFFFD
        if ch == q or ch == "\\":
            out.append("\\" + ch)
        elif (o < 0x80 or not ascii_only) and _is_print(ch):
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append(
                {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[
                    ch
                ]
            )
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append(q)
    return "".join(out)


def quote_rune(r: int, ascii_only: bool = False) -> str:
    if r > _MAX_RUNE or r < 0 or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    return quote(chr(r), ascii_only, "'")


def can_backquote(s: str) -> bool:
    return all(ch == "\t" or (ch != "`" and ord(ch) >= 0x20 and ch != "\x7f" and ch != "\ufeff") for ch in s)


# --- floats -------------------------------------------------------------------------------------


def float_digits(x: float) -> tuple[str, int]:
    """Shortest decimal digits of abs(x) and the decimal point position (0.DIGITS x 10^dp)."""
    x = abs(x)
    if x == 0:
        return "0", 1
    from decimal import Decimal

    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits))
    assert isinstance(exp, int)
    dp = len(ds) + exp
    stripped = ds.lstrip("0")
    dp -= len(ds) - len(stripped)
    stripped = stripped.rstrip("0") or "0"
    return stripped, dp


def _exp_str(e: int, letter: str) -> str:
    return f"{letter}{'-' if e < 0 else '+'}{abs(e):02d}"


def _fmt_e(digits: str, dp: int, prec: int, letter: str) -> str:
    """%e from shortest digits with prec digits after the point (prec < 0: all digits)."""
    if prec < 0:
        prec = len(digits) - 1
    first, rest = digits[0], digits[1:].ljust(prec, "0")[:prec]
    exp = dp - 1 if digits != "0" else 0
    return first + ("." + rest if prec > 0 else "") + _exp_str(exp, letter)


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    if digits == "0":
        int_part, frac = "0", ""
    elif dp <= 0:
        int_part, frac = "0", "0" * (-dp) + digits
    elif dp >= len(digits):
        int_part, frac = digits + "0" * (dp - len(digits)), ""
    else:
        int_part, frac = digits[:dp], digits[dp:]
    if prec < 0:
        prec = len(frac)
    frac = frac.ljust(prec, "0")[:prec]
    return int_part + ("." + frac if prec > 0 else "")


def _hex_float(x: float, upper: bool, prec: int) -> str:
    """strconv's %x of |x|: a leading 1 (subnormals normalised too), `prec` hex digits rounded half to even
    (-1: as many as needed), a two-digit (or longer) binary exponent."""
    import math

    frac, e2 = math.frexp(abs(x))
    mant, exp = int(frac * (1 << 53)) << 8, e2 - 1  # the leading 1 at bit 60, as fmtX shifts it
    if mant == 0:
        exp = 0
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):  # carried into a new leading digit
            mant >>= 1
            exp += 1
    hexdigits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out = ["0X" if upper else "0x", str((mant >> 60) & 1)]
    mant = (mant << 4) & ((1 << 64) - 1)
    count = prec if prec > 0 else (16 if prec < 0 and mant else 0)
    if count:
        out.append(".")
        for _ in range(count):
            if prec < 0 and not mant:
                break
            out.append(hexdigits[(mant >> 60) & 15])
            mant = (mant << 4) & ((1 << 64) - 1)
    out.append(f"{'P' if upper else 'p'}{'-' if exp < 0 else '+'}{abs(exp):02d}")
    return "".join(out)


def format_float(x: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(x, verb, prec, 64) for verbs e E f F g G b x X (prec -1: shortest)."""
    import math  # here, not at the top: extension modules cost ~0.5 ms each to load, and most templates print no float

    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    neg = math.copysign(1.0, x) < 0
    sign = "-" if neg else ""
    if verb == "b":  # the raw mantissa and exponent: subnormals (and zero) keep the least exponent, -1074
        frac, exp2 = math.frexp(abs(x))
        bits, exp = int(frac * (1 << 53)), exp2 - 53
        if exp < -1074 or bits == 0:
            bits, exp = bits >> max(-1074 - exp, 0), -1074
        return f"{sign}{bits}p{'-' if exp < 0 else '+'}{abs(exp)}"
    if verb in "xX":
        return sign + _hex_float(x, verb == "X", prec)
    if verb == "F":
        verb = "f"
    if prec >= 0:
        if verb in "eE":
            s = f"{abs(x):.{prec}e}"
            return sign + (s.replace("e", "E") if verb == "E" else s)
        if verb == "f":
            return sign + f"{abs(x):.{prec}f}"
        s = f"{abs(x):.{max(prec, 1)}g}"
        if "e" in s:
            mant, exp_text = s.split("e")
            s = mant + _exp_str(int(exp_text), "e")
        return sign + (s.replace("e", "E") if verb == "G" else s)
    digits, dp = float_digits(x)
    if verb in "eE":
        return sign + _fmt_e(digits, dp, -1, "e" if verb == "e" else "E")
    if verb == "f":
        return sign + _fmt_f(digits, dp, -1)
    exp = dp - 1 if digits != "0" else 0
    if exp < -4 or exp >= 6:
        return sign + _fmt_e(digits, dp, -1, "E" if verb == "G" else "e")
    return sign + _fmt_f(digits, dp, -1)


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """fmt's '#' on a float (`num` signed): always a decimal point, and %g/%G/%x keep their trailing zeros up to
    the precision (6 when none was given), counted from the first non-zero digit as fmt counts them."""
    digits = (6 if prec == -1 else prec) if verb in "gGx" else 0
    tail = ""
    point = seen = False
    i = 1
    while i < len(num):
        c = num[i]
        if c == ".":
            point = True
        elif c in "pP" or (c in "eE" and verb not in "xX"):
            num, tail = num[:i], num[i:]
            break
        else:
            seen = seen or c != "0"
            if seen:
                digits -= 1
        i += 1
    if not point:
        if num[1:] == "0":  # a lone 0 counts once
            digits -= 1
        num += "."
    return num + "0" * max(digits, 0) + tail


# --- the printer -------------------------------------------------------------------------------


class _Printer:
    """One pp: a buffer plus the flags of the verb being formatted."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.clear_flags()
        self.arg: Any = None
        self.has_arg = False

    def clear_flags(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid = 0
        self.wid_present = False
        self.prec = 0
        self.prec_present = False

    # padding
    def write_padding(self, n: int) -> None:
        if n > 0:
            self.buf.append(("0" if self.zero and not self.minus else " ") * n)

    def pad(self, s: str) -> None:
        if not self.wid_present or self.wid == 0:
            self.buf.append(s)
            return
        width = self.wid - len(s)
        if not self.minus:
            self.write_padding(width)
            self.buf.append(s)
        else:
            self.buf.append(s)
            self.write_padding(width)

    def truncate(self, s: str) -> str:
        if self.prec_present and self.prec < len(s):
            return s[: self.prec]
        return s

    # errors
    def bad_verb(self, verb: str, value: Any, has_value: bool = True) -> None:
        self.buf.append("%!" + verb + "(")
        if has_value and value is not None:
            self.buf.append(type_name(value) + "=")
            saved = (self.plus, self.minus, self.sharp, self.space, self.zero, self.plus_v, self.sharp_v)
            saved_w = (self.wid, self.wid_present, self.prec, self.prec_present)
            self.print_arg(value, "v")
            self.plus, self.minus, self.sharp, self.space, self.zero, self.plus_v, self.sharp_v = saved
            self.wid, self.wid_present, self.prec, self.prec_present = saved_w
        else:
            self.buf.append("<nil>")
        self.buf.append(")")

    # scalars
    def fmt_bool(self, v: bool, verb: str) -> None:
        if verb in "tv":
            self.pad("true" if v else "false")
        else:
            self.bad_verb(verb, v)

    def fmt_integer(self, v: int, signed: bool, verb: str, orig: Any) -> None:
        if verb == "v":
            if self.sharp_v and not signed:
                self._fmt_int(v, 16, verb, "0123456789abcdefx", force_sharp=True)
            else:
                self._fmt_int(v, 10, verb, "0123456789abcdefx")
        elif verb == "d":
            self._fmt_int(v, 10, verb, "0123456789abcdefx")
        elif verb == "b":
            self._fmt_int(v, 2, verb, "0123456789abcdefx")
        elif verb in "oO":
            self._fmt_int(v, 8, verb, "0123456789abcdefx")
        elif verb == "x":
            self._fmt_int(v, 16, verb, "0123456789abcdefx")
        elif verb == "X":
            self._fmt_int(v, 16, verb, "0123456789ABCDEFX")
        elif verb == "c":
            r = v if 0 <= v <= _MAX_RUNE and not 0xD800 <= v <= 0xDFFF else 0xFFFD
            self.pad(chr(r))
        elif verb == "q":
            self.pad(quote_rune(v, self.plus))
        elif verb == "U":
            self._fmt_unicode(v)
        else:
            self.bad_verb(verb, orig)

    def _fmt_unicode(self, u: int) -> None:
        if u < 0:
            u += 1 << 64
        prec = 4
        if self.prec_present and self.prec > 4:
            prec = self.prec
        s = "U+" + f"{u:X}".rjust(prec, "0")
        if self.sharp and u <= _MAX_RUNE and not 0xD800 <= u <= 0xDFFF and _is_print(chr(u)):
            s += " '" + chr(u) + "'"
        zero = self.zero
        self.zero = False
        self.pad(s)
        self.zero = zero

    def _fmt_int(self, v: int, base: int, verb: str, digits: str, force_sharp: bool = False) -> None:
        negative = v < 0
        u = -v if negative else v
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and u == 0:
                zero = self.zero
                self.zero = False
                self.write_padding(self.wid)
                self.zero = zero
                return
        elif self.zero and not self.minus and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        if base == 10:
            s = str(u)
        elif base == 16:
            s = format(u, "x")
            if digits[10] == "A":
                s = s.upper()
        elif base == 8:
            s = format(u, "o")
        else:
            s = format(u, "b")
        if len(s) < prec:
            s = "0" * (prec - len(s)) + s
        if self.sharp or force_sharp:
            if base == 2:
                s = "0b" + s
            elif base == 8:
                if not s.startswith("0"):
                    s = "0" + s
            elif base == 16:
                s = "0" + digits[16] + s
        if verb == "O":
            s = "0o" + s
        if negative:
            s = "-" + s
        elif self.plus:
            s = "+" + s
        elif self.space:
            s = " " + s
        zero = self.zero
        self.zero = False
        self.pad(s)
        self.zero = zero

    def fmt_float(self, v: float, verb: str) -> None:
        if verb == "v":
            self._fmt_float(v, "g", -1)
        elif verb in "bgGxX":
            self._fmt_float(v, verb, -1)
        elif verb in "feEF":
            self._fmt_float(v, verb, 6)
        else:
            self.bad_verb(verb, v)

    def _fmt_float(self, v: float, verb: str, prec: int) -> None:
        if self.prec_present:
            prec = self.prec
        num = format_float(v, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            zero = self.zero
            self.zero = False
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad(num)
            self.zero = zero
            return
        if self.sharp and verb != "b":
            num = _sharp_float(num, verb, prec)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.buf.append(num[0])
                self.write_padding(self.wid - len(num))
                self.buf.append(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    def fmt_complex(self, v: complex, verb: str) -> None:
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, v)
            return
        old_plus, old_wid = self.plus, self.wid
        self.buf.append("(")
        self.fmt_float(v.real, verb)
        self.plus = True
        self.fmt_float(v.imag, verb)
        self.buf.append("i)")
        self.plus, self.wid = old_plus, old_wid

    def fmt_string(self, v: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self._fmt_q(v)
            else:
                self.pad(self.truncate(v))
        elif verb == "s":
            self.pad(self.truncate(v))
        elif verb in "xX":
            self._fmt_sx(
                v.encode("utf-8", "surrogatepass"),
                "0123456789abcdefx" if verb == "x" else "0123456789ABCDEFX",
            )
        elif verb == "q":
            self._fmt_q(v)
        else:
            self.bad_verb(verb, v)

    def _fmt_q(self, s: str) -> None:
        s = self.truncate(s)
        if self.sharp and can_backquote(s):
            self.pad("`" + s + "`")
        else:
            self.pad(quote(s, self.plus))

    def _fmt_sx(self, b: bytes, digits: str) -> None:
        length = len(b)
        if self.prec_present and self.prec < length:
            length = self.prec
        width = 2 * length
        if width > 0:
            if self.space:
                if self.sharp:
                    width *= 2
                width += length - 1
            elif self.sharp:
                width += 2
        else:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        out = []
        if self.sharp:
            out.append("0" + digits[16])
        for i in range(length):
            if self.space and i > 0:
                out.append(" ")
                if self.sharp:
                    out.append("0" + digits[16])
            c = b[i]
            out.append(digits[c >> 4] + digits[c & 0xF])
        self.buf.append("".join(out))
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)

    # dispatch
    def print_arg(self, arg: Any, verb: str) -> None:
        if arg is None:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, None, has_value=False)
            return
        if verb == "T":
            self.pad(self.truncate(type_name(arg)))
            return
        if verb == "p":
            self.bad_verb(verb, arg)
            return
        self.print_value(arg, verb, 0)

    def print_value(self, value: Any, verb: str, depth: int) -> None:
        k = kind(value)
        if k == "invalid":
            if depth == 0:
                self.buf.append("<invalid reflect.Value>")
            elif verb == "v":
                self.buf.append("<nil>")
            else:
                self.bad_verb(verb, None, has_value=False)
        elif k == "bool":
            self.fmt_bool(value, verb)
        elif k == "int":
            self.fmt_integer(int(value), True, verb, value)
        elif k == "uint":
            self.fmt_integer(int(value), False, verb, value)
        elif k == "float":
            self.fmt_float(value, verb)
        elif k == "complex":
            self.fmt_complex(value, verb)
        elif k == "string":
            self.fmt_string(value, verb)
        elif k == "map" and getattr(value, "json_view", 0) != 0:
            self.buf.append("{")
            for i, item in enumerate(value.values()):
                if i > 0:
                    self.buf.append(" ")
                self.print_value(item, verb, depth + 1)
            self.buf.append("}")
        elif k == "map":
            self._print_map(value, verb, depth)
        elif k == "slice":
            self._print_slice(value, verb, depth)
        elif k == "func":
            self.buf.append("0xc000000000" if verb in "vp" else "%!" + verb + "(func()=0xc000000000)")
        else:
            # A struct-like Python object: behave like a fmt.Stringer.
            self.fmt_string(str(value), verb if verb in "vsxXq" else "v")

    def _print_map(self, value: dict[Any, Any], verb: str, depth: int) -> None:
        if self.sharp_v:
            self.buf.append(type_name(value) + "{")
        else:
            self.buf.append("map[")
        for i, key in enumerate(sorted(value, key=_sort_key)):
            if i > 0:
                self.buf.append(", " if self.sharp_v else " ")
            self.print_value(key, verb, depth + 1)
            self.buf.append(":")
            self.print_value(value[key], verb, depth + 1)
        self.buf.append("}" if self.sharp_v else "]")

    def _print_slice(self, value: list[Any] | tuple[Any, ...], verb: str, depth: int) -> None:
        if self.sharp_v:
            self.buf.append(type_name(value) + "{")
            for i, item in enumerate(value):
                if i > 0:
                    self.buf.append(", ")
                self.print_value(item, verb, depth + 1)
            self.buf.append("}")
            return
        self.buf.append("[")
        for i, item in enumerate(value):
            if i > 0:
                self.buf.append(" ")
            self.print_value(item, verb, depth + 1)
        self.buf.append("]")

    def text(self) -> str:
        return "".join(self.buf)


def _sort_key(k: Any) -> tuple[int, Any]:
    kk = kind(k)
    if kk in ("int", "uint", "float", "bool"):
        return (0, k)
    return (1, str(k))


def sprint(*args: Any) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    p = _Printer()
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            p.buf.append(" ")
        p.print_arg(arg, "v")
        prev_string = is_string
    return p.text()


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: always spaces between operands, then a newline."""
    p = _Printer()
    for i, arg in enumerate(args):
        if i > 0:
            p.buf.append(" ")
        p.print_arg(arg, "v")
    p.buf.append("\n")
    return p.text()


def _parsenum(s: str, start: int, end: int) -> tuple[int, bool, int]:
    if start >= end:
        return 0, False, end
    num, isnum, i = 0, False, start
    while i < end and "0" <= s[i] <= "9":
        if num > _TOO_LARGE:
            return 0, False, end
        num = num * 10 + ord(s[i]) - 48
        isnum = True
        i += 1
    return num, isnum, i


def _parse_arg_number(s: str) -> tuple[int, int, bool]:
    if len(s) < 3:
        return 0, 1, False
    for i in range(1, len(s)):
        if s[i] == "]":
            width, ok, newi = _parsenum(s, 1, i)
            if not ok or newi != i:
                return 0, i + 1, False
            return width - 1, i + 1, True
    return 0, 1, False


def _int_from_arg(args: tuple[Any, ...], arg_num: int) -> tuple[int, bool, int]:
    num, is_int, new = 0, False, arg_num
    if arg_num < len(args):
        a = args[arg_num]
        if kind(a) in ("int", "uint"):
            num, is_int = int(a), True
        new = arg_num + 1
        if num > _TOO_LARGE or num < -_TOO_LARGE:
            num, is_int = 0, False
    return num, is_int, new


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf with Go's verbs, flags and error forms."""
    p = _Printer()
    end = len(fmt)
    arg_num = 0
    reordered = False
    i = 0
    while i < end:
        good_arg_num = True
        lasti = i
        while i < end and fmt[i] != "%":
            i += 1
        if i > lasti:
            p.buf.append(fmt[lasti:i])
        if i >= end:
            break
        i += 1
        p.clear_flags()
        while i < end:
            c = fmt[i]
            if c == "#":
                p.sharp = True
            elif c == "0":
                p.zero = not p.minus
            elif c == "+":
                p.plus = True
            elif c == "-":
                p.minus = True
                p.zero = False
            elif c == " ":
                p.space = True
            else:
                break
            i += 1

        def arg_number(arg_num: int, i: int) -> tuple[int, int, bool]:
            nonlocal reordered, good_arg_num
            if i >= len(fmt) or fmt[i] != "[":
                return arg_num, i, False
            reordered = True
            index, wid, ok = _parse_arg_number(fmt[i:])
            if ok and 0 <= index < len(args):
                return index, i + wid, True
            good_arg_num = False
            return arg_num, i + wid, ok

        arg_num, i, after_index = arg_number(arg_num, i)
        if i < end and fmt[i] == "*":
            i += 1
            p.wid, p.wid_present, arg_num = _int_from_arg(args, arg_num)
            if not p.wid_present:
                p.buf.append("%!(BADWIDTH)")
            if p.wid < 0:
                p.wid = -p.wid
                p.minus = True
                p.zero = False
            after_index = False
        else:
            p.wid, p.wid_present, i = _parsenum(fmt, i, end)
            if after_index and p.wid_present:
                good_arg_num = False
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:
                good_arg_num = False
            arg_num, i, after_index = arg_number(arg_num, i)
            if i < end and fmt[i] == "*":
                i += 1
                p.prec, p.prec_present, arg_num = _int_from_arg(args, arg_num)
                if p.prec < 0:
                    p.prec, p.prec_present = 0, False
                if not p.prec_present:
                    p.buf.append("%!(BADPREC)")
                after_index = False
            else:
                p.prec, p.prec_present, i = _parsenum(fmt, i, end)
                if not p.prec_present:
                    p.prec, p.prec_present = 0, True
        if not after_index:
            arg_num, i, after_index = arg_number(arg_num, i)
        if i >= end:
            p.buf.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            p.buf.append("%")
        elif not good_arg_num:
            p.buf.append(f"%!{verb}(BADINDEX)")
        elif arg_num >= len(args):
            p.buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                p.sharp_v, p.sharp = p.sharp, False
                p.plus_v, p.plus = p.plus, False
            if verb == "w":
                p.bad_verb(verb, args[arg_num])
            else:
                p.print_arg(args[arg_num], verb)
            arg_num += 1
    if not reordered and arg_num < len(args):
        p.clear_flags()
        p.buf.append("%!(EXTRA ")
        for j, arg in enumerate(args[arg_num:]):
            if j > 0:
                p.buf.append(", ")
            if arg is None:
                p.buf.append("<nil>")
            else:
                p.buf.append(type_name(arg) + "=")
                p.print_arg(arg, "v")
        p.buf.append(")")
    return p.text()


def format_value(value: Any) -> str:
    """What `{{.}}` prints for a value (fmt.Fprint of one operand)."""
    if isinstance(value, str):
        return value
    if value is None or type(value).__name__ == "GoNil":
        return "<nil>"
    return sprint(value)
