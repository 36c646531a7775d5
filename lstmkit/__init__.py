"""lstmkit: the LSTM family of recurrent networks, from the 1997 paper to a served model.

Shape legend: B batch, T time, I input features, H hidden units, G gates.
"""

from . import cells, layers
from .layers import (MERGE_MODES, Bidirectional, Recurrent, Stack, build_rnn, from_torch, reverse_padded, to_torch,
                     valid_steps)

__version__ = "0.1.0"

__all__ = ["cells", "layers", "Recurrent", "Bidirectional", "Stack", "MERGE_MODES", "build_rnn", "from_torch",
           "to_torch", "reverse_padded", "valid_steps", "__version__"]
