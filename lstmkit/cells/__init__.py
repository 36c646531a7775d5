"""Recurrent cells of the LSTM family behind one protocol, registered by name.

>>> from lstmkit import cells
>>> cell = cells.make("peephole", 3, 5)
>>> y, state = cell.step(torch.zeros(2, 3))
>>> tuple(y.shape)
(2, 5)
"""

import torch  # noqa: F401  (used by the doctest above)

from ._base import Cell, State
from ._registry import builder, make, names, register
from .elman import Elman
from .gru import GRU
from .layernorm import LayerNormLSTM
from .lstm import LSTM
from .lstm1997 import LSTM1997
from .minimal import MinGRU, MinimalRNN, MinLSTM
from .peephole import GREFF_VARIANTS, PeepholeLSTM
from .user import UserCell
from .zoo import (BR, CFN, JANET, NBR, STAR, UGRNN, AntisymmetricRNN, CoRNN, FastGRNN, FastRNN,
                  GatedAntisymmetricRNN, IndRNN, LiGRU, UnICORNN)
from .xlstm import MLSTM, SLSTM

__all__ = ["Cell", "State", "make", "names", "register", "builder", "Elman", "LSTM", "LSTM1997",
           "PeepholeLSTM", "GREFF_VARIANTS", "GRU", "LayerNormLSTM", "MinimalRNN", "MinGRU", "MinLSTM",
           "SLSTM", "MLSTM", "UserCell", "IndRNN", "JANET", "LiGRU", "CoRNN", "UnICORNN", "BR", "NBR", "FastRNN",
           "FastGRNN", "STAR", "CFN", "AntisymmetricRNN", "GatedAntisymmetricRNN", "UGRNN"]
