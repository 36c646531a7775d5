"""One model over many series: padded histories -> quantiles of the next K steps (MQ-RNN's direct
multi-horizon decoding, Wen et al. 2017, with DeepAR's per-step inputs, Salinas et al. 2020).

Shapes: B series windows, T history steps (right-padded; ``lengths`` the real ones), F per-step
features, S static categories, K horizon, Q quantiles, Fk known-future features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ..layers import build_rnn
from .pooling import concat_split, pool

__all__ = ["GlobalForecaster", "monotone", "pinball_loss", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("normal", "student_t", "negative_binomial")      # parametric outputs; None: quantiles directly


def monotone(raw: Tensor, centre: int) -> Tensor:
    """Quantiles non-decreasing along the last axis from unconstrained ``raw`` (..., Q): the
    ``centre`` one as it is, each further one away from it by a softplus step."""
    q = raw[..., centre:centre + 1]                                       # (..., 1)
    above = q + torch.cumsum(F.softplus(raw[..., centre + 1:]), -1)
    below = q - torch.flip(torch.cumsum(torch.flip(F.softplus(raw[..., :centre]), [-1]), -1), [-1])
    return torch.cat([below, q, above], -1)


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor, mask: Tensor | None = None) -> Tensor:
    """The mean quantile (pinball) loss of ``pred`` (B, K, Q) against ``target`` (B, K) over the
    steps where ``mask`` (B, K) is true: ``max(q (y - ŷ), (q - 1)(y - ŷ))``."""
    error = target.unsqueeze(-1) - pred                                   # (B, K, Q)
    loss = torch.maximum(quantiles * error, (quantiles - 1) * error)
    if mask is None:
        return loss.mean()
    weights = mask.to(loss.dtype).unsqueeze(-1).expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp_min(1)


class GlobalForecaster(nn.Module):
    """Histories (B, T, F) with ``lengths`` (B,) -> quantiles (B, K, Q), non-decreasing in Q.

    Every step's input is its features with the embeddings of the series' static categories
    (B, S) appended; the recurrent output at each history's last real step, with the embeddings
    and the known-future features of the K forecast steps (B, K, Fk), goes through one linear map
    to K·Q values, made monotone in Q by :func:`monotone`. Trained on :func:`pinball_loss`.

    With ``distribution`` (``normal``, ``student_t`` or ``negative_binomial``, from
    ``torch.distributions``) the head gives each step's parameters instead (location, scale by
    softplus, and for Student's t its degrees of freedom, 2 + softplus), trained on the negative
    log-likelihood; the quantiles are the normal's exact inverse CDF, or those of ``samples`` draws
    from a generator seeded with ``seed`` (the same inputs give the same quantiles);
    :meth:`distribution_of` gives the distribution itself, to sample from.

    ``negative_binomial`` is DeepAR's output for counts: the inputs and targets are the counts
    divided by each window's ``scale`` (B,), which the forward then needs; the distribution is
    over the counts themselves, with mean ``scale · softplus(a)`` and shape ``softplus(b) / √scale``
    (variance ``μ + shape · μ²``), and its quantiles come back divided by ``scale``.

    >>> model = GlobalForecaster("lstm", 3, 16, horizon=4, quantiles=[0.1, 0.5, 0.9], cardinalities=[5])
    >>> q, loss = model(torch.randn(2, 7, 3), torch.tensor([7, 3]), static=torch.tensor([[0], [4]]),
    ...                 targets=torch.randn(2, 4))
    >>> q.shape, bool((q.diff(dim=-1) >= 0).all())
    (torch.Size([2, 4, 3]), True)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, *, horizon: int, quantiles: list[float],
                 cardinalities: list[int] = (), embedding_dim: int = 4, future_size: int = 0,
                 distribution: str | None = None, samples: int = 1000, seed: int = 0, **rnn_options):
        super().__init__()
        check_positive_int("GlobalForecaster", "horizon", horizon)
        levels = list(quantiles)
        if not levels or any(not 0 < q < 1 for q in levels) or levels != sorted(set(levels)):
            fail("GlobalForecaster", "quantiles", "increasing levels strictly between 0 and 1", repr(quantiles))
        if distribution is not None and distribution not in DISTRIBUTIONS:
            fail("GlobalForecaster", "distribution", f"None or one of {DISTRIBUTIONS}", repr(distribution))
        self.horizon, self.future_size = horizon, future_size
        self.distribution, self.samples, self.seed = distribution, samples, seed
        outputs = len(levels) if distribution is None else {"normal": 2, "student_t": 3,
                                                            "negative_binomial": 2}[distribution]
        self.register_buffer("quantiles", torch.tensor(levels, dtype=torch.float64), persistent=False)
        self.centre = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        static_size = embedding_dim * len(cardinalities)
        self.rnn = build_rnn(cell, input_size + static_size, hidden_size, **rnn_options)
        if self.rnn.output_size is None:
            fail("GlobalForecaster", "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.split = concat_split(self.rnn)
        self.head = nn.Linear(self.rnn.output_size + static_size + horizon * future_size, horizon * outputs)

    def encode(self, x: Tensor, lengths: Tensor, static: Tensor | None, state=None):
        """The network's outputs (B, T, O) from ``state`` (None: zeros), its state after each
        row's ``lengths`` steps, and the static embeddings (each (B, E))."""
        B, T, _ = x.shape
        parts, codes = [x], []
        if self.embeddings:
            if static is None:
                fail("GlobalForecaster", "static", f"(B, {len(self.embeddings)}) category codes", "None")
            codes = [emb(static[:, j]) for j, emb in enumerate(self.embeddings)]          # each (B, E)
            parts.append(torch.cat(codes, -1).unsqueeze(1).expand(B, T, -1))
        y, state = self.rnn(torch.cat(parts, -1), state, lengths=lengths)               # (B, T, O)
        return y, state, codes

    def raw(self, h: Tensor, codes: list[Tensor], future: Tensor | None) -> Tensor:
        """The head's raw outputs (..., K, Q or P) from network outputs ``h`` (B, ..., O), the
        static embeddings and the known-future features (B, ..., K, Fk) of the steps they forecast."""
        K, lead = self.horizon, h.shape[:-1]
        summary = [h] + [c.view(c.shape[0], *[1] * (h.dim() - 2), -1).expand(*lead, -1) for c in codes]
        if self.future_size:
            if future is None:
                fail("GlobalForecaster", "future", f"(B, {K}, {self.future_size}) known-future features", "None")
            summary.append(future.reshape(*lead, K * self.future_size))
        return self.head(torch.cat(summary, -1)).view(*lead, K, -1)

    def forward(self, x: Tensor, lengths: Tensor, *, static: Tensor | None = None, future: Tensor | None = None,
                targets: Tensor | None = None, mask: Tensor | None = None,
                scale: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        y, _, codes = self.encode(x, lengths, static)
        raw = self.raw(pool(y, lengths, "last", split=self.split), codes, future)        # (B, K, Q or P)
        return self.outputs(raw, targets, mask, scale)

    def forking(self, x: Tensor, lengths: Tensor, *, targets: Tensor, mask: Tensor, static: Tensor | None = None,
                future: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
        """The loss of forecasts made from every step at once (MQ-RNN's forking sequences): the
        output after step t forecasts ``targets[:, t]`` (B, T, K) where ``mask`` (B, T, K) is true,
        with the known-future features ``future`` (B, T, K, Fk) of its steps. A network that reads
        forward only: each step's forecast is then :meth:`forward`'s on the history up to it."""
        if self.split is not None:
            fail("GlobalForecaster.forking", "self", "a network that reads forward only", "a bidirectional one")
        y, _, codes = self.encode(x, lengths, static)
        return self.outputs(self.raw(y, codes, future), targets, mask, scale)[1]

    def outputs(self, raw: Tensor, targets: Tensor | None = None, mask: Tensor | None = None,
                scale: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The quantiles (..., K, Q) of the head's raw outputs, and their loss against ``targets``."""
        if self.distribution is None:
            pred = monotone(raw, self.centre)
            loss = None if targets is None else pinball_loss(pred, targets, self.quantiles.to(pred.dtype), mask)
            return pred, loss
        counts = self.distribution == "negative_binomial"
        if counts and scale is None:
            fail("GlobalForecaster", "scale", "(B,) the windows' scales (negative_binomial forecasts counts)", "None")
        dist = self.distribution_of(raw, scale)
        pred = self._quantiles(dist)
        if counts:
            pred = pred / _per_row(scale.to(pred.dtype), pred)
        loss = None
        if targets is not None:
            observed = torch.round(targets * _per_row(scale.to(targets.dtype), targets)) if counts else targets
            nll = -dist.log_prob(observed)                                               # (B, ..., K)
            weights = torch.ones_like(nll) if mask is None else mask.to(nll.dtype)
            loss = (nll * weights).sum() / weights.sum().clamp_min(1)
        return pred, loss

    def distribution_of(self, raw: Tensor, scale: Tensor | None = None) -> torch.distributions.Distribution:
        """Each step's distribution from the head's raw parameters (B, K, P) (and for
        ``negative_binomial`` the windows' scales (B,))."""
        if self.distribution == "negative_binomial":
            s = _per_row(scale.to(raw.dtype), raw[..., 0])
            mean = s * F.softplus(raw[..., 0]) + 1e-6
            shape = F.softplus(raw[..., 1]) / s.sqrt() + 1e-6
            return torch.distributions.NegativeBinomial(total_count=1 / shape, logits=torch.log(mean * shape))
        loc, scale = raw[..., 0], F.softplus(raw[..., 1]) + 1e-6
        if self.distribution == "normal":
            return torch.distributions.Normal(loc, scale)
        return torch.distributions.StudentT(2 + F.softplus(raw[..., 2]), loc, scale)

    def _quantiles(self, dist) -> Tensor:
        levels = self.quantiles.to(dist.mean.dtype)                                      # (Q,)
        if isinstance(dist, torch.distributions.Normal):
            return dist.loc.unsqueeze(-1) + dist.scale.unsqueeze(-1) * torch.special.ndtri(levels)
        with torch.random.fork_rng(devices=[]):          # seeded draws that leave the caller's generator alone
            torch.manual_seed(self.seed)
            draws = dist.sample((self.samples,))                                         # (S, B, K)
        # the draws' inverse CDF: the ceil(S q)-th smallest, a count for counts (torch.quantile
        # interpolates between draws and refuses more than 2**24 values)
        index = (torch.ceil(levels * self.samples - 1e-9).long() - 1).clamp(0, self.samples - 1)
        return draws.sort(0).values[index].permute(1, 2, 0)                             # (B, K, Q)


def _per_row(scale: Tensor, like: Tensor) -> Tensor:
    """Each row's scale (B,) shaped to broadcast over ``like`` (B, ...)."""
    return scale.view(-1, *[1] * (like.dim() - 1))
