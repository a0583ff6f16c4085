"""The parse tree of a template, shaped like Go's text/template/parse nodes.

Every node keeps its character position in the source (for `template: :LINE:COL:` error
locations) and prints back as Go's `Node.String()` does (the `<...>` context of execution errors).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from typing import Any

__all__ = [
    "ActionNode",
    "BoolNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "DotNode",
    "ElseNode",
    "EndNode",
    "FieldNode",
    "IdentifierNode",
    "IfNode",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "RangeNode",
    "StringNode",
    "TemplateNode",
    "TextNode",
    "VariableNode",
    "WithNode",
]


class Node:
    """Base of the nodes: `pos` is the character offset in the source. The nodes were dataclasses;
    written out by hand, because importing `dataclasses` imports `inspect` (~20 ms of every templated
    command). The repr is the dataclass one."""

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__qualname__}({args})"

    def __str__(self) -> str:  # pragma: no cover - every subclass overrides
        return ""


class ListNode(Node):
    def __init__(self, pos: int, nodes: list[Node] | None = None) -> None:
        self.pos = pos
        self.nodes = [] if nodes is None else nodes

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    def __init__(self, pos: int, text: str = "") -> None:
        self.pos = pos
        self.text = text

    def __str__(self) -> str:
        return self.text


class VariableNode(Node):
    def __init__(self, pos: int, ident: list[str] | None = None) -> None:
        self.pos = pos
        self.ident = [] if ident is None else ident

    def __str__(self) -> str:
        return ".".join(self.ident)


class CommandNode(Node):
    def __init__(self, pos: int, args: list[Node] | None = None) -> None:
        self.pos = pos
        self.args = [] if args is None else args

    def __str__(self) -> str:
        parts = []
        for arg in self.args:
            parts.append(f"({arg})" if isinstance(arg, PipeNode) else str(arg))
        return " ".join(parts)


class PipeNode(Node):
    def __init__(
        self,
        pos: int,
        line: int = 0,
        is_assign: bool = False,
        decl: list[VariableNode] | None = None,
        cmds: list[CommandNode] | None = None,
    ) -> None:
        self.pos = pos
        self.line = line
        self.is_assign = is_assign
        self.decl = [] if decl is None else decl
        self.cmds = [] if cmds is None else cmds

    def __str__(self) -> str:
        out = ""
        if self.decl:
            out = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return out + " | ".join(str(c) for c in self.cmds)


class ActionNode(Node):
    def __init__(self, pos: int, line: int = 0, pipe: PipeNode | None = None) -> None:
        self.pos = pos
        self.line = line
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class IdentifierNode(Node):
    def __init__(self, pos: int, ident: str = "") -> None:
        self.pos = pos
        self.ident = ident

    def __str__(self) -> str:
        return self.ident


class DotNode(Node):
    def __str__(self) -> str:
        return "."


class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


class FieldNode(Node):
    def __init__(self, pos: int, ident: list[str] | None = None) -> None:
        self.pos = pos
        self.ident = [] if ident is None else ident

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


class ChainNode(Node):
    def __init__(self, pos: int, node: Node | None = None, fields: list[str] | None = None) -> None:
        self.pos = pos
        self.node = node
        self.fields = [] if fields is None else fields

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.fields)


class BoolNode(Node):
    def __init__(self, pos: int, value: bool = False) -> None:
        self.pos = pos
        self.value = value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    def __init__(
        self,
        pos: int,
        text: str = "",
        is_int: bool = False,
        is_uint: bool = False,
        is_float: bool = False,
        is_complex: bool = False,
        int_value: int = 0,
        uint_value: int = 0,
        float_value: float = 0.0,
        complex_value: complex = 0j,
    ) -> None:
        self.pos = pos
        self.text = text
        self.is_int = is_int
        self.is_uint = is_uint
        self.is_float = is_float
        self.is_complex = is_complex
        self.int_value = int_value
        self.uint_value = uint_value
        self.float_value = float_value
        self.complex_value = complex_value

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    def __init__(self, pos: int, quoted: str = "", text: str = "") -> None:
        self.pos = pos
        self.quoted = quoted
        self.text = text

    def __str__(self) -> str:
        return self.quoted


class EndNode(Node):
    def __str__(self) -> str:
        return "{{end}}"


class ElseNode(Node):
    def __init__(self, pos: int, line: int = 0) -> None:
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    def __init__(
        self,
        pos: int,
        line: int = 0,
        pipe: PipeNode | None = None,
        list: ListNode | None = None,
        else_list: ListNode | None = None,
        keyword: str = "",
    ) -> None:
        self.pos = pos
        self.line = line
        self.pipe = pipe
        self.list = list
        self.else_list = else_list
        self.keyword = keyword

    def __str__(self) -> str:
        out = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            out += "{{else}}" + str(self.else_list)
        return out + "{{end}}"


class IfNode(BranchNode):
    def __init__(
        self,
        pos: int,
        line: int = 0,
        pipe: PipeNode | None = None,
        list: ListNode | None = None,
        else_list: ListNode | None = None,
        keyword: str = "if",
    ) -> None:
        self.pos = pos
        self.line = line
        self.pipe = pipe
        self.list = list
        self.else_list = else_list
        self.keyword = keyword


class RangeNode(BranchNode):
    def __init__(
        self,
        pos: int,
        line: int = 0,
        pipe: PipeNode | None = None,
        list: ListNode | None = None,
        else_list: ListNode | None = None,
        keyword: str = "range",
    ) -> None:
        self.pos = pos
        self.line = line
        self.pipe = pipe
        self.list = list
        self.else_list = else_list
        self.keyword = keyword


class WithNode(BranchNode):
    def __init__(
        self,
        pos: int,
        line: int = 0,
        pipe: PipeNode | None = None,
        list: ListNode | None = None,
        else_list: ListNode | None = None,
        keyword: str = "with",
    ) -> None:
        self.pos = pos
        self.line = line
        self.pipe = pipe
        self.list = list
        self.else_list = else_list
        self.keyword = keyword


class BreakNode(Node):
    def __init__(self, pos: int, line: int = 0) -> None:
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    def __init__(self, pos: int, line: int = 0) -> None:
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    def __init__(self, pos: int, line: int = 0, name: str = "", pipe: PipeNode | None = None) -> None:
        self.pos = pos
        self.line = line
        self.name = name
        self.pipe = pipe

    def __str__(self) -> str:
        from .gofmt import quote

        if self.pipe is None:
            return "{{template " + quote(self.name) + "}}"
        return "{{template " + quote(self.name) + " " + str(self.pipe) + "}}"


def is_empty_tree(node: Any) -> bool:
    """Go's parse.IsEmptyTree: nothing but space text."""
    if node is None:
        return True
    if isinstance(node, ListNode):
        return all(is_empty_tree(n) for n in node.nodes)
    if isinstance(node, TextNode):
        return node.text.strip(" \t\r\n\v\f\x85\xa0") == ""
    return False
