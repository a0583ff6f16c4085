"""The template lexer: text and `{{ }}` actions into tokens, as Go's text/template/parse lexer.

Handles trim markers (`{{- ` and ` -}}`), comments (`{{/* */}}`), newlines inside actions, quoted,
raw and character literals, numbers (hex, octal, binary, floats, imaginary), fields, variables,
keywords. The token list ends with EOF, or with an ERROR token carrying Go's message.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from collections.abc import Callable
    from typing import Any, ClassVar

    StateFn = Callable[
        [], Any
    ]  # a lexer state: consumes some input and returns the next state (None to stop)

__all__ = ["Item", "T", "lex"]

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
_SPACE = " \t\r\n"


class T:
    """Token types; those after KEYWORD are keywords. Plain constants rather than an `enum.Enum` (importing
    `enum` costs a tenth of a templated command): one instance per type, compared by identity, with the
    names, values and repr an Enum would have."""

    __slots__ = ("name", "value")

    ERROR: ClassVar[T]
    BOOL: ClassVar[T]
    CHAR: ClassVar[T]
    CHAR_CONSTANT: ClassVar[T]
    COMMENT: ClassVar[T]
    COMPLEX: ClassVar[T]
    ASSIGN: ClassVar[T]
    DECLARE: ClassVar[T]
    EOF: ClassVar[T]
    FIELD: ClassVar[T]
    IDENTIFIER: ClassVar[T]
    LEFT_DELIM: ClassVar[T]
    LEFT_PAREN: ClassVar[T]
    NUMBER: ClassVar[T]
    PIPE: ClassVar[T]
    RAW_STRING: ClassVar[T]
    RIGHT_DELIM: ClassVar[T]
    RIGHT_PAREN: ClassVar[T]
    SPACE: ClassVar[T]
    STRING: ClassVar[T]
    TEXT: ClassVar[T]
    VARIABLE: ClassVar[T]
    KEYWORD: ClassVar[T]
    BLOCK: ClassVar[T]
    BREAK: ClassVar[T]
    CONTINUE: ClassVar[T]
    DOT: ClassVar[T]
    DEFINE: ClassVar[T]
    ELSE: ClassVar[T]
    END: ClassVar[T]
    IF: ClassVar[T]
    NIL: ClassVar[T]
    RANGE: ClassVar[T]
    TEMPLATE: ClassVar[T]
    WITH: ClassVar[T]

    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"<T.{self.name}: {self.value}>"


for _value, _name in enumerate(T.__annotations__, 1):
    setattr(T, _name, T(_name, _value))


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}
_KEYWORD_TYPES = frozenset(KEYWORDS.values())


class Item:
    """A token: what a frozen dataclass would be (equal and hashed by its fields, repr), written out because
    importing `dataclasses` imports `inspect` (see nodes.Node)."""

    __slots__ = ("typ", "pos", "val", "line")

    def __init__(self, typ: T, pos: int, val: str, line: int) -> None:
        self.typ = typ
        self.pos = pos
        self.val = val
        self.line = line

    def _key(self) -> tuple[T, int, str, int]:
        return (self.typ, self.pos, self.val, self.line)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Item)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Item(typ={self.typ!r}, pos={self.pos!r}, val={self.val!r}, line={self.line!r})"

    def __str__(self) -> str:
        from .gofmt import quote

        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ in _KEYWORD_TYPES:
            return f"<{self.val}>"
        if len(self.val.encode()) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def is_space(ch: str) -> bool:
    return ch in _SPACE and ch != ""


def is_alnum(ch: str) -> bool:
    if ch.isascii():  # letters and the digits 0-9 (category Nd); no `unicodedata` (~0.5 ms to load)
        return ch == "_" or ch.isalnum()
    import unicodedata

    return ch.isalpha() or unicodedata.category(ch) == "Nd"


def _left_trim_len(s: str) -> int:
    return len(s) - len(s.lstrip(_SPACE))


def _right_trim_len(s: str) -> int:
    return len(s) - len(s.rstrip(_SPACE))


def _has_left_trim(s: str) -> bool:
    return len(s) >= 2 and s[0] == "-" and is_space(s[1])


def _has_right_trim(s: str) -> bool:
    return len(s) >= 2 and is_space(s[0]) and s[1] == "-"


def _gou(ch: str) -> str:
    """Go's %#U of a rune."""
    return f"U+{ord(ch):04X}" + (f" '{ch}'" if ch.isprintable() else "")


class _Lexer:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[Item] = []
        self.done = False
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line_at(self, pos: int) -> int:
        if not self.newlines or pos <= self.newlines[0]:  # one-line templates: no `bisect` (~0.5 ms to load)
            return 1
        from bisect import bisect_left

        return 1 + bisect_left(self.newlines, pos)

    # primitives
    def next(self) -> str:
        if self.pos >= len(self.input):
            self.pos = len(self.input) + 1  # remember we went past EOF for backup()
            return ""
        ch = self.input[self.pos]
        self.pos += 1
        return ch

    def backup(self) -> None:
        if self.pos > len(self.input):
            self.pos = len(self.input)
            return
        self.pos -= 1

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def item(self, typ: T, start: int, val: str) -> None:
        self.items.append(Item(typ, start, val, self.line_at(start)))

    def emit(self, typ: T) -> None:
        self.item(typ, self.start, self.input[self.start : self.pos])
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def errorf(self, msg: str) -> None:
        self.item(T.ERROR, self.start, msg)
        self.done = True

    def accept(self, valid: str) -> bool:
        ch = self.next()
        if ch != "" and ch in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            ch = self.next()
            if ch == "" or ch not in valid:
                break
        self.backup()

    def set_pos(self, pos: int) -> None:
        self.pos = pos

    def at_right_delim(self) -> tuple[bool, bool]:
        rest = self.input[self.pos :]
        if _has_right_trim(rest) and rest[2:].startswith(RIGHT_DELIM):
            return True, True
        if rest.startswith(RIGHT_DELIM):
            return True, False
        return False, False

    def at_terminator(self) -> bool:
        ch = self.peek()
        if ch == "" or is_space(ch):
            return True
        if ch in ".,|:)(":
            return True
        return self.input.startswith(RIGHT_DELIM, self.pos)

    # states
    def run(self) -> list[Item]:
        state: StateFn | None = self.lex_text
        while state is not None and not self.done:
            state = state()
        return self.items

    def lex_text(self) -> StateFn | None:
        x = self.input.find(LEFT_DELIM, self.pos)
        if x >= 0:
            if x > self.pos:
                trim = 0
                delim_end = x + len(LEFT_DELIM)
                if _has_left_trim(self.input[delim_end:]):
                    trim = _right_trim_len(self.input[self.start : x])
                if x - trim > self.start:
                    self.item(T.TEXT, self.start, self.input[self.start : x - trim])
                self.set_pos(x)
                self.ignore()
            return self.lex_left_delim
        self.set_pos(len(self.input))
        if self.pos > self.start:
            self.emit(T.TEXT)
        self.emit(T.EOF)
        return None

    def lex_left_delim(self) -> StateFn | None:
        self.set_pos(self.pos + len(LEFT_DELIM))
        trim = _has_left_trim(self.input[self.pos :])
        after = 2 if trim else 0
        if self.input.startswith(LEFT_COMMENT, self.pos + after):
            self.set_pos(self.pos + after)
            self.ignore()
            return self.lex_comment
        self.item(T.LEFT_DELIM, self.start, LEFT_DELIM)
        self.set_pos(self.pos + after)
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> StateFn | None:
        self.set_pos(self.pos + len(LEFT_COMMENT))
        x = self.input.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            self.errorf("unclosed comment")
            return None
        self.set_pos(x + len(RIGHT_COMMENT))
        delim, trim = self.at_right_delim()
        if not delim:
            self.errorf("comment ends before closing delimiter")
            return None
        if trim:
            self.set_pos(self.pos + 2)
        self.set_pos(self.pos + len(RIGHT_DELIM))
        if trim:
            self.set_pos(self.pos + _left_trim_len(self.input[self.pos :]))
        self.ignore()
        return self.lex_text

    def lex_right_delim(self) -> StateFn | None:
        _, trim = self.at_right_delim()
        if trim:
            self.set_pos(self.pos + 2)
            self.ignore()
        self.set_pos(self.pos + len(RIGHT_DELIM))
        start = self.start
        if trim:
            self.set_pos(self.pos + _left_trim_len(self.input[self.pos :]))
        self.item(T.RIGHT_DELIM, start, RIGHT_DELIM)
        self.ignore()
        return self.lex_text

    def lex_inside_action(self) -> StateFn | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.errorf("unclosed left paren")
            return None
        ch = self.next()
        if ch == "":
            self.errorf("unclosed action")
            return None
        if is_space(ch):
            self.backup()
            return self.lex_space
        if ch == "=":
            self.emit(T.ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                self.errorf("expected :=")
                return None
            self.emit(T.DECLARE)
        elif ch == "|":
            self.emit(T.PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and self.pos < len(self.input) and not ("0" <= self.input[self.pos] <= "9"):
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.backup()
            return self.lex_number
        elif is_alnum(ch):
            self.backup()
            return self.lex_identifier
        elif ch == "(":
            self.paren_depth += 1
            self.emit(T.LEFT_PAREN)
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.errorf("unexpected right paren")
                return None
            self.emit(T.RIGHT_PAREN)
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit(T.CHAR)
        else:
            self.errorf(f"unrecognized character in action: {_gou(ch)}")
            return None
        return self.lex_inside_action

    def lex_space(self) -> StateFn | None:
        num = 0
        while is_space(self.peek()):
            self.next()
            num += 1
        rest = self.input[self.pos - 1 :]
        if _has_right_trim(rest) and rest[2:].startswith(RIGHT_DELIM):
            self.backup()
            if num == 1:
                return self.lex_right_delim
        self.emit(T.SPACE)
        return self.lex_inside_action

    def lex_identifier(self) -> StateFn | None:
        while True:
            ch = self.next()
            if is_alnum(ch):
                continue
            self.backup()
            word = self.input[self.start : self.pos]
            if not self.at_terminator():
                self.errorf(f"bad character {_gou(ch)}")
                return None
            typ = KEYWORDS.get(word)
            if typ is not None and typ is not T.DOT:
                self.emit(typ)
            elif word in ("true", "false"):
                self.emit(T.BOOL)
            else:
                self.emit(T.IDENTIFIER)
            return self.lex_inside_action

    def lex_field(self) -> StateFn | None:
        return self._field_or_variable(T.FIELD)

    def lex_variable(self) -> StateFn | None:
        if self.at_terminator():
            self.emit(T.VARIABLE)
            return self.lex_inside_action
        return self._field_or_variable(T.VARIABLE)

    def _field_or_variable(self, typ: T) -> StateFn | None:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return self.lex_inside_action
        ch = ""
        while True:
            ch = self.next()
            if not is_alnum(ch):
                self.backup()
                break
        if not self.at_terminator():
            self.errorf(f"bad character {_gou(ch)}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def lex_char(self) -> StateFn | None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch2 = self.next()
                if ch2 != "" and ch2 != "\n":
                    continue
                ch = ""
            if ch in ("", "\n"):
                self.errorf("unterminated character constant")
                return None
            if ch == "'":
                break
        self.emit(T.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self) -> StateFn | None:
        if not self._scan_number():
            self.errorf(f"bad number syntax: {_goq(self.input[self.start : self.pos])}")
            return None
        sign = self.peek()
        if sign in ("+", "-") and sign != "":
            if not self._scan_number() or self.input[self.pos - 1] != "i":
                self.errorf(f"bad number syntax: {_goq(self.input[self.start : self.pos])}")
                return None
            self.emit(T.COMPLEX)
        else:
            self.emit(T.NUMBER)
        return self.lex_inside_action

    def _scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if is_alnum(self.peek()) and self.peek() != "":
            self.next()
            return False
        return True

    def lex_quote(self) -> StateFn | None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch2 = self.next()
                if ch2 != "" and ch2 != "\n":
                    continue
                ch = ""
            if ch in ("", "\n"):
                self.errorf("unterminated quoted string")
                return None
            if ch == '"':
                break
        self.emit(T.STRING)
        return self.lex_inside_action

    def lex_raw_quote(self) -> StateFn | None:
        while True:
            ch = self.next()
            if ch == "":
                self.errorf("unterminated raw quoted string")
                return None
            if ch == "`":
                break
        self.emit(T.RAW_STRING)
        return self.lex_inside_action


def _goq(s: str) -> str:
    from .gofmt import quote

    return quote(s)


def lex(text: str) -> list[Item]:
    """Tokenise a whole template; the list ends with an EOF or an ERROR item."""
    return _Lexer(text).run()
