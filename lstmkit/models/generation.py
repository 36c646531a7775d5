"""Text generation from a :class:`~lstmkit.models.LanguageModel`: sampling (temperature, top-k,
nucleus/top-p), greedy decoding and beam search.

The prompt is read once, by one ``forward`` over it; every new token is then one recurrent
:meth:`~lstmkit.models.LanguageModel.step` from the carried state, never a new pass over the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from .._checks import check_positive_int, check_seed, fail
from .language_model import LanguageModel

__all__ = ["filter_logits", "sample", "generate", "generate_scored", "beam_search"]


def _check_sampling(owner: str, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        fail(owner, "temperature", "a number >= 0 (0: the most probable token)", repr(temperature))
    if top_k is not None:
        check_positive_int(owner, "top_k", top_k)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        fail(owner, "top_p", "a probability in (0, 1]", repr(top_p))


def filter_logits(logits: Tensor, *, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (B, V) with -inf outside each row's allowed tokens: the ``top_k`` most probable,
    and the smallest set of most probable tokens whose probabilities sum to at least ``top_p``
    (nucleus sampling, Holtzman et al. 2020; the most probable token is always kept)."""
    _check_sampling("filter_logits", 1.0, top_k, top_p)
    return _filter(logits, top_k, top_p)


def _filter(logits: Tensor, top_k: int | None, top_p: float | None) -> Tensor:
    out = logits
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                       # (B, 1)
        out = out.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = out.sort(dim=-1, descending=True)                # (B, V)
        p = sorted_logits.softmax(-1)
        before = p.cumsum(-1) - p                                               # mass of the tokens above
        drop_sorted = before >= top_p                                           # the first token: before = 0
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def sample(logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits`` (B, V) -> (B,): drawn from softmax(logits / temperature)
    restricted by :func:`filter_logits`; ``temperature=0`` takes the most probable token."""
    _check_sampling("sample", temperature, top_k, top_p)
    return _sample(logits, temperature, top_k, top_p, generator)


def _sample(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None,
            generator: torch.Generator | None) -> Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    probabilities = _filter(logits.double() / temperature, top_k, top_p).softmax(-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def _prompt_state(model: LanguageModel, prompt: Sequence[int]) -> tuple[Tensor, list]:
    if len(prompt) == 0:
        fail("generate", "prompt", "at least one token id (a sentence start such as <eos>)", "an empty prompt")
    tokens = torch.as_tensor(list(prompt), dtype=torch.long)[None]             # (1, P)
    logits, state, _ = model(tokens)                                            # the prompt, read once
    return logits[:, -1], state                                                 # (1, V)


def generate(model: LanguageModel, prompt: Sequence[int], *, max_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             stop: int | None = None) -> Iterator[int]:
    """New token ids after ``prompt``, one at a time as they are produced (an iterator), until
    ``max_tokens`` or the ``stop`` token (yielded too). The same ``seed`` gives the same tokens.
    The model is put in eval mode."""
    for token, _ in generate_scored(model, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                    top_p=top_p, seed=seed, stop=stop):
        yield token


@torch.no_grad()
def generate_scored(model: LanguageModel, prompt: Sequence[int], *, max_tokens: int, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                    stop: int | None = None) -> Iterator[tuple[int, Tensor]]:
    """:func:`generate`'s tokens, each with the model's logits (V,) at the step that drew it:
    what the model says, before the temperature and the top-k/top-p filter (their log-softmax is
    left to whoever needs it, so that plain generation pays nothing for it)."""
    check_positive_int("generate", "max_tokens", max_tokens)
    _check_sampling("generate", temperature, top_k, top_p)
    if seed is not None:
        check_seed("generate", "seed", seed)
    model.eval()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    logits, state = _prompt_state(model, prompt)
    for _ in range(max_tokens):
        token = _sample(logits, temperature, top_k, top_p, generator)                   # (1,), checked above
        yield int(token), logits[0]                                                     # (V,)
        if stop is not None and int(token) == stop:
            return
        logits, state = model.step(token, state)                                # one step from the carried state


@torch.no_grad()
def beam_search(model: LanguageModel, prompt: Sequence[int], *, beam: int, max_tokens: int,
                stop: int | None = None) -> list[tuple[list[int], float]]:
    """The ``beam`` most probable continuations of ``prompt`` found by beam search, best first,
    each ``(token ids, log-probability)``. A continuation ends at ``stop`` (included) or after
    ``max_tokens``; all beams advance together as one batch through :meth:`LanguageModel.step`."""
    check_positive_int("beam_search", "beam", beam)
    check_positive_int("beam_search", "max_tokens", max_tokens)
    model.eval()
    logits, state = _prompt_state(model, prompt)
    scores = torch.zeros(1, dtype=torch.float64)                                # (N,) live beams' log-probs
    live: list[list[int]] = [[]]
    done: list[tuple[list[int], float]] = []
    for _ in range(max_tokens):
        V = logits.shape[-1]
        total = (scores[:, None] + logits.double().log_softmax(-1)).flatten()  # (N * V,)
        top = total.topk(min(beam, total.numel()))
        rows, tokens = top.indices // V, top.indices % V
        keep = []
        for score, row, token in zip(top.values.tolist(), rows.tolist(), tokens.tolist()):
            sequence = live[row] + [token]
            if stop is not None and token == stop:
                done.append((sequence, score))
            else:
                keep.append((sequence, score, row))
        if not keep or len(done) >= beam and sorted(s for _, s in done)[-beam] >= keep[0][1]:
            break                                       # a live beam's log-probability can only fall
        live = [s for s, _, _ in keep]
        scores = torch.tensor([s for _, s, _ in keep], dtype=torch.float64)
        index = torch.tensor([r for _, _, r in keep])
        state = [tuple(s[index] for s in layer) for layer in state]            # each beam's parent state
        logits, state = model.step(torch.tensor([s[-1] for s in live]), state)
    else:
        done += list(zip(live, scores.tolist()))
    return sorted(done, key=lambda d: -d[1])[:beam]
