"""A small builder of ONNX graphs: named values, constants as initializers, nodes in order."""

from __future__ import annotations

import numpy as np

__all__ = ["ExportError", "Graph"]


class ExportError(ValueError):
    """A module (or an option of it) that the ONNX export cannot express; the message names it and why."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'lstmkit[export]'") from None
    return onnx


class Graph:
    """The nodes, constants, inputs and outputs of one ONNX graph, built in order."""

    def __init__(self, opset: int, parent: Graph | None = None):
        self.onnx = _onnx()
        self.opset = opset
        self.parent = parent
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def subgraph(self) -> Graph:
        """The builder of a subgraph (a ``Scan`` body): its names never clash with this graph's,
        and its constants live in the outermost graph, which every subgraph sees."""
        return Graph(self.opset, parent=self)

    @property
    def root(self) -> Graph:
        return self if self.parent is None else self.parent.root

    def fresh(self, hint: str) -> str:
        root = self.root
        root._count += 1
        return f"{hint}_{root._count}"

    def const(self, value, hint: str = "const", dtype=np.float32) -> str:
        """A constant (an initializer of the outermost graph) holding ``value`` as ``dtype``."""
        name = self.fresh(hint)
        array = np.asarray(value, dtype=dtype)
        self.root.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, hint: str | None = None, **attributes):
        """Add a node; returns its output's name (a list of names for ``outputs`` > 1). An input
        given as "" is an absent optional input."""
        names = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def reduce(self, op: str, x: str, axis: int, *, keepdims: int = 0, hint: str | None = None) -> str:
        """``op`` (ReduceSum, ReduceMean, ReduceMax, ReduceProd) over one axis, in the form of the opset:
        the axes became an input of ReduceSum in opset 13 and of the others in 18."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.op(op, [x, self.const([axis], "axis", np.int64)], keepdims=keepdims, hint=hint)
        return self.op(op, [x], axes=[axis], keepdims=keepdims, hint=hint)

    def input(self, name: str, elem_type: str, shape: list) -> str:
        dtype = getattr(self.onnx.TensorProto, elem_type)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, dtype, shape))
        return name

    def output(self, value: str, name: str, elem_type: str, shape: list) -> None:
        """Expose ``value`` as the graph output ``name``."""
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        dtype = getattr(self.onnx.TensorProto, elem_type)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, dtype, shape))

    def graph(self, name: str):
        """This builder's nodes as an ONNX graph (a subgraph's: no initializers of its own)."""
        return self.onnx.helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)

    def model(self, name: str, doc: str = ""):
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="lstmkit")
        self.onnx.checker.check_model(model, full_check=True)
        return model
