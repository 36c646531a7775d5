"""lstmkit: the LSTM family of recurrent networks, from the 1997 paper to a served model.

Shape legend: B batch, T time, I input features, H hidden units, G gates.
"""

from . import cells
from ._bidirectional import MERGE_MODES, Bidirectional
from ._build import build_rnn
from ._convert import from_torch, to_torch
from ._recurrent import Recurrent, reverse_padded
from ._stack import Stack

__version__ = "0.1.0"

__all__ = ["cells", "Recurrent", "Bidirectional", "Stack", "MERGE_MODES", "build_rnn", "from_torch", "to_torch",
           "reverse_padded", "__version__"]
