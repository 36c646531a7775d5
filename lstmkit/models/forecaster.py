"""Direct multi-step forecasting: a window of a series -> the next values at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ..layers import build_rnn
from .pooling import concat_split, pool

__all__ = ["Forecaster"]


class Forecaster(nn.Module):
    """Direct multi-step forecaster: a window (B, W, F) -> the next ``horizon`` values (B, K).

    The recurrent network reads the window; the output at its last step goes through a
    linear layer to all K future values at once (the direct strategy: no error feedback).
    With ``horizon=1`` it is a one-step predictor, as used for prediction-error anomaly scores.

    >>> model = Forecaster("gru", 1, 16, horizon=12)
    >>> pred, loss = model(torch.randn(8, 48, 1), targets=torch.randn(8, 12))
    >>> pred.shape
    torch.Size([8, 12])
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, *, horizon: int = 1, **rnn_options):
        super().__init__()
        check_positive_int("Forecaster", "horizon", horizon)
        self.horizon = horizon
        self.rnn = build_rnn(cell, input_size, hidden_size, **rnn_options)
        if self.rnn.output_size is None:
            fail("Forecaster", "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.split = concat_split(self.rnn)
        self.head = nn.Linear(self.rnn.output_size, horizon)

    def forward(self, x: Tensor, *, targets: Tensor | None = None):
        B, W, _ = x.shape
        y, _ = self.rnn(x)                                             # (B, W, O)
        lengths = torch.full((B,), W, dtype=torch.long)
        pred = self.head(pool(y, lengths, "last", split=self.split))   # (B, K)
        loss = F.mse_loss(pred, targets) if targets is not None else None
        return pred, loss
