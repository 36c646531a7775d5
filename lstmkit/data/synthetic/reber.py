"""The Reber grammar, the embedded Reber grammar (Exp. 1 of H&S97) and its continual form (Gers et al. 2000).

Alphabet (one-hot, in this order): ``B T P S X V E``. The Reber automaton (docs/classic_tasks.md §2.1), each branch
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

from ..._checks import check_positive_int, fail
from ._batch import Flat, SequenceBatch, rng_from

__all__ = ["SYMBOLS", "REBER_TRANSITIONS", "reber_string", "embedded_reber_string", "legal_next",
           "embedded_reber", "embedded_reber_strings", "reber_flat", "continual_reber", "top_k_correct"]

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


def _encode(string: str, sets: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(symbol indices (L,), legal-next multi-hot (L, 7))."""
    legal = np.zeros((len(string), len(SYMBOLS)))
    for t, options in enumerate(sets):
        legal[t, [SYMBOLS.index(s) for s in options]] = 1.0
    return np.array([SYMBOLS.index(s) for s in string]), legal


def reber_flat(strings: list[str]) -> Flat:
    """Embedded Reber strings as :class:`Flat` sequences (the last E of each predicts nothing)."""
    coded = [_encode(s[:-1], legal_next(s)[:-1]) for s in strings]
    lengths = np.array([len(s) - 1 for s in strings])
    return Flat(len(SYMBOLS), np.concatenate([t for _, t in coded]), np.ones(int(lengths.sum()), dtype=bool),
                lengths, symbols=np.concatenate([i for i, _ in coded]))


def embedded_reber(batch: int, *, seed: int | np.random.Generator = 0,
                   dtype: torch.dtype = torch.float32) -> SequenceBatch:
    """A batch of embedded Reber strings: inputs (B, T, 7) one-hot, targets the legal next symbols."""
    check_positive_int("embedded_reber", "batch", batch)
    rng = rng_from("embedded_reber", seed)
    return reber_flat([embedded_reber_string(rng) for _ in range(batch)]).batch(dtype)


def embedded_reber_strings(n_train: int = 256, n_test: int = 256, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """The paper's data (Exp. 1): ``n_train`` training strings and ``n_test`` test strings, none of
    which occurs in the training set."""
    check_positive_int("embedded_reber_strings", "n_train", n_train)
    check_positive_int("embedded_reber_strings", "n_test", n_test)
    rng = rng_from("embedded_reber_strings", seed)
    train = [embedded_reber_string(rng) for _ in range(n_train)]
    seen, test = set(train), []
    while len(test) < n_test:
        s = embedded_reber_string(rng)
        if s not in seen:
            test.append(s)
    return train, test


def continual_reber(length: int, *, seed: int | np.random.Generator = 0,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """An endless stream of embedded Reber strings cut to ``length`` steps (Gers et al. 2000):
    ``(x (length, 7), legal (length, 7))``, no resets and no marker of string boundaries; the target
    at each step is the set of legal next symbols (after an ``E`` that ends a string: ``B``)."""
    check_positive_int("continual_reber", "length", length)
    rng = rng_from("continual_reber", seed)
    parts, n = [], 0
    while n <= length:
        parts.append(embedded_reber_string(rng))
        n += len(parts[-1])
    stream = "".join(parts)
    idx, legal = _encode(stream[:length], legal_next(stream, continual=True)[:length])
    return torch.from_numpy(np.eye(len(SYMBOLS))[idx]).to(dtype), torch.from_numpy(legal).to(dtype)


def top_k_correct(output: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Whether, at each step, the |L| most active outputs are exactly the legal set L.

    ``output``, ``legal`` (..., 7); returns a bool tensor (...). Steps with an empty L are correct.
    """
    k = legal.sum(-1, keepdim=True)                                         # (..., 1)
    rank = output.argsort(-1, descending=True).argsort(-1)                 # rank of each output, 0 = top
    chosen = rank < k
    return (chosen == legal.bool()).all(-1)
