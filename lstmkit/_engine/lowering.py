"""A user cell's pointwise step, and its derivative, as programs for the engine (``csrc/program.cpp``).

:func:`lower` traces :meth:`lstmkit.cells.UserCell.pointwise` on one row with fake tensors
(``make_fx``: PyTorch's own decomposition into ATen operations, with no data read, so that
control flow on values is refused rather than frozen to one branch), traces the vector-Jacobian
product of that step the same way (``torch.func.vjp``: the derivative is PyTorch's own, not a
second hand-written one), and translates both graphs into instructions over an arena of numbers:
each value gets its own offset, a slice is the same memory at a further offset, a ``cat``
copies its pieces side by side. What the translation cannot take (an operation outside
:data:`OPS`, a value that is not a row, a tensor read from outside the declared inputs) raises
:class:`Unsupported`, naming the operation and the line of the step that made it.
"""

from __future__ import annotations

import contextlib
import math
import operator
import traceback
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.fx import Graph, Node
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OPS", "Unsupported", "Program", "Lowered", "lower"]

#: The operations of a program, by code (the same order as ``Op`` in ``csrc/program.cpp``).
OPS = ("copy", "fill", "neg", "sigmoid", "tanh", "relu", "exp", "log", "sqrt", "rsqrt", "abs", "sin", "cos",
       "reciprocal", "sign", "log1p", "expm1", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "gt",
       "ge", "lt", "le", "eq", "ne", "sigmoid_backward", "tanh_backward", "threshold_backward", "where", "sum",
       "round_float")
_CODE = {name: i for i, name in enumerate(OPS)}

aten = torch.ops.aten
_UNARY = {aten.neg: "neg", aten.sigmoid: "sigmoid", aten.tanh: "tanh", aten.relu: "relu", aten.exp: "exp",
          aten.log: "log", aten.sqrt: "sqrt", aten.rsqrt: "rsqrt", aten.abs: "abs", aten.sin: "sin", aten.cos: "cos",
          aten.reciprocal: "reciprocal", aten.sign: "sign", aten.log1p: "log1p", aten.expm1: "expm1"}
_BINARY = {aten.add: "add", aten.sub: "sub", aten.mul: "mul", aten.div: "div", aten.pow: "pow",
           aten.maximum: "maximum", aten.minimum: "minimum", aten.gt: "gt", aten.ge: "ge", aten.lt: "lt",
           aten.le: "le", aten.eq: "eq", aten.ne: "ne", aten.sigmoid_backward: "sigmoid_backward",
           aten.tanh_backward: "tanh_backward"}
_LOGICAL = {aten.logical_and: "mul", aten.bitwise_and: "mul", aten.logical_or: "maximum", aten.bitwise_or: "maximum",
            aten.logical_not: None, aten.bitwise_not: None}
_VIEWS = {aten.view, aten.reshape, aten._unsafe_view, aten.unsqueeze, aten.squeeze, aten.t, aten.permute,
          aten.detach, aten.alias, aten.clone, aten._to_copy, aten.lift_fresh_copy, aten.contiguous,
          aten.transpose}
_FILLS = {aten.zeros_like: 0.0, aten.ones_like: 1.0, aten.zeros: 0.0, aten.ones: 1.0, aten.new_zeros: 0.0,
          aten.new_ones: 1.0}


class Unsupported(Exception):
    """A step the engine cannot run: the message names the reason and, where known, the line.
    ``node``: the traced operation at fault, if one is."""

    def __init__(self, message: str, node: Node | None = None):
        super().__init__(message)
        self.node = node


@dataclass(frozen=True)
class Program:
    """Instructions (n, 9) int64 ``[op, out, width, a, aw, b, bw, c, cw]``, their fill values (n,),
    the arena's size and the offsets of the inputs and outputs."""
    code: Tensor
    imm: Tensor
    arena: int
    inputs: Tensor
    outputs: Tensor


@dataclass(frozen=True)
class Lowered:
    """A cell's two programs and what they read: the names of its vector parameters, in order."""
    forward: Program
    backward: Program
    params: tuple[str, ...]


@dataclass(frozen=True)
class _Refused:
    """An argument of the trace that the step may not read: a matrix of the cell, for products only."""
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Val:
    off: int
    width: int


class _Builder:
    """One graph into one program."""

    def __init__(self):
        self.code: list[list[int]] = []
        self.imm: list[float] = []
        self.size = 0
        self.consts: dict[float, _Val] = {}

    def alloc(self, width: int) -> _Val:
        val = _Val(self.size, width)
        self.size += width
        return val

    def emit(self, op: str, width: int, *args: _Val, value: float = 0.0) -> _Val:
        out = self.alloc(width)
        self.emit_into(out, op, *args, value=value)
        return out

    def emit_into(self, out: _Val, op: str, *args: _Val, value: float = 0.0) -> None:
        operands = [v for a in args for v in (a.off, a.width)] + [0, 0] * (3 - len(args))
        self.code.append([_CODE[op], out.off, out.width, *operands])
        self.imm.append(float(value))

    def const(self, value: float) -> _Val:
        key = float(value)
        if key not in self.consts:
            self.consts[key] = self.emit("fill", 1, value=key)
        return self.consts[key]

    def program(self, inputs: list[_Val], outputs: list[_Val]) -> Program:
        code = torch.tensor(self.code, dtype=torch.long).reshape(-1, 9)
        return Program(code, torch.tensor(self.imm, dtype=torch.float64), self.size,
                       torch.tensor([v.off for v in inputs], dtype=torch.long),
                       torch.tensor([v.off for v in outputs], dtype=torch.long))


class _Locate(TorchDispatchMode):
    """Where an eager run of the step first calls ``target``: the last frame outside PyTorch and
    this module (the traced graph keeps no source lines)."""

    def __init__(self, target):
        super().__init__()
        self.target, self.where = target, ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.where and func == self.target:
            own = [f for f in traceback.extract_stack() if "/torch/" not in f.filename and f.filename != __file__]
            if own:
                self.where = f" ({own[-1].filename}:{own[-1].lineno}: {own[-1].line})"
        return func(*args, **(kwargs or {}))


def _located(err: Unsupported, fn, args) -> Unsupported:
    """``err`` with the line of the step that made its operation."""
    if err.node is None or not isinstance(err.node.target, torch._ops.OpOverload):
        return err
    mode = _Locate(err.node.target)
    try:
        with mode:
            fn(*args)
    except Exception:  # noqa: BLE001 - the location is a courtesy; the reason stands without it
        pass
    return Unsupported(f"{err}{mode.where}", err.node)


def _shape(node: Node) -> tuple[int, ...]:
    val = node.meta.get("val")
    if not isinstance(val, Tensor):
        raise Unsupported(f"{node.target} gives {type(val).__name__}, not a tensor", node)
    return tuple(int(s) for s in val.shape)


def _axis(shape: tuple[int, ...], dim: int) -> bool:
    """Whether ``dim`` of a row-shaped value is its long axis (False: a dimension of size 1)."""
    return shape[dim] != 1 if shape else False


class _Translator:
    def __init__(self, graph: Graph, inputs: list[int | _Refused]):
        self.b = _Builder()
        self.env: dict[Node, object] = {}
        self.graph = graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        self.inputs = []
        for node, width in zip(placeholders, inputs):
            if isinstance(width, _Refused):
                self.env[node] = width
                continue
            self.env[node] = val = self.b.alloc(width)
            self.inputs.append(val)

    def value(self, arg, node: Node) -> _Val:
        if isinstance(arg, Node):
            val = self.env[arg]
            if isinstance(val, _Refused):
                raise Unsupported(f"{node.target} reads {val.name}, a tensor of shape {val.shape}: the step reads the "
                                  "cell's matrices through the declared products only", node)
            if not isinstance(val, _Val):
                raise Unsupported(f"{node.target} reads {arg.target}, which is not a row", node)
            return val
        if isinstance(arg, (int, float, bool)):
            return self.b.const(float(arg))
        raise Unsupported(f"{node.target} takes {type(arg).__name__} {arg!r}", node)

    def run(self) -> list:
        for node in self.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node.op == "get_attr":
                self.env[node] = self.constant(node)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            else:
                raise Unsupported(f"{node.op} {node.target}", node)
        (out,) = [n for n in self.graph.nodes if n.op == "output"]
        results = out.args[0]
        return [None if r is None else self.value(r, out) for r in results]

    def constant(self, node: Node) -> _Val:
        tensor = getattr(self.graph.owning_module, node.target)
        if tensor.numel() != 1:
            raise Unsupported(f"the step reads a tensor of shape {tuple(tensor.shape)} that is neither a declared "
                              f"product nor a parameter of at most one dimension", node)
        return self.b.const(float(tensor.item()))

    def call(self, node: Node):
        if node.target is operator.getitem:
            return self.env[node.args[0]][node.args[1]]
        packet = getattr(node.target, "overloadpacket", None)
        name = getattr(packet, "__name__", "")
        if name.endswith("_") and not name.startswith("_") and hasattr(aten, name[:-1]):
            out = self.in_place(node, getattr(aten, name[:-1]))
        else:
            out = self.apply(node, packet)
        return self.rounded(node, out) if isinstance(out, _Val) else out

    def rounded(self, node: Node, out: _Val) -> _Val:
        """The value as the step's dtype holds it: the program runs in the run's precision, which
        is float64 where a step may make a float32 value by PyTorch's type promotion."""
        dtype = node.meta["val"].dtype
        if dtype in (torch.float64, torch.bool):
            return out
        if dtype == torch.float32:
            return self.b.emit("round_float", out.width, out)
        raise Unsupported(f"{node.target} makes a value of dtype {dtype}, where the engine computes in the run's "
                          f"floating point type", node)

    def in_place(self, node: Node, packet):
        """``x.op_(...)``: the new value, which later readers of ``x`` see too."""
        out = self.apply(node, packet)
        if isinstance(node.args[0], Node):
            self.env[node.args[0]] = out
        return out

    def apply(self, node: Node, packet):
        target, args, kwargs = node.target, node.args, node.kwargs
        for arg in args:
            if isinstance(arg, Node) and isinstance(self.env.get(arg), _Refused):
                self.value(arg, node)                           # names the matrix the step reads
        if packet in (aten.split, aten.split_with_sizes):
            return self.split(node)
        shape = _shape(node)
        width = math.prod(shape)
        if sum(s != 1 for s in shape) > 1:
            raise Unsupported(f"{packet.__name__ if packet else target} makes a value of shape {shape}, not a row"
                              f"", node)
        if packet in _VIEWS:
            src = self.value(args[0], node)
            if src.width != width:
                raise Unsupported(f"{packet.__name__} changes a row's size", node)
            return src
        if packet is aten.expand:
            src = self.value(args[0], node)
            return src if src.width == width else self.b.emit("copy", width, src)
        if packet in _UNARY:
            return self.b.emit(_UNARY[packet], width, self.value(args[0], node))
        if packet in _BINARY or packet is aten.rsub:
            a, b = self.value(args[0], node), self.value(args[1], node)
            alpha = kwargs.get("alpha", 1)
            if alpha != 1:
                b = self.b.emit("mul", b.width, b, self.b.const(alpha))
            if packet is aten.rsub:
                a, b, op = b, a, "sub"
            else:
                op = _BINARY[packet]
            self.check_broadcast(node, width, a, b)
            return self.b.emit(op, width, a, b)
        if packet in _LOGICAL:
            vals = [self.b.emit("ne", v.width, v, self.b.const(0.0)) for v in (self.value(a, node) for a in args)]
            self.check_broadcast(node, width, *vals)
            if packet in (aten.logical_not, aten.bitwise_not):
                return self.b.emit("eq", width, vals[0], self.b.const(0.0))
            return self.b.emit(_LOGICAL[packet], width, *vals)
        if packet is aten.threshold_backward:
            g, x, threshold = (self.value(a, node) for a in args)
            self.check_broadcast(node, width, g, x, threshold)
            return self.b.emit("threshold_backward", width, g, x, threshold)
        if packet is aten.where:
            c, x, y = (self.value(a, node) for a in args)
            self.check_broadcast(node, width, c, x, y)
            return self.b.emit("where", width, c, x, y)
        if packet in (aten.clamp, aten.clamp_min, aten.clamp_max):
            out = self.value(args[0], node)
            low = args[1] if len(args) > 1 and packet is not aten.clamp_max else kwargs.get("min")
            high = (args[1] if packet is aten.clamp_max else args[2] if len(args) > 2 else kwargs.get("max"))
            if low is not None:
                out = self.b.emit("maximum", width, out, self.value(low, node))
            if high is not None:
                out = self.b.emit("minimum", width, out, self.value(high, node))
            return out
        if packet in _FILLS or packet in (aten.full, aten.full_like, aten.new_full, aten.scalar_tensor):
            value = _FILLS.get(packet)
            if value is None:
                value = args[0] if packet is aten.scalar_tensor else args[1]
            return self.b.emit("fill", width, value=float(value))
        if packet is aten.sum:
            src = self.value(args[0], node)
            return src if src.width == width else self.b.emit("sum", 1, src)
        if packet in (aten.slice, aten.narrow, aten.select):
            return self.slice(node, packet)
        if packet is aten.cat:
            return self.cat(node)
        if packet is aten.slice_backward:
            grad, sizes, dim, start, end, step = args
            return self.place(node, width, self.value(grad, node), dim, start, step)
        name = packet.__name__ if packet is not None else getattr(target, "__name__", str(target))
        raise Unsupported(f"the operation {name} has no engine form", node)

    def check_broadcast(self, node: Node, width: int, *vals: _Val) -> None:
        for v in vals:
            if v.width not in (1, width):
                raise Unsupported(f"{node.target} broadcasts {v.width} numbers over {width}", node)

    def split(self, node: Node) -> list[_Val]:
        src = self.value(node.args[0], node)
        in_shape = _shape(node.args[0])
        sizes = node.args[1]
        dim = node.args[2] if len(node.args) > 2 else 0
        if not _axis(in_shape, dim):
            return [src] * (len(sizes) if isinstance(sizes, (list, tuple)) else 1)
        if isinstance(sizes, int):
            sizes = [min(sizes, src.width - k) for k in range(0, src.width, sizes)]
        out, k = [], 0
        for s in sizes:
            out.append(_Val(src.off + k, s))
            k += s
        return out

    def slice(self, node: Node, packet) -> _Val:
        src = self.value(node.args[0], node)
        in_shape = _shape(node.args[0])
        dim = node.args[1] if len(node.args) > 1 else 0
        if not _axis(in_shape, dim):
            return src
        n = in_shape[dim]
        if packet is aten.select:
            index = node.args[2] % n
            return _Val(src.off + index, 1)
        if packet is aten.narrow:
            start, length, step = node.args[2] % n, node.args[3], 1
        else:
            start = node.args[2] if len(node.args) > 2 and node.args[2] is not None else 0
            end = node.args[3] if len(node.args) > 3 and node.args[3] is not None else n
            step = node.args[4] if len(node.args) > 4 else 1
            start, end = (start + n if start < 0 else start), (end + n if end < 0 else end)
            start, end = max(0, min(start, n)), max(0, min(end, n))
            length = max(0, end - start)
        if step != 1:
            raise Unsupported(f"a slice with step {step}", node)
        return _Val(src.off + start, length)

    def cat(self, node: Node) -> _Val:
        pieces = [self.value(p, node) for p in node.args[0]]
        out = self.b.alloc(sum(p.width for p in pieces))
        k = 0
        for p in pieces:
            self.b.emit_into(_Val(out.off + k, p.width), "copy", p)
            k += p.width
        return out

    def place(self, node: Node, width: int, grad: _Val, dim: int, start: int, step: int) -> _Val:
        """slice_backward: the gradient in its place within zeros."""
        if step != 1:
            raise Unsupported(f"a slice with step {step}", node)
        out = self.b.emit("fill", width, value=0.0)
        start = start + width if start < 0 else start
        self.b.emit_into(_Val(out.off + min(start, width - grad.width), grad.width), "copy", grad)
        return out


def _translate(fn, args: list[Tensor], inputs: list, outputs: list[int]) -> Program:
    """``fn`` traced on ``args`` as a program: ``inputs`` the width of each argument (a
    :class:`_Refused` for one the step may not read), ``outputs`` the width of each result."""
    graph_module = _trace(fn, args)
    graph_module.graph.eliminate_dead_code()
    t = _Translator(graph_module.graph, inputs)
    try:
        results = t.run()
    except Unsupported as err:
        raise _located(err, fn, args) from None
    if len(results) != len(outputs):
        raise Unsupported(f"the step gives {len(results)} results where {len(outputs)} were expected")
    for k, (val, width) in enumerate(zip(results, outputs)):
        if val is None:                                       # a gradient that does not depend on anything
            results[k] = t.b.emit("fill", width, value=0.0)
        elif val.width != width:
            if val.width != 1:
                raise Unsupported(f"result {k} of the step has {val.width} numbers where {width} were expected")
            results[k] = t.b.emit("copy", width, val)
    return t.b.program(t.inputs, results)


@contextlib.contextmanager
def _parameters_as(cell, values: dict[str, Tensor]):
    """The cell's own parameters (and buffers) replaced by ``values`` for the trace."""
    saved = {}
    for name, value in values.items():
        where = cell._parameters if name in cell._parameters else cell._buffers
        saved[name] = (where, where[name])
        where[name] = value
    try:
        yield
    finally:
        for name, (where, value) in saved.items():
            where[name] = value


def _trace(fn, args) -> object:
    from torch.fx.experimental.proxy_tensor import make_fx
    try:
        return make_fx(fn, tracing_mode="fake", record_stack_traces=True)(*args)
    except Unsupported:
        raise
    except Exception as err:  # noqa: BLE001 - any trace failure is a reason to run the reference loop
        frames = [f for f in traceback.extract_tb(err.__traceback__) if "/torch/" not in f.filename
                  and not f.filename.endswith("lowering.py")]
        where = f" ({frames[-1].filename}:{frames[-1].lineno}: {frames[-1].line})" if frames else ""
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise Unsupported(f"the step could not be traced: {type(err).__name__}: {reason}{where}") from err


def lower(cell) -> Lowered:
    """The programs of a :class:`lstmkit.cells.UserCell` (raises :class:`Unsupported`)."""
    w_ih, w_states = cell.checked_products()
    shapes = cell.state_shapes()
    H = cell.hidden_size
    if any(tuple(s) != (H,) for s in shapes):
        raise Unsupported(f"the engine runs cells whose states are all hidden_size ({H}) wide, got {shapes}")
    S, N = len(shapes), w_ih.shape[0]
    own = [(n, t) for n, t in [*cell._parameters.items(), *cell._buffers.items()] if t is not None]
    vectors = [(n, t) for n, t in own if t.dim() <= 1]         # the step's own inputs
    matrices = [(n, t) for n, t in own if t.dim() > 1]         # for the products only: reading them is refused
    names = tuple(n for n, _ in [*vectors, *matrices])
    present = [s for s, w in enumerate(w_states) if w is not None]
    dtype = torch.float64

    def step(zx, *rest):
        zs_given, rest = rest[:len(present)], rest[len(present):]
        state, values = rest[:S], rest[S:]
        zs = [None] * S
        for s, z in zip(present, zs_given):
            zs[s] = z
        with _parameters_as(cell, dict(zip(names, values))):
            new = cell.pointwise(zx, tuple(zs), tuple(state))
        if not isinstance(new, (tuple, list)) or len(new) != S:
            raise Unsupported(f"pointwise returns {type(new).__name__} where a tuple of {S} states was expected")
        return tuple(new)

    primals = [torch.zeros(1, N, dtype=dtype), *(torch.zeros(1, w_states[s].shape[0], dtype=dtype) for s in present),
               *(torch.zeros(1, H, dtype=dtype) for _ in range(S)), *(t.detach().to(dtype) for _, t in vectors)]
    fixed = [t.detach().to(dtype) for _, t in matrices]
    widths = [p.numel() for p in primals]
    refused = [_Refused(n, tuple(t.shape)) for n, t in matrices]
    forward = _translate(step, [*primals, *fixed], [*widths, *refused], [H] * S)

    def gradient(*args):
        inputs, cotangents, given = args[:len(primals)], args[len(primals):len(primals) + S], args[len(primals) + S:]
        _, pullback = torch.func.vjp(lambda *p: step(*p, *given), *inputs)
        return pullback(tuple(cotangents))

    cotangents = [torch.zeros(1, H, dtype=dtype) for _ in range(S)]
    backward = _translate(gradient, [*primals, *cotangents, *fixed], [*widths, *[H] * S, *refused], widths)
    # the engine's layout: zx, one z per state (absent: none), the states, the parameters (+ gradients)
    return Lowered(_per_state(forward, present, S), _per_state(backward, present, S, outputs=True),
                   names[:len(vectors)])


def _per_state(program: Program, present: list[int], S: int, *, outputs: bool = False) -> Program:
    """Input offsets (and, with ``outputs``, output offsets: a backward's gradients of the products)
    with a slot for every state's product, present or not (0 for an absent one)."""
    def spread(offsets: Tensor) -> Tensor:
        full = [int(offsets[0])] + [0] * S
        for k, s in enumerate(present):
            full[1 + s] = int(offsets[1 + k])
        return torch.tensor(full + offsets[1 + len(present):].tolist(), dtype=torch.long)
    return Program(program.code, program.imm, program.arena, spread(program.inputs),
                   spread(program.outputs) if outputs else program.outputs)
