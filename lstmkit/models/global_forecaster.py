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

__all__ = ["GlobalForecaster", "monotone", "pinball_loss", "DISTRIBUTIONS", "DECODERS"]

DISTRIBUTIONS = ("normal", "student_t", "negative_binomial")      # parametric outputs; None: quantiles directly
DECODERS = ("direct", "autoregressive")


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

    ``decoder="autoregressive"`` (DeepAR) needs a distribution and per-step inputs that are the
    value and the step's known features only (``input_size == 1 + future_size``): the head forecasts
    one step; training reads the true values (teacher forcing: :meth:`forking` with K = 1, or the
    forward's likelihood of each forecast step after the true values before it); a forecast draws
    ``paths`` sample paths, each draw fed back as the next step's value, and reads the quantiles
    of each step off them (seeded with ``seed``). :meth:`forecast` continues from a read history
    (the network's last output and state), as a serving session does.

    >>> model = GlobalForecaster("lstm", 3, 16, horizon=4, quantiles=[0.1, 0.5, 0.9], cardinalities=[5])
    >>> q, loss = model(torch.randn(2, 7, 3), torch.tensor([7, 3]), static=torch.tensor([[0], [4]]),
    ...                 targets=torch.randn(2, 4))
    >>> q.shape, bool((q.diff(dim=-1) >= 0).all())
    (torch.Size([2, 4, 3]), True)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, *, horizon: int, quantiles: list[float],
                 cardinalities: list[int] = (), embedding_dim: int = 4, future_size: int = 0,
                 distribution: str | None = None, samples: int = 1000, seed: int = 0, decoder: str = "direct",
                 paths: int = 200, **rnn_options):
        super().__init__()
        check_positive_int("GlobalForecaster", "horizon", horizon)
        if decoder not in DECODERS:
            fail("GlobalForecaster", "decoder", f"one of {DECODERS}", repr(decoder))
        if decoder == "autoregressive":
            if distribution is None:
                fail("GlobalForecaster", "distribution", "a distribution to draw from (decoder 'autoregressive')",
                     "None")
            if input_size != 1 + future_size:
                fail("GlobalForecaster", "input_size", f"1 + future_size = {1 + future_size} (decoder "
                     "'autoregressive' feeds each draw back with the step's known features only)", input_size)
            check_positive_int("GlobalForecaster", "paths", paths)
        levels = list(quantiles)
        if not levels or any(not 0 < q < 1 for q in levels) or levels != sorted(set(levels)):
            fail("GlobalForecaster", "quantiles", "increasing levels strictly between 0 and 1", repr(quantiles))
        if distribution is not None and distribution not in DISTRIBUTIONS:
            fail("GlobalForecaster", "distribution", f"None or one of {DISTRIBUTIONS}", repr(distribution))
        self.horizon, self.future_size, self.decoder, self.paths = horizon, future_size, decoder, paths
        self.ahead = 1 if decoder == "autoregressive" else horizon        # the steps the head forecasts at once
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
        self.head = nn.Linear(self.rnn.output_size + static_size + self.ahead * future_size, self.ahead * outputs)

    def encode(self, x: Tensor, lengths: Tensor, static: Tensor | None, state=None):
        """The network's outputs (B, T, O) from ``state`` (None: zeros), its state after each
        row's ``lengths`` steps, and the static embeddings (each (B, E))."""
        B, T, _ = x.shape
        codes = self._embedded(static)
        parts = [x] + ([torch.cat(codes, -1).unsqueeze(1).expand(B, T, -1)] if codes else [])
        y, state = self.rnn(torch.cat(parts, -1), state, lengths=lengths)               # (B, T, O)
        return y, state, codes

    def step(self, x_t: Tensor, static: Tensor | None, state=None):
        """One step of :meth:`encode` for every row: ``x_t`` (B, F) -> the output (B, O), the state
        after it and the static embeddings (the streaming form of a forward network)."""
        codes = self._embedded(static)
        y, state = self.rnn.step(torch.cat([x_t, *codes], -1) if codes else x_t, state)
        return y, state, codes

    def _embedded(self, static: Tensor | None) -> list[Tensor]:
        """The embeddings (each (B, E)) of the static category codes (B, S); none without categories."""
        if self.embeddings and static is None:
            fail("GlobalForecaster", "static", f"(B, {len(self.embeddings)}) category codes", "None")
        return [emb(static[:, j]) for j, emb in enumerate(self.embeddings)]

    def raw(self, h: Tensor, codes: list[Tensor], future: Tensor | None) -> Tensor:
        """The head's raw outputs (..., K, Q or P) from network outputs ``h`` (B, ..., O), the
        static embeddings and the known-future features (B, ..., K, Fk) of the steps they forecast."""
        K, lead = self.ahead, h.shape[:-1]
        summary = [h] + [c.view(c.shape[0], *[1] * (h.dim() - 2), -1).expand(*lead, -1) for c in codes]
        if self.future_size:
            if future is None:
                fail("GlobalForecaster", "future", f"(B, {K}, {self.future_size}) known-future features", "None")
            summary.append(future.reshape(*lead, K * self.future_size))
        return self.head(torch.cat(summary, -1)).view(*lead, K, -1)

    def forward(self, x: Tensor, lengths: Tensor, *, static: Tensor | None = None, future: Tensor | None = None,
                targets: Tensor | None = None, mask: Tensor | None = None,
                scale: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        y, state, codes = self.encode(x, lengths, static)
        last = pool(y, lengths, "last", split=self.split)                               # (B, O)
        if self.decoder == "direct":
            return self.outputs(self.raw(last, codes, future), targets, mask, scale)     # (B, K, Q)
        loss = None if targets is None else self._teacher_forced(last, state, static, codes, future, targets,
                                                                  mask, scale)
        return self.forecast(last, state, static, codes, future, scale), loss

    def forecast(self, last: Tensor, state, static: Tensor | None, codes: list[Tensor], future: Tensor | None,
                 scale: Tensor | None = None) -> Tensor:
        """The quantiles (B, K, Q) of the next K steps after a history the network has read: its last
        output ``last`` (B, O) and ``state``; ``future`` (B, K, Fk) the forecast steps' features."""
        if self.decoder == "direct":
            return self.outputs(self.raw(last, codes, future), scale=scale)[0]
        return self._paths(last, state, static, codes, future, scale)

    def _next_input(self, z: Tensor, future: Tensor | None, k: int) -> Tensor:
        """(N, 1, F) the input of forecast step k: its value ``z`` (N,) and its known features."""
        parts = [z[:, None]] + ([future[:, k]] if self.future_size else [])
        return torch.cat(parts, -1).unsqueeze(1)

    def _teacher_forced(self, last, state, static, codes, future, targets, mask, scale) -> Tensor:
        """The autoregressive decoder's loss over the K steps, each forecast from the true values
        before it (DeepAR's likelihood of the forecast range)."""
        K, B = self.horizon, last.shape[0]
        outputs = [last]
        if K > 1:
            fed = torch.cat([self._next_input(targets[:, k], future, k) for k in range(K - 1)], 1)   # (B, K-1, F)
            y, _, _ = self.encode(fed, torch.full((B,), K - 1), static, state)
            outputs.append(y)
        h = torch.cat([outputs[0].unsqueeze(1)] + outputs[1:], 1)                       # (B, K, O)
        ahead = future.unsqueeze(2) if self.future_size else None                      # (B, K, 1, Fk)
        return self.outputs(self.raw(h, codes, ahead), targets.unsqueeze(-1), mask.unsqueeze(-1) if mask is not None
                            else None, scale)[1]

    def _paths(self, last, state, static, codes, future, scale) -> Tensor:
        """The quantiles of ``paths`` sample paths per row, each step's draw fed back as the next
        step's value (DeepAR), drawn from a generator seeded with ``seed``."""
        S, B, K = self.paths, last.shape[0], self.horizon
        rows = lambda t: None if t is None else t.repeat_interleave(S, 0)           # noqa: E731  (B·S, ...)
        state = _mapped(state, rows)
        y, static, future, scale = rows(last), rows(static), rows(future), rows(scale)
        codes = [rows(c) for c in codes]
        draws = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for k in range(K):
                ahead = future[:, k:k + 1] if self.future_size else None                 # (N, 1, Fk)
                z = self.distribution_of(self.raw(y, codes, ahead), scale).sample()[:, 0]   # (N,)
                if self.distribution == "negative_binomial":
                    z = z / scale.to(z.dtype)
                draws.append(z)
                if k < K - 1:
                    out, state, _ = self.encode(self._next_input(z, future, k), torch.ones(len(z), dtype=torch.long),
                                                static, state)
                    y = out[:, 0]
        paths = torch.stack(draws, -1).view(B, S, K)                                    # (B, S, K)
        return _inverse_cdf(paths, self.quantiles.to(paths.dtype), 1).transpose(1, 2)   # (B, K, Q)

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
            draws = dist.sample((self.samples,))                                         # (S, B, ..., K)
        return _inverse_cdf(draws, levels, 0).movedim(0, -1)                             # (B, ..., K, Q)


def _per_row(scale: Tensor, like: Tensor) -> Tensor:
    """Each row's scale (B,) shaped to broadcast over ``like`` (B, ...)."""
    return scale.view(-1, *[1] * (like.dim() - 1))


def _inverse_cdf(draws: Tensor, levels: Tensor, dim: int) -> Tensor:
    """The draws' empirical inverse CDF at ``levels`` (Q,) along ``dim`` (which it then indexes):
    the ceil(S·q)-th smallest of the S draws, so counts stay counts (torch.quantile interpolates
    between draws, and refuses more than 2**24 values)."""
    S = draws.shape[dim]
    index = (torch.ceil(levels * S - 1e-9).long() - 1).clamp(0, S - 1)
    return draws.sort(dim).values.index_select(dim, index)


def _mapped(state, f):
    """A network state (tensors in tuples and lists) with ``f`` applied to each tensor."""
    if isinstance(state, Tensor):
        return f(state)
    return type(state)(_mapped(part, f) for part in state)
