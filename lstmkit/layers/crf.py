"""A linear-chain conditional random field over per-step tag scores (Lafferty et al. 2001), the
output layer of the BiLSTM-CRF tagger (Huang, Xu & Yu 2015; Lample et al. 2016).

Shapes: B batch, T time, K tags. ``emissions`` (B, T, K) are the per-step scores of each tag
(a recurrent encoder's output projected to K); ``tags`` (B, T) int64; ``lengths`` (B,) int64,
every one >= 1 (None: all T steps). The score of a tag sequence y of length L is::

    s(y) = start[y_0] + sum_{t<L} emissions[t, y_t] + sum_{0<t<L} transitions[y_{t-1}, y_t] + end[y_{L-1}]

and p(y | x) = exp(s(y)) / Z with Z the sum over every tag sequence of that length (the forward
algorithm, in log space). Steps past a sequence's length never enter its score. Transitions,
starts and ends that ``allowed`` forbids (a tagging scheme's rules, see
:func:`allowed_transitions`) score -inf: no path through them has any probability, and decoding
never returns one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import fail
from .lengths import valid_steps

__all__ = ["CRF", "allowed_transitions", "SCHEMES"]

SCHEMES = ("BIO", "BIOES")


def allowed_transitions(labels: Sequence[str], scheme: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(transitions (K, K), start (K,), end (K,))`` bool masks of what ``scheme`` allows for
    ``labels`` such as ``["O", "B-PER", "I-PER"]``: in BIO, ``I-X`` only after ``B-X`` or ``I-X``
    (so never first); in BIOES also ``I-X``/``E-X`` only after ``B-X``/``I-X``, ``B-X``/``I-X``
    only before ``I-X``/``E-X``, and a sequence ends on ``E``, ``S`` or ``O``."""
    if scheme not in SCHEMES:
        fail("allowed_transitions", "scheme", f"one of {list(SCHEMES)}", repr(scheme))
    prefixes = {"BIO": "BIO", "BIOES": "BIOES"}[scheme]
    parsed = []
    for label in labels:
        prefix, _, kind = label.partition("-")
        if label == "O":
            parsed.append(("O", ""))
        elif prefix in prefixes and prefix != "O" and kind:
            parsed.append((prefix, kind))
        else:
            fail("allowed_transitions", "labels", f"'O' or {scheme} labels such as 'B-PER'", repr(label))
    K = len(parsed)
    inside = {"BIO": ("I",), "BIOES": ("I", "E")}[scheme]          # continue an entity
    opens = {"BIO": ("B",), "BIOES": ("B", "I")}[scheme]           # an entity that must go on (BIOES)
    transitions = torch.ones(K, K, dtype=torch.bool)
    for i, (p, a) in enumerate(parsed):
        for j, (q, b) in enumerate(parsed):
            if q in inside:                                         # I-X (E-X) continues B-X or I-X
                transitions[i, j] = p in ("B", "I") and a == b
            elif scheme == "BIOES" and p in opens:                  # B-X, I-X must be followed by I-X or E-X
                transitions[i, j] = False
    start = torch.tensor([p not in inside for p, _ in parsed])
    end = torch.tensor([scheme == "BIO" or p in ("E", "S", "O") for p, _ in parsed])
    return transitions, start, end


class CRF(nn.Module):
    """A linear-chain CRF over ``num_tags`` tags, with start and end transitions.

    ``allowed``: optional ``(transitions, start, end)`` bool masks (as
    :func:`allowed_transitions` returns) of what may occur; the rest scores -inf.

    - ``crf(emissions, tags, lengths)``: the negative log-likelihood of ``tags``, averaged over
      the batch (``reduction="sum"`` or ``"none"``: summed, or per sequence (B,));
    - ``crf.decode(emissions, lengths, n_best=1)``: the best tag sequences (Viterbi), each a list
      of its length, and their scores;
    - ``crf.marginals(emissions, lengths)``: p(y_t = k | x), (B, T, K), zero past each length.

    Example::

        >>> crf = CRF(3)
        >>> emissions = torch.randn(2, 4, 3)
        >>> loss = crf(emissions, torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0]]), torch.tensor([4, 2]))
        >>> paths, scores = crf.decode(emissions, torch.tensor([4, 2]))
        >>> [len(p) for p in paths]
        [4, 2]
    """

    def __init__(self, num_tags: int, *, allowed: tuple[Tensor, Tensor, Tensor] | None = None):
        super().__init__()
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 1:
            fail("CRF", "num_tags", "a positive int", repr(num_tags))
        K = self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(K, K).uniform_(-0.1, 0.1))   # [from, to]
        self.start = nn.Parameter(torch.empty(K).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(K).uniform_(-0.1, 0.1))
        if allowed is None:
            allowed = (torch.ones(K, K, dtype=torch.bool), torch.ones(K, dtype=torch.bool),
                       torch.ones(K, dtype=torch.bool))
        shapes = ((K, K), (K,), (K,))
        if len(allowed) != 3 or any(tuple(torch.as_tensor(m).shape) != s for m, s in zip(allowed, shapes)):
            fail("CRF", "allowed", f"(transitions ({K}, {K}), start ({K},), end ({K},)) bool masks",
                 [tuple(torch.as_tensor(m).shape) for m in allowed])
        masks = [torch.as_tensor(m, dtype=torch.bool) for m in allowed]
        if not masks[1].any() or not masks[2].any():
            fail("CRF", "allowed", "at least one allowed start tag and end tag", "none")
        self.register_buffer("allowed_transitions", masks[0])
        self.register_buffer("allowed_start", masks[1])
        self.register_buffer("allowed_end", masks[2])

    def extra_repr(self) -> str:
        forbidden = int((~self.allowed_transitions).sum())
        return f"num_tags={self.num_tags}" + (f", forbidden_transitions={forbidden}" if forbidden else "")

    # scores with what is forbidden at -inf ---------------------------------------------
    def _scores(self) -> tuple[Tensor, Tensor, Tensor]:
        ninf = float("-inf")
        return (self.transitions.masked_fill(~self.allowed_transitions, ninf),
                self.start.masked_fill(~self.allowed_start, ninf), self.end.masked_fill(~self.allowed_end, ninf))

    def _check(self, emissions: Tensor, lengths: Tensor | None, tags: Tensor | None = None) -> Tensor:
        """The (B, T) mask of valid steps, after checking every argument."""
        if not isinstance(emissions, Tensor) or emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            got = f"shape {tuple(emissions.shape)}" if isinstance(emissions, Tensor) else type(emissions).__name__
            fail("CRF", "emissions", f"a (batch, time, {self.num_tags}) tensor", got)
        B, T, _ = emissions.shape
        if T == 0:
            fail("CRF", "emissions", "at least one step", "shape " + str(tuple(emissions.shape)))
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=emissions.device)
        if not isinstance(lengths, Tensor) or lengths.shape != (B,) or lengths.dtype != torch.long:
            got = f"{lengths.dtype} shape {tuple(lengths.shape)}" if isinstance(lengths, Tensor) else repr(lengths)
            fail("CRF", "lengths", f"an int64 tensor of shape ({B},)", got)
        if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
            fail("CRF", "lengths", f"values in [1, {T}] (an empty sequence has no tags)", lengths.tolist())
        if tags is not None:
            if not isinstance(tags, Tensor) or tags.shape != (B, T) or tags.dtype != torch.long:
                got = f"{tags.dtype} shape {tuple(tags.shape)}" if isinstance(tags, Tensor) else repr(tags)
                fail("CRF", "tags", f"an int64 tensor of shape ({B}, {T})", got)
            valid = valid_steps(lengths, T)
            if bool(((tags < 0) | (tags >= self.num_tags))[valid].any()):
                fail("CRF", "tags", f"tag indices in [0, {self.num_tags})", tags[valid].unique().tolist())
        return valid_steps(lengths, T)

    # likelihood -------------------------------------------------------------------------
    def forward(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None, *,
                reduction: str = "mean") -> Tensor:
        """The negative log-likelihood -log p(tags | emissions)."""
        if reduction not in ("mean", "sum", "none"):
            fail("CRF", "reduction", "'mean', 'sum' or 'none'", repr(reduction))
        mask = self._check(emissions, lengths, tags)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        return nll.mean() if reduction == "mean" else nll.sum() if reduction == "sum" else nll

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """s(tags) of each sequence, (B,); ``mask`` (B, T) the valid steps."""
        trans, start, end = self._scores()
        B, T, _ = emissions.shape
        tags = tags.clamp(0, self.num_tags - 1)                   # padding may hold anything
        steps = emissions.gather(2, tags[..., None]).squeeze(2)                                  # (B, T)
        total = start[tags[:, 0]] + torch.where(mask, steps, torch.zeros_like(steps)).sum(1)
        if T > 1:
            pairs = trans[tags[:, :-1], tags[:, 1:]]                                         # (B, T-1)
            total = total + torch.where(mask[:, 1:], pairs, torch.zeros_like(pairs)).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1)[:, None]).squeeze(1)                           # (B,)
        return total + end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z of each sequence, (B,): the forward algorithm in log space."""
        trans, start, end = self._scores()
        alpha = start + emissions[:, 0]                                                        # (B, K)
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + trans, dim=1) + emissions[:, t]         # (B, K)
            alpha = torch.where(mask[:, t, None], step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    # decoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor | None = None, *,
               n_best: int = 1) -> tuple[list, Tensor]:
        """The best tag sequence of each sequence (Viterbi) and its score s(y): ``(paths, scores)``
        with ``paths[b]`` a list of ``lengths[b]`` tags and ``scores`` (B,). With ``n_best > 1``,
        ``paths[b]`` is the list of the n best sequences, best first, and ``scores`` (B, n);
        where fewer than n sequences are allowed, the missing ones score -inf."""
        if isinstance(n_best, bool) or not isinstance(n_best, int) or n_best < 1:
            fail("CRF.decode", "n_best", "a positive int", repr(n_best))
        mask = self._check(emissions, lengths)
        trans, start, end = self._scores()
        B, T, K = emissions.shape
        n = n_best
        # delta (B, K, n): the n best scores of paths ending in each tag; rank 0 holds the start
        delta = torch.full((B, K, n), float("-inf"), dtype=emissions.dtype, device=emissions.device)
        delta[:, :, 0] = start + emissions[:, 0]
        back = []                                    # per step: (B, K, n) index into the previous (tag, rank)
        keep = torch.arange(K * n, device=emissions.device).view(1, K, n).expand(B, K, n)
        for t in range(1, T):
            cand = delta[:, :, None, :] + trans[None, :, :, None]                             # (B, K_prev, K, n)
            cand = cand.permute(0, 2, 1, 3).reshape(B, K, K * n)                               # (B, K, K_prev*n)
            best, index = cand.topk(n, dim=2)                                                  # (B, K, n)
            step = best + emissions[:, t, :, None]
            valid = mask[:, t, None, None]
            delta = torch.where(valid, step, delta)
            back.append(torch.where(valid, index, keep))                                       # padding: stay put
        final, flat = (delta + end[None, :, None]).reshape(B, K * n).topk(n, dim=1)            # (B, n)
        steps = [flat // n]                                       # the tags, last step first
        for t in range(T - 1, 0, -1):
            flat = back[t - 1].reshape(B, K * n).gather(1, flat)
            steps.append(flat // n)
        tags = torch.stack(steps[::-1], 1).tolist()                                            # (B, T, n)
        paths = []
        for b, length in enumerate(mask.sum(1).tolist()):
            ranked = [[tags[b][t][r] for t in range(length)] for r in range(n) if r == 0 or final[b, r] > float("-inf")]
            paths.append(ranked if n_best > 1 else ranked[0])
        return paths, (final if n_best > 1 else final[:, 0])

    def marginals(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """p(y_t = k | x) for every valid step, (B, T, K); rows past a sequence's length are zero.

        Computed as the gradient of log Z with respect to the emissions, which is exactly the
        forward-backward marginal (and as exact as the forward algorithm); clamped to [0, 1],
        which float32 rounding can leave by about 1e-6."""
        mask = self._check(emissions, lengths)
        with torch.enable_grad():
            e = emissions.detach().requires_grad_()
            (marginals,) = torch.autograd.grad(self.log_partition(e, mask).sum(), e)
        return marginals.clamp(0.0, 1.0) * mask[..., None]
