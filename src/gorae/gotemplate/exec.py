"""Template execution: walks parse trees over data, as Go's text/template exec.go.

Fields index dicts (Go maps) and read attributes or call methods of other Python objects (Go
structs); `missingkey` picks what a missing map key gives (Go's `default`/`zero`/`error`, plus
`inspect`, docker's behaviour: an error for struct-like dicts, `<no value>` for maps such as
labels). Errors are TemplateExecError worded like Go's
(`template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`). Execution is
bounded in steps, output size and template depth so that no template can hang.
"""

from __future__ import annotations

from .errors import TemplateError, TemplateExecError
from .funcs import FuncError, GoFunc
from .gofmt import format_value, quote, sprint
from .nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
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
)
from .parser import Tree
from .values import MISSING, GoNil, GoStruct, StringSlice, is_map_like, is_true, kind, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from typing import Any

__all__ = ["Limits", "execute"]

MISSINGKEY_OPTIONS = ("default", "invalid", "zero", "error", "inspect")
_GO_TYPES = {"any": "interface {}", "value": "reflect.Value"}
_NO_ATTR = object()


class Limits:
    """Bounds on one execution."""

    def __init__(self, max_steps: int = 2_000_000, max_output: int = 64 << 20, max_depth: int = 100) -> None:
        self.max_steps = max_steps
        self.max_output = max_output
        self.max_depth = max_depth
        self.steps = 0
        self.output = 0


class _Iface:
    """A value read out of a map or slice of interface {}: Go sees its static type as
    `interface {}` until a pipeline unwraps it (only error messages can tell)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


def _unwrap(v: Any) -> Any:
    return v.v if isinstance(v, _Iface) else v


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _go_type(t: str | None) -> str:
    return _GO_TYPES.get(t or "", t or "")


def _can_be_nil(t: str | None) -> bool:
    return t in (None, "any", "value", "[]string")


def _method_func(name: str, fn: Any) -> GoFunc:
    """The Go-like signature of a Python method: fixed positional parameters, maybe variadic."""
    import inspect  # heavy (ast, dis, tokenize): only for Python methods, which docker's objects do not have

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return GoFunc(name, fn, (), "any")
    fixed = 0
    variadic = None
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            fixed += 1
        elif p.kind is p.VAR_POSITIONAL:
            variadic = "any"
    return GoFunc(name, fn, ("any",) * fixed, variadic)


class _State:
    def __init__(
        self,
        name: str,
        parse_name: str,
        text: str,
        trees: dict[str, Tree],
        funcs: dict[str, GoFunc],
        missingkey: str,
        limits: Limits,
        out: list[str],
        depth: int,
    ) -> None:
        self.name = name
        self.parse_name = parse_name
        self.text = text
        self.trees = trees
        self.funcs = funcs
        self.missingkey = missingkey
        self.limits = limits
        self.out = out
        self.depth = depth
        self.node: Node | None = None
        self.vars: list[list[Any]] = []

    # errors
    def at(self, node: Node) -> None:
        self.node = node

    def error_context(self, node: Node) -> tuple[str, str]:
        before = self.text[: node.pos]
        nl = before.rfind("\n")
        col = len(before[nl + 1 :].encode("utf-8", "surrogatepass"))
        line = 1 + before.count("\n")
        return f"{self.parse_name}:{line}:{col}", str(node)

    def errorf(self, msg: str) -> None:
        if self.node is None:
            raise TemplateExecError(f"template: {self.name}: {msg}")
        location, context = self.error_context(self.node)
        raise TemplateExecError(f"template: {location}: executing {quote(self.name)} at <{context}>: {msg}")

    def tick(self) -> None:
        self.limits.steps += 1
        if self.limits.steps > self.limits.max_steps:
            self.errorf(f"execution exceeded {self.limits.max_steps} steps")

    def write(self, s: str) -> None:
        self.limits.output += len(s)
        if self.limits.output > self.limits.max_output:
            self.errorf(f"output exceeds {self.limits.max_output} bytes")
        self.out.append(s)

    # variables
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[len(self.vars) - n][1] = value

    def var_value(self, name: str) -> Any:
        for var in reversed(self.vars):
            if var[0] == name:
                return var[1]
        self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.tick()
        self.at(node)
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if node.pipe is not None and not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, TextNode):
            self.write(node.text)
        elif isinstance(node, IfNode | WithNode):
            self.walk_if_or_with(isinstance(node, WithNode), dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, is_with: bool, dot: Any, node: BranchNode) -> None:
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(val)
            if not ok:
                self.errorf(f"if/with can't use {sprint(val)}")
            if truth:
                assert node.list is not None
                self.walk(val if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, r: RangeNode) -> None:
        self.at(r)
        mark0 = self.mark()
        assert r.pipe is not None and r.list is not None
        body = r.list
        try:
            val = self.eval_pipeline(dot, r.pipe)
            mark = self.mark()
            decl = r.pipe.decl

            def one(index: Any, elem: Any) -> None:
                if decl:
                    if r.pipe is not None and r.pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if r.pipe is not None and r.pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.set_top_var(2, index)
                try:
                    self.walk(elem, body)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            k = kind(val)
            ran = False
            try:
                if k == "slice":
                    generic = not isinstance(val, StringSlice)
                    for i, item in enumerate(list(val)):
                        ran = True
                        one(i, _Iface(item) if generic else item)
                elif k == "map":
                    for key in sorted(val, key=_map_key):
                        ran = True
                        one(key, _Iface(val[key]))
                elif k in ("int", "uint"):
                    if len(decl) > 1:
                        self.errorf(f"can't use {sprint(val)} to iterate over more than one variable")
                    for i in range(int(val)):
                        ran = True
                        one(None, i)
                elif k == "invalid":
                    pass
                else:
                    self.errorf(f"range can't iterate over {sprint(val)}")
            except _Break:
                return
            if not ran and r.else_list is not None:
                self.walk(dot, r.else_list)
        finally:
            self.pop(mark0)

    def walk_template(self, dot: Any, t: TemplateNode) -> None:
        self.at(t)
        tree = self.trees.get(t.name)
        if tree is None or tree.root is None:
            self.errorf(f"template {quote(t.name)} not defined")
            return
        if self.depth >= self.limits.max_depth:
            self.errorf(f"exceeded maximum template depth ({self.limits.max_depth})")
        new_dot = self.eval_pipeline(dot, t.pipe)
        sub = _State(
            t.name,
            self.parse_name,
            self.text,
            self.trees,
            self.funcs,
            self.missingkey,
            self.limits,
            self.out,
            self.depth + 1,
        )
        sub.vars = [["$", new_dot]]
        sub.walk(new_dot, tree.root)

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return None
        self.at(pipe)
        value = MISSING
        for cmd in pipe.cmds:
            value = _unwrap(self.eval_command(dot, cmd, value))
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not MISSING:
            assert args is not None
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.tick()
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return _unwrap(dot)
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {quote(str(first))}")

    def ideal_constant(self, n: NumberNode) -> Any:
        self.at(n)
        text = n.text
        is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")
        if n.is_complex:
            return n.complex_value
        if n.is_float and not is_hex_int and not text.startswith("'") and any(c in text for c in ".eEpP"):
            return n.float_value
        if n.is_int:
            return n.int_value
        if n.is_uint:
            self.errorf(f"{text} overflows int")
        return None

    def eval_field_node(self, dot: Any, field: FieldNode, args: list[Node] | None, final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.at(chain)
        if not chain.fields:
            self.errorf("internal error: no fields in evalChainNode")
        if isinstance(chain.node, NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        assert chain.node is not None
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(self, dot: Any, var: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, ident: list[str], args: list[Node] | None, final: Any
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, None, MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_function(
        self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node] | None, final: Any
    ) -> Any:
        self.at(node)
        fn = self.funcs.get(node.ident)
        if fn is None:
            self.errorf(f"{quote(node.ident)} is not a defined function")
        assert fn is not None
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_field(
        self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any, receiver: Any
    ) -> Any:
        iface = isinstance(receiver, _Iface)
        receiver = _unwrap(receiver)
        if isinstance(receiver, GoNil):
            self.errorf(f"nil pointer evaluating {receiver.go_type}.{name}")
        if isinstance(receiver, GoStruct):
            if name in receiver:
                if (args is not None and len(args) > 1) or final is not MISSING:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver[name]
            self.errorf(f"can't evaluate field {name} in type {receiver.go_type}")
        if receiver is None:
            if iface:
                self.errorf(f"nil pointer evaluating interface {{}}.{name}")
            if self.missingkey == "error":
                self.errorf(f"nil data; no entry for key {quote(name)}")
            return None
        typ = "interface {}" if iface else type_name(receiver)
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        k = kind(receiver)
        if k == "map":
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return _Iface(receiver[name])
            mk = self.missingkey
            if mk == "error" or (mk == "inspect" and not is_map_like(receiver)):
                self.errorf(f"map has no entry for key {quote(name)}")
            return None
        if k == "struct" and not name.startswith("_"):
            attr = getattr(receiver, name, _NO_ATTR)
            if attr is not _NO_ATTR:
                if callable(attr):
                    return self.eval_call(dot, _method_func(name, attr), node, name, args, final)
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return attr
        self.errorf(f"can't evaluate field {name} in type {typ}")

    def eval_call(
        self, dot: Any, fn: GoFunc, node: Node, name: str, args: list[Node] | None, final: Any
    ) -> Any:
        call_args = args[1:] if args is not None else []
        num_in = len(call_args) + (final is not MISSING)
        params = fn.params
        if fn.variadic is not None:
            if num_in < len(params):
                self.errorf(
                    f"wrong number of args for {name}: want at least {len(params)} got {len(call_args)}"
                )
        elif num_in != len(params):
            self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if fn.builtin and name in ("and", "or"):
            v: Any = None
            for arg in call_args:
                v = self.eval_arg(dot, "value", arg)
                if is_true(v)[0] == (name == "or"):
                    return v
            if final is not MISSING:
                v = self.validate_type(final, "value")
            return v
        argv: list[Any] = []
        for i, arg in enumerate(call_args):
            argv.append(self.eval_arg(dot, params[i] if i < len(params) else fn.variadic, arg))
        if final is not MISSING:
            if fn.variadic is not None:
                t = params[num_in - 1] if num_in - 1 < len(params) else fn.variadic
            else:
                t = params[-1]
            argv.append(self.validate_type(final, t))
        if fn.builtin and name == "call":
            # the callee's name for call's errors: Go's args[0].String(), or final.String() when piped
            # (a reflect.Value: the string itself, else "<T Value>")
            if call_args:
                callee = str(call_args[0])
            else:
                final = _unwrap(final)
                callee = final if isinstance(final, str) else f"<{type_name(final)} Value>"
            argv.insert(0, callee)
        try:
            return fn.fn(*argv)
        except (TemplateError, RecursionError):
            raise
        except FuncError as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")
        except Exception as exc:  # a Python function or method supplied with the data
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")

    def validate_type(self, value: Any, typ: str | None) -> Any:
        value = _unwrap(value)
        if value is None:
            if _can_be_nil(typ):
                return None
            self.errorf(f"invalid value; expected {_go_type(typ)}")
        if typ in (None, "any", "value"):
            return value
        ok = False
        if typ == "string":
            ok = isinstance(value, str)
        elif typ == "int":
            ok = kind(value) == "int"
        elif typ == "bool":
            ok = isinstance(value, bool)
        elif typ == "[]string":
            if isinstance(value, StringSlice):
                ok = True
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                value, ok = StringSlice(value), True
        if not ok:
            self.errorf(f"wrong type for value; expected {_go_type(typ)}; got {type_name(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str | None, n: Node) -> Any:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if _can_be_nil(typ):
                return None
            self.errorf(f"cannot assign nil to {_go_type(typ)}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], MISSING), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, None, MISSING), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, MISSING), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, None, MISSING), typ)
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            self.errorf(f"expected bool; found {n}")
        if typ == "int":
            if isinstance(n, NumberNode) and n.is_int:
                return n.int_value
            self.errorf(f"expected integer; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            self.errorf(f"expected string; found {n}")
        if typ in ("any", "value"):
            return self.eval_empty_interface(dot, n)
        self.errorf(f"can't handle {n} for arg of type {_go_type(typ)}")

    def eval_empty_interface(self, dot: Any, n: Node) -> Any:
        self.at(n)
        if isinstance(n, BoolNode):
            return n.value
        if isinstance(n, NumberNode):
            return self.ideal_constant(n)
        if isinstance(n, StringNode):
            return n.text
        self.errorf(f"can't handle assignment of {n} to empty interface argument")

    def print_value(self, node: Node, value: Any) -> None:
        self.at(node)
        value = _unwrap(value)
        if value is None:
            self.write("<no value>")
            return
        if isinstance(value, GoNil):
            self.write("<nil>")
            return
        if kind(value) == "func":
            self.errorf(f"can't print {node} of type {type_name(value)}")
        self.write(format_value(value))


def _map_key(k: Any) -> tuple[int, Any]:
    if isinstance(k, int | float) and not isinstance(k, bool):
        return (0, k)
    return (1, str(k))


def execute(
    trees: dict[str, Tree],
    name: str,
    parse_name: str,
    text: str,
    data: Any,
    funcs: dict[str, GoFunc],
    missingkey: str = "default",
    limits: Limits | None = None,
) -> str:
    """Run the template `name` of `trees` on data and return what it prints."""
    if missingkey not in MISSINGKEY_OPTIONS:
        raise ValueError(f"unknown missingkey option {missingkey!r}")
    out: list[str] = []
    state = _State(name, parse_name, text, trees, funcs, missingkey, limits or Limits(), out, 0)
    state.vars = [["$", data]]
    tree = trees.get(name)
    if tree is None or tree.root is None:
        state.errorf(f"{quote(name)} is an incomplete or empty template")
        return ""
    try:
        state.walk(data, tree.root)
    except RecursionError:
        raise TemplateExecError(f"template: {name}: nesting too deep to execute") from None
    except (_Break, _Continue):  # pragma: no cover - the parser rejects these outside range
        pass
    return "".join(out)
