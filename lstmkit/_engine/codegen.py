"""A user cell's programs as compiled C++: one fused loop over a row's H units per program.

:func:`row_functions` writes the forward and backward programs of :mod:`.lowering` as C++ functions
(every value a local variable of the loop body, so nothing goes through memory between
operations), compiles them with the system's C++ compiler into a small shared library (no
PyTorch headers: about a second), caches it on disk under the engine's cache directory by the
hash of its source and flags, and returns the functions' addresses for ``csrc/program.cpp``.

A program fits this form when every value is H units wide (or a whole number of H-wide pieces),
or one number shared by the row; a program that does not (a slice that cuts a unit group, a sum
over the row that the step then reads) keeps the interpreter, as does a machine without a
compiler. Both are tested equal to the step.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import pathlib
import shutil
import subprocess
import tempfile

import torch

from . import build
from .lowering import OPS, Program

__all__ = ["source", "row_functions", "compiler"]

_UNARY = {"neg": "(-{0})", "sigmoid": "sigm<T>({0})", "tanh": "tanh_<T>({0})", "relu": "({0} > T(0) ? {0} : T(0))",
          "exp": "exp_<T>({0})", "log": "std::log({0})", "sqrt": "std::sqrt({0})", "rsqrt": "(T(1) / std::sqrt({0}))",
          "abs": "std::abs({0})", "sin": "std::sin({0})", "cos": "std::cos({0})", "reciprocal": "(T(1) / {0})",
          "sign": "T(({0} > T(0)) - ({0} < T(0)))", "log1p": "std::log1p({0})", "expm1": "std::expm1({0})",
          "round_float": "T(static_cast<float>({0}))", "copy": "{0}"}
_BINARY = {"add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})", "div": "({0} / {1})",
           "pow": "std::pow({0}, {1})", "maximum": "({0} != {0} || {0} > {1} ? {0} : {1})",
           "minimum": "({0} != {0} || {0} < {1} ? {0} : {1})", "gt": "T({0} > {1})", "ge": "T({0} >= {1})",
           "lt": "T({0} < {1})", "le": "T({0} <= {1})", "eq": "T({0} == {1})", "ne": "T({0} != {1})",
           "sigmoid_backward": "({0} * (T(1) - {1}) * {1})", "tanh_backward": "({0} * (T(1) - {1} * {1}))"}
_TERNARY = {"threshold_backward": "({1} <= {2} ? T(0) : {0})", "where": "({0} != T(0) ? {1} : {2})"}
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-std=c++17", "-shared", "-fPIC"]


class _Misfit(Exception):
    """The program does not fit one loop over H units."""


def _literal(value: float) -> str:
    if math.isnan(value):
        return "std::numeric_limits<T>::quiet_NaN()"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}std::numeric_limits<T>::infinity()"
    return f"T({float(value).hex()})"


class _Writer:
    """One program as the body of a loop over k (a unit of the row), what comes before the loop
    (numbers shared by the row) and after it (numbers made from sums over the row, which only
    parameters' gradients may read)."""

    def __init__(self, H: int):
        self.H = H
        self.rows: dict[int, str] = {}        # arena offset of an H-wide piece -> its expression at unit k
        self.numbers: dict[int, str] = {}     # arena offset of a number -> its expression
        self.late: set[int] = set()           # numbers known after the loop only
        self.before: list[str] = []
        self.body: list[str] = []
        self.after: list[str] = []
        self.count = 0

    def name(self, expr: str, where: list[str]) -> str:
        self.count += 1
        name = f"v{self.count}"
        where.append(f"const T {name} = {expr};")
        return name

    def read(self, off: int, width: int, piece: int) -> str:
        if width == 1:
            if off in self.late:
                raise _Misfit("the row reads a sum over the row")
            if off not in self.numbers:
                raise _Misfit("a number the row does not hold")
            return self.numbers[off]
        key = off + piece * self.H
        if key not in self.rows:
            raise _Misfit("a slice that cuts a group of H units")
        return self.rows[key]

    def input(self, index: int, off: int, width: int) -> None:
        if width == 0:
            return
        if width == 1:
            self.numbers[off] = self.name(f"in{index}[0]", self.before)
        elif width % self.H == 0:
            for j in range(width // self.H):
                self.rows[off + j * self.H] = f"in{index}[{j * self.H} + k]"
        else:
            raise _Misfit(f"an input of {width} numbers")

    def fill(self, off: int, width: int, value: float) -> None:
        if width == 1:
            self.numbers[off] = _literal(value)
        elif width % self.H == 0:
            for j in range(width // self.H):
                self.rows[off + j * self.H] = _literal(value)
        else:
            raise _Misfit(f"a constant of {width} numbers")

    def instruction(self, op: str, out: int, width: int, operands: list[tuple[int, int]]) -> None:
        if op == "sum":
            (a, aw), = operands[:1]
            if aw % self.H:
                raise _Misfit("a sum over a slice")
            self.count += 1
            total = f"t{self.count}"
            self.before.append(f"T {total} = T(0);")
            self.body.append(f"{total} += {' + '.join(self.read(a, aw, j) for j in range(aw // self.H))};")
            self.numbers[out] = total
            self.late.add(out)
            return
        template = _UNARY.get(op) or _BINARY.get(op) or _TERNARY.get(op)
        if width == 1:
            if any(w != 1 for _, w in operands):
                raise _Misfit("a number made from a row")
            late = any(o in self.late for o, _ in operands)
            args = [self.numbers[o] if o in self.numbers else self.read(o, 1, 0) for o, _ in operands]
            self.numbers[out] = self.name(template.format(*args), self.after if late else self.before)
            if late:
                self.late.add(out)
            return
        if width % self.H:
            raise _Misfit(f"a value of {width} numbers")
        for j in range(width // self.H):
            expr = template.format(*(self.read(o, w, j) for o, w in operands))
            self.rows[out + j * self.H] = expr if op == "copy" else self.name(expr, self.body)

    def output(self, index: int, off: int, width: int) -> None:
        if width == 0:
            return
        for j in range(width // self.H):
            self.body.append(f"out{index}[{j * self.H} + k] = {self.read(off, width, j)};")

    def gradient(self, off: int, width: int, at: int) -> None:
        """A parameter's gradient, added to the block's sums at ``at``."""
        if width == 1:
            if off not in self.numbers:
                raise _Misfit("a parameter's gradient the row does not hold")
            self.after.append(f"sums[{at}] += {self.numbers[off]};")
        elif width % self.H == 0:
            for j in range(width // self.H):
                self.body.append(f"sums[{at + j * self.H} + k] += {self.read(off, width, j)};")
        else:
            raise _Misfit(f"a parameter of {width} numbers")


def _function(program: Program, name: str, H: int, in_widths: list[int], out_widths: list[int],
              gradients: list[int] | None) -> str:
    """The C++ of one program; ``gradients``: the widths of the parameters whose gradients the last
    outputs are (added to ``sums``), None for a forward."""
    w = _Writer(H)
    for i, (off, width) in enumerate(zip(program.inputs.tolist(), in_widths)):
        w.input(i, off, width)
    code, imm = program.code.tolist(), program.imm.tolist()
    for (op, out, width, a, aw, b, bw, c, cw), value in zip(code, imm):
        if OPS[op] == "fill":
            w.fill(out, width, value)
    for (op, out, width, a, aw, b, bw, c, cw), value in zip(code, imm):
        if OPS[op] != "fill":
            arity = 3 if OPS[op] in _TERNARY else 2 if OPS[op] in _BINARY else 1
            w.instruction(OPS[op], out, width, [(a, aw), (b, bw), (c, cw)][:arity])
    outputs = program.outputs.tolist()
    n_plain = len(outputs) - (len(gradients) if gradients is not None else 0)
    for i in range(n_plain):
        w.output(i, outputs[i], out_widths[i])
    at = 0
    for off, width in zip(outputs[n_plain:], gradients or []):
        w.gradient(off, width, at)
        at += width
    # the rows as restrict parameters of a function of their own: GCC takes restrict from
    # parameters, and without it the loop's alias checks exceed what it vectorizes
    params = [f"const T* __restrict__ in{i}" for i in range(len(in_widths))]
    params += [f"T* __restrict__ out{i}" for i in range(n_plain)]
    args = [f"in[{i}]" for i in range(len(in_widths))] + [f"out[{i}]" for i in range(n_plain)]
    if gradients is not None:
        params.append("T* __restrict__ sums")
        args.append("sums")
    outer = (f"static void {name}(const T* const* in, T* const* out, T* sums)" if gradients is not None
             else f"static void {name}(const T* const* in, T* const* out)")
    lines = [f"template <typename T>\n__attribute__((noinline)) static void {name}_rows({', '.join(params)}) {{",
             *w.before, f"for (int64_t k = 0; k < {H}; ++k) {{", *w.body, "}", *w.after, "}", "",
             f"template <typename T>\n{outer} {{ {name}_rows<T>({', '.join(args)}); }}"]
    return "\n".join(lines)


def source(lowered, H: int, in_widths: list[int], param_widths: list[int]) -> str | None:
    """The C++ of a cell's two programs (None where they do not fit one loop over H units).
    ``in_widths``: the forward's inputs (zx, each state's product, the states, the parameters)."""
    S = (len(in_widths) - 1 - len(param_widths)) // 2
    try:
        forward = _function(lowered.forward, "forward", H, in_widths, [H] * S, None)
        backward = _function(lowered.backward, "backward", H, in_widths + [H] * S, in_widths[:1 + 2 * S],
                             param_widths)
    except _Misfit:
        return None
    exports = "\n".join(
        f'extern "C" void {kind}_{t}(const {t}* const* in, {t}* const* out{extra}) '
        f'{{ {kind}<{t}>(in, out{args}); }}'
        for t in ("float", "double") for kind, extra, args in
        (("forward", "", ""), ("backward", f", {t}* sums", ", sums")))
    return ("// written by lstmkit/_engine/codegen.py from a user cell's step\n#include <limits>\n"
            "#include \"activations.h\"\nusing namespace lstmkit;\n\n" + forward + "\n\n" + backward + "\n\n"
            + exports + "\n")


def compiler() -> str | None:
    """The C++ compiler that builds the row functions (``CXX``, else ``c++``), or None."""
    return shutil.which(os.environ.get("CXX", "c++"))


_libraries: dict[str, ctypes.CDLL] = {}


def row_functions(text: str) -> dict[str, int]:
    """The addresses of ``forward_float``, ``backward_float``, ``forward_double``, ``backward_double``
    in the library built from ``text`` (cached on disk by its hash; raises on a failed build)."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (set CXX or install g++)")
    flags = [*_FLAGS, f"-I{build.CSRC}"]
    digest = hashlib.sha256("\0".join([text, cxx, *flags, torch.__version__]).encode()).hexdigest()[:16]
    if digest not in _libraries:
        directory = build.cache_root() / "cells"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"cell_{digest}.so"
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=directory) as tmp:
                src, lib = pathlib.Path(tmp) / "cell.cpp", pathlib.Path(tmp) / "cell.so"
                src.write_text(text)
                done = subprocess.run([cxx, *flags, str(src), "-o", str(lib)], capture_output=True, text=True,
                                      timeout=120)
                if done.returncode != 0:
                    raise RuntimeError(f"the C++ compiler failed: {done.stderr.strip()[-2000:]}")
                os.replace(lib, target)               # atomic: a concurrent build finds a whole file or none
        _libraries[digest] = ctypes.CDLL(str(target))
    lib = _libraries[digest]
    return {name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
            for name in ("forward_float", "backward_float", "forward_double", "backward_double")}
