"""The template lexer: text and `{{ }}` actions into tokens, as Go's text/template/parse lexer.

Handles trim markers (`{{- ` and ` -}}`), comments (`{{/* */}}`), newlines inside actions, quoted,
raw and character literals, numbers (hex, octal, binary, floats, imaginary), fields, variables,
keywords. The token list ends with EOF, or with an ERROR token carrying Go's message.
"""

from __future__ import annotations

import bisect
import enum
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Item", "T", "lex"]

StateFn = Callable[[], Any]
"""A lexer state: consumes some input and returns the next state (None to stop)."""

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
_SPACE = " \t\r\n"


class T(enum.Enum):
    """Token types; those after KEYWORD are keywords."""

    ERROR = enum.auto()
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    COMMENT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


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


@dataclass(frozen=True, slots=True)
class Item:
    typ: T
    pos: int
    val: str
    line: int

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
    return ch == "_" or ch.isalpha() or (ch != "" and unicodedata.category(ch) == "Nd")


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
        return 1 + bisect.bisect_left(self.newlines, pos)

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
