"""The Reber grammar, the embedded Reber grammar (Exp. 1 of H&S97) and its continual form (Gers et al. 2000).

Alphabet (one-hot, in this order): ``B T P S X V E``. The Reber automaton (spec §2.1), each branch
with probability 1/2::

    0 -T-> 1 | -P-> 2        1 -S-> 1 | -X-> 3        2 -T-> 2 | -V-> 4
    3 -X-> 2 | -S-> 5        4 -P-> 3 | -V-> 5        5 -E-> end

An embedded string is ``B c <Reber string> c E`` with c ∈ {T, P}: the second c can only be
predicted by remembering the first across the inner string. Every step's target is the set of
legal next symbols (multi-hot); a prediction is correct when its top-|L| outputs are that set L.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_positive_int, fail
from ._batch import SequenceBatch, pack, rng_from

__all__ = ["SYMBOLS", "REBER_TRANSITIONS", "reber_string", "embedded_reber_string", "legal_next",
           "embedded_reber", "embedded_reber_dataset", "continual_reber", "top_k_correct"]

SYMBOLS = "BTPSXVE"
REBER_TRANSITIONS = {0: (("T", 1), ("P", 2)), 1: (("S", 1), ("X", 3)), 2: (("T", 2), ("V", 4)),
                     3: (("X", 2), ("S", 5)), 4: (("P", 3), ("V", 5))}


def reber_string(seed: int | np.random.Generator = 0) -> str:
    """One Reber string, ``B ... E``."""
    rng = rng_from("reber_string", seed)
    out, state = ["B"], 0
    while state != 5:
        symbol, state = REBER_TRANSITIONS[state][rng.integers(2)]
        out.append(symbol)
    return "".join(out) + "E"


def embedded_reber_string(seed: int | np.random.Generator = 0) -> str:
    """One embedded Reber string ``B c <Reber string> c E`` (at least 9 symbols)."""
    rng = rng_from("embedded_reber_string", seed)
    c = "TP"[rng.integers(2)]
    return "B" + c + reber_string(rng) + c + "E"


def legal_next(string: str, *, continual: bool = False) -> list[str]:
    """For each symbol of an embedded string (or a stream of them), the set of legal next symbols.

    The last symbol's set is empty (nothing follows), unless ``continual``: then an ``E`` that ends
    an embedded string is followed by the next string's ``B``.
    """
    bad = "embedded Reber strings (B c <Reber string> c E, one after another)"
    out, i = [], 0
    while i < len(string):
        c = string[i + 1:i + 2]
        if string[i] != "B" or c not in ("T", "P") or string[i + 2:i + 3] != "B":
            fail("legal_next", "string", bad, repr(string))
        sets = ["TP", "B", "TP"]                                            # after B, after c, after the inner B
        state, j = 0, i + 3
        while state != 5:
            moves = dict(REBER_TRANSITIONS[state])
            if j >= len(string) or string[j] not in moves:
                fail("legal_next", "string", bad, repr(string))
            state = moves[string[j]]
            sets.append("E" if state == 5 else "".join(s for s, _ in REBER_TRANSITIONS[state]))
            j += 1
        if string[j:j + 3] != "E" + c + "E":
            fail("legal_next", "string", bad, repr(string))
        sets += [c, "E", "B" if continual else ""]                          # after inner E, after c, after E
        out += sets
        i = j + 3
    if out:
        out[-1] = "B" if continual else ""
    return out


def _encode(string: str, sets: list[str]):
    idx = [SYMBOLS.index(s) for s in string]
    x = np.zeros((len(string), len(SYMBOLS)))
    x[np.arange(len(string)), idx] = 1.0
    target = np.zeros_like(x)
    for t, legal in enumerate(sets):
        target[t, [SYMBOLS.index(s) for s in legal]] = 1.0
    return x, target


def erg_item(string: str):
    """``(x, legal next, mask)`` of one embedded Reber string (the last E predicts nothing)."""
    x, target = _encode(string, legal_next(string))
    return x[:-1], target[:-1], np.ones(len(string) - 1, dtype=bool)


def embedded_reber(batch: int, *, seed: int | np.random.Generator = 0,
                   dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of embedded Reber strings: inputs (B, T, 7) one-hot, targets the legal next symbols."""
    check_positive_int("embedded_reber", "batch", batch)
    rng = rng_from("embedded_reber", seed)
    return pack("embedded_reber", batch, [erg_item(embedded_reber_string(rng)) for _ in range(batch)], dtype=dtype)


def embedded_reber_dataset(n_train: int = 256, n_test: int = 256, *, seed: int = 0,
                           dtype: torch.dtype = torch.float32) -> tuple[SequenceBatch, SequenceBatch, list[str], list[str]]:
    """The paper's data: ``n_train`` training strings and ``n_test`` test strings none of which
    occurs in the training set. Returns ``(train, test, train_strings, test_strings)``."""
    check_positive_int("embedded_reber_dataset", "n_train", n_train)
    check_positive_int("embedded_reber_dataset", "n_test", n_test)
    rng = rng_from("embedded_reber_dataset", seed)
    train = [embedded_reber_string(rng) for _ in range(n_train)]
    seen, test = set(train), []
    while len(test) < n_test:
        s = embedded_reber_string(rng)
        if s not in seen:
            test.append(s)
    batches = [pack("embedded_reber_dataset", len(ss), [erg_item(s) for s in ss], dtype=dtype) for ss in (train, test)]
    return batches[0], batches[1], train, test


def continual_reber(length: int, *, seed: int | np.random.Generator = 0,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """An endless stream of embedded Reber strings cut to ``length`` steps (Gers et al. 2000):
    ``(x (length, 7), legal (length, 7))``, no resets and no marker of string boundaries; the target
    at each step is the set of legal next symbols (after an ``E`` that ends a string: ``B``)."""
    check_positive_int("continual_reber", "length", length)
    rng = rng_from("continual_reber", seed)
    parts, n = [], 0
    while n < length:
        parts.append(embedded_reber_string(rng))
        n += len(parts[-1])
    stream = "".join(parts)[:length]
    x, target = _encode(stream, legal_next("".join(parts), continual=True)[:length])
    return torch.from_numpy(x).to(dtype), torch.from_numpy(target).to(dtype)


def top_k_correct(output: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Whether, at each step, the |L| most active outputs are exactly the legal set L.

    ``output``, ``legal`` (..., 7); returns a bool tensor (...). Steps with an empty L are correct.
    """
    k = legal.sum(-1, keepdim=True)                                         # (..., 1)
    rank = output.argsort(-1, descending=True).argsort(-1)                 # rank of each output, 0 = top
    chosen = rank < k
    return (chosen == legal.bool()).all(-1)
