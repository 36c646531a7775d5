"""Layers that run cells over sequences: one direction, both directions, deep stacks, and the
builders and converters around them.

- :class:`Recurrent`: one cell over a sequence (lengths, streaming, the fast engine);
- :class:`Bidirectional`: a forward and a backward layer, reversed within each length, merged;
- :class:`Stack`: layers on top of each other, with dropout and residual connections;
- :class:`WeightDrop`: DropConnect on a layer's recurrent weights (AWD-LSTM), through the engine;
- :func:`build_rnn`: the usual shapes by cell name; :func:`from_torch` / :func:`to_torch`;
- :func:`valid_steps` and :func:`reverse_padded`: the length helpers every layer uses;
- :class:`CRF`: a linear-chain CRF output layer (likelihood, Viterbi and n-best, marginals),
  with :func:`allowed_transitions` for the BIO and BIOES tagging schemes.
"""

from .bidirectional import MERGE_MODES, Bidirectional
from .build import build_rnn
from .convert import from_torch, to_torch
from .crf import CRF, SCHEMES, allowed_transitions
from .lengths import reverse_padded, valid_steps
from .recurrent import ENGINES, Recurrent
from .stack import Stack
from .weight_drop import WeightDrop

__all__ = ["Recurrent", "Bidirectional", "Stack", "MERGE_MODES", "ENGINES", "build_rnn", "from_torch", "to_torch",
           "valid_steps", "reverse_padded", "CRF", "allowed_transitions", "SCHEMES", "WeightDrop"]
