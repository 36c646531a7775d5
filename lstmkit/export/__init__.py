"""Export to ONNX: lstmkit's layers and task models as ONNX graphs that ONNX Runtime (and any
ONNX runtime without Python) runs.

:func:`to_onnx` writes a layer (``Recurrent``, ``Bidirectional``, ``Stack``) or a model
(``SequenceClassifier``, ``Forecaster``) with dynamic batch and time axes and the lengths as an
input; cells whose maths an ONNX operator has become its native ``LSTM``, ``GRU`` or ``RNN``
node (see :mod:`lstmkit.export.recurrent`), the other variants a ``Scan`` over their step
(:mod:`lstmkit.export.scan`); anything else is refused with an :class:`ExportError` that names
it and says why, never exported as a different graph.
:func:`export_run` writes a trained run's model with its preprocessing constants, the graph its
task's ``Task.export_graph`` builds from the blocks here (each task's ``export.py``, in its folder).
Needs the ``[export]`` extra (``onnx``; ``onnxruntime`` to run the files).
"""

from .api import MIN_OPSET, export_run, to_onnx
from .graph import ExportError

__all__ = ["to_onnx", "export_run", "ExportError", "MIN_OPSET"]
