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

    def __init__(self, opset: int):
        self.onnx = _onnx()
        self.opset = opset
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str = "const", dtype=np.float32) -> str:
        """A constant (an initializer) holding ``value`` as ``dtype``."""
        name = self.fresh(hint)
        array = np.asarray(value, dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, hint: str | None = None, **attributes):
        """Add a node; returns its output's name (a list of names for ``outputs`` > 1). An input
        given as "" is an absent optional input."""
        names = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def input(self, name: str, elem_type: str, shape: list) -> str:
        dtype = getattr(self.onnx.TensorProto, elem_type)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, dtype, shape))
        return name

    def output(self, value: str, name: str, elem_type: str, shape: list) -> None:
        """Expose ``value`` as the graph output ``name``."""
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        dtype = getattr(self.onnx.TensorProto, elem_type)
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, dtype, shape))

    def model(self, name: str, doc: str = ""):
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="lstmkit")
        self.onnx.checker.check_model(model, full_check=True)
        return model
