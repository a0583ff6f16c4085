"""The template parser: tokens into parse trees, as Go's text/template/parse.

`parse(text, name, funcs)` returns every tree the text defines (`define`, `block`, and the
top-level one under `name`). Errors are TemplateParseError with Go's wording, e.g.
`template: :1: function "foo" not defined`. Nesting is bounded so hostile input cannot exhaust
the stack.
"""

from __future__ import annotations

from .errors import TemplateParseError
from .lexer import Item, T, lex
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    is_empty_tree,
)
from .numbers import parse_number, unquote, unquote_char

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from collections.abc import Collection

__all__ = ["MAX_DEPTH", "Tree", "parse"]

MAX_DEPTH = 100
"""Deepest nesting of parentheses and control structures accepted (Go allows 10000; Python's
stack is smaller)."""


class Tree:
    """One named template: its root list and the source it came from."""

    def __init__(self, name: str, text: str, root: ListNode | None = None) -> None:
        self.name = name
        self.text = text
        self.root = root


class _Stream:
    """The token list shared by every tree parsed from one text."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.idx = 0
        self.hi = 0

    def next(self) -> Item:
        item = self.items[min(self.idx, len(self.items) - 1)]
        self.hi = max(self.hi, min(self.idx, len(self.items) - 1))
        self.idx += 1
        return item

    def backup(self, n: int = 1) -> None:
        self.idx -= n

    def peek(self) -> Item:
        item = self.next()
        self.backup()
        return item

    def last_line(self) -> int:
        return self.items[self.hi].line


class _Parser:
    def __init__(
        self,
        name: str,
        parse_name: str,
        text: str,
        stream: _Stream,
        funcs: Collection[str],
        tree_set: dict[str, Tree],
    ) -> None:
        self.name = name
        self.parse_name = parse_name
        self.text = text
        self.s = stream
        self.funcs = funcs
        self.tree_set = tree_set
        self.vars: list[str] = ["$"]
        self.action_line = 0
        self.range_depth = 0
        self.depth = 0
        self.root: ListNode | None = None

    # token helpers
    def next(self) -> Item:
        return self.s.next()

    def backup(self) -> None:
        self.s.backup()

    def peek(self) -> Item:
        return self.s.peek()

    def next_non_space(self) -> Item:
        while True:
            tok = self.s.next()
            if tok.typ is not T.SPACE:
                return tok

    def peek_non_space(self) -> Item:
        tok = self.next_non_space()
        self.backup()
        return tok

    # errors
    def errorf(self, msg: str) -> None:
        raise TemplateParseError(f"template: {self.parse_name}:{self.s.last_line()}: {msg}")

    def unexpected(self, tok: Item, context: str) -> None:
        if tok.typ is T.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != tok.line:
                extra = f" in action started at {self.parse_name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(f"{tok}{extra}")
        self.errorf(f"unexpected {tok} in {context}")

    def expect(self, typ: T, context: str) -> Item:
        tok = self.next_non_space()
        if tok.typ is not typ:
            self.unexpected(tok, context)
        return tok

    def expect_one_of(self, t1: T, t2: T, context: str) -> Item:
        tok = self.next_non_space()
        if tok.typ is not t1 and tok.typ is not t2:
            self.unexpected(tok, context)
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.errorf("max expression depth exceeded")

    # top level
    def add(self) -> None:
        tree = self.tree_set.get(self.name)
        if tree is None or is_empty_tree(tree.root):
            self.tree_set[self.name] = Tree(self.name, self.text, self.root)
            return
        if not is_empty_tree(self.root):
            self.errorf(f"template: multiple definition of template {_q(self.name)}")

    def child(self, name: str) -> _Parser:
        return _Parser(name, self.parse_name, self.text, self.s, self.funcs, self.tree_set)

    def parse(self) -> None:
        self.root = ListNode(self.peek().pos)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                mark = self.s.idx
                self.next()
                if self.next_non_space().typ is T.DEFINE:
                    sub = self.child("definition")
                    sub.depth = self.depth
                    sub.parse_definition()
                    continue
                self.s.idx = mark
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                self.errorf(f"unexpected {n}")
            self.root.nodes.append(n)
        self.add()

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.expect_one_of(T.STRING, T.RAW_STRING, context)
        try:
            self.name = unquote(tok.val)
        except ValueError as exc:
            self.errorf(str(exc))
        self.expect(T.RIGHT_DELIM, context)
        self.root, end = self.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        self.add()

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError("unreachable")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ is T.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.typ is T.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")
        raise AssertionError("unreachable")

    def action(self) -> Node:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is T.BLOCK:
            return self.block_control()
        if typ is T.BREAK:
            return self.break_control(tok, "break")
        if typ is T.CONTINUE:
            return self.break_control(tok, "continue")
        if typ is T.ELSE:
            return self.else_control()
        if typ is T.END:
            return EndNode(self.expect(T.RIGHT_DELIM, "end").pos)
        if typ is T.IF:
            return self.if_control()
        if typ is T.RANGE:
            return self.range_control()
        if typ is T.TEMPLATE:
            return self.template_control()
        if typ is T.WITH:
            return self.with_control()
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", T.RIGHT_DELIM))

    def break_control(self, tok: Item, word: str) -> Node:
        nxt = self.next_non_space()
        if nxt.typ is not T.RIGHT_DELIM:
            self.unexpected(nxt, "{{" + word + "}}")
        if self.range_depth == 0:
            self.errorf("{{" + word + "}} outside {{range}}")
        return BreakNode(tok.pos, tok.line) if word == "break" else ContinueNode(tok.pos, tok.line)

    def pipeline(self, context: str, end: T) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ is not T.VARIABLE:
                break
            mark = self.s.idx
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ is T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ is T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            else:
                self.s.idx = mark
            break
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in (
                T.BOOL,
                T.CHAR_CONSTANT,
                T.COMPLEX,
                T.DOT,
                T.FIELD,
                T.IDENTIFIER,
                T.NUMBER,
                T.NIL,
                T.RAW_STRING,
                T.STRING,
                T.VARIABLE,
                T.LEFT_PAREN,
            ):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def parse_control(self, context: str) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        self.enter()
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list: ListNode | None = None
            if isinstance(nxt, ElseNode):
                if context == "if" and self.peek().typ is T.IF:
                    self.next()
                    else_list = ListNode(nxt.pos, [self.if_control()])
                elif context == "with" and self.peek().typ is T.WITH:
                    self.next()
                    else_list = ListNode(nxt.pos, [self.with_control()])
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe.line, pipe, lst, else_list
        finally:
            del self.vars[nvars:]
            self.depth -= 1

    def if_control(self) -> Node:
        pos, line, pipe, lst, else_list = self.parse_control("if")
        return IfNode(pos, line, pipe, lst, else_list)

    def range_control(self) -> Node:
        pos, line, pipe, lst, else_list = self.parse_control("range")
        return RangeNode(pos, line, pipe, lst, else_list)

    def with_control(self) -> Node:
        pos, line, pipe, lst, else_list = self.parse_control("with")
        return WithNode(pos, line, pipe, lst, else_list)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (T.IF, T.WITH):
            return ElseNode(peek.pos, peek.line)
        tok = self.expect(T.RIGHT_DELIM, "else")
        return ElseNode(tok.pos, tok.line)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        self.enter()
        block = self.child(name)
        block.depth = self.depth
        block.root, end = block.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        block.add()
        self.depth -= 1
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe: PipeNode | None = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def parse_template_name(self, tok: Item, context: str) -> str:
        if tok.typ in (T.STRING, T.RAW_STRING):
            try:
                return unquote(tok.val)
            except ValueError as exc:
                self.errorf(str(exc))
        self.unexpected(tok, context)
        raise AssertionError("unreachable")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ is T.SPACE:
                continue
            if tok.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif tok.typ is T.PIPE:
                pass
            else:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ is T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, _split_fields(str(chain)))
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, str(chain).split("."))
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                self.errorf(f"unexpected . after term {_q(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is T.IDENTIFIER:
            if tok.val not in self.funcs:
                self.errorf(f"function {_q(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if typ is T.DOT:
            return DotNode(tok.pos)
        if typ is T.NIL:
            return NilNode(tok.pos)
        if typ is T.VARIABLE:
            return self.use_var(tok.pos, tok.val)
        if typ is T.FIELD:
            return FieldNode(tok.pos, _split_fields(tok.val))
        if typ is T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            return self.new_number(tok)
        if typ is T.LEFT_PAREN:
            self.enter()
            try:
                return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            finally:
                self.depth -= 1
        if typ in (T.STRING, T.RAW_STRING):
            try:
                return StringNode(tok.pos, tok.val, unquote(tok.val))
            except ValueError as exc:
                self.errorf(str(exc))
        self.backup()
        return None

    def new_number(self, tok: Item) -> NumberNode:
        if tok.typ is T.CHAR_CONSTANT:
            try:
                r, tail = unquote_char(tok.val[1:], "'")
            except ValueError as exc:
                self.errorf(str(exc))
            if tail != "'":
                self.errorf(f"malformed character constant: {tok.val}")
            return NumberNode(tok.pos, tok.val, True, True, True, False, r, r, float(r), complex(r))
        try:
            return parse_number(tok.pos, tok.val, tok.typ is T.COMPLEX)
        except ValueError as exc:
            self.errorf(str(exc))
        raise AssertionError("unreachable")

    def use_var(self, pos: int, name: str) -> Node:
        v = VariableNode(pos, name.split("."))
        if v.ident[0] not in self.vars:
            self.errorf(f"undefined variable {_q(v.ident[0])}")
        return v


def _split_fields(val: str) -> list[str]:
    return val[1:].split(".")


def _q(s: str) -> str:
    from .gofmt import quote

    return quote(s)


def parse(text: str, name: str = "", funcs: Collection[str] = ()) -> dict[str, Tree]:
    """Parse text; return every template it defines, the top-level one under `name`."""
    stream = _Stream(lex(text))
    trees: dict[str, Tree] = {}
    p = _Parser(name, name, text, stream, funcs, trees)
    p.parse()
    return trees
