"""The formal-language experiments of the xLSTM paper (Beck et al. 2024, Figure 4; the tasks of
Delétang et al. 2023): train on short strings, test on longer ones.

Every task reads a string of tokens and names one class after its last token:

- ``parity``: bits; whether the number of ones is odd.
- ``even_pairs``: bits; whether the number of ``01`` and ``10`` pairs is even (equivalently, the
  first and last bits are equal).
- ``cycle_navigation``: moves ``0`` (stay), ``1`` (+1), ``2`` (-1) on a cycle of 5 from 0; the
  final position (5 classes).
- ``modular_arithmetic``: digits 0-4 and operators ``+ - *`` alternating, evaluated left to right
  modulo 5 (Delétang's task without brackets; left to right here, which keeps it a finite-state
  task too); the result (5 classes).
- ``majority``: bits; whether ones outnumber zeros (strings with a tie are drawn again).

As in the ``xlstm`` repository's parity experiment, training strings have 3 to 40 tokens and test
strings 40 to 256. The network is an embedding, one recurrent layer of the cell and a linear read-
out of the last step's output, trained with Adam on fresh strings every step. The score is the
paper's: accuracy rescaled so that chance is 0 and a perfect score 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..models import SequenceClassifier

__all__ = ["TASKS", "CELLS", "FormalTask", "make_batch", "train_and_test"]

CELLS = ("lstm", "slstm", "mlstm", "mingru", "elman")
TRAIN_LENGTHS, TEST_LENGTHS = (3, 40), (40, 256)


@dataclass(frozen=True)
class FormalTask:
    name: str
    vocab: int                                       # token ids 0..vocab-1
    classes: int
    draw: Callable[[np.random.Generator, int], tuple[np.ndarray, int] | None]   # None: draw again


def _parity(rng, n):
    bits = rng.integers(0, 2, n)
    return bits, int(bits.sum() % 2)


def _even_pairs(rng, n):
    bits = rng.integers(0, 2, n)
    return bits, int(np.count_nonzero(bits[1:] != bits[:-1]) % 2 == 0)


def _cycle_navigation(rng, n):
    moves = rng.integers(0, 3, n)
    return moves, int(np.select([moves == 1, moves == 2], [1, -1], 0).sum() % 5)


def _modular_arithmetic(rng, n):
    n = max(1, n - (n + 1) % 2)                      # an odd count: digit (op digit)*
    digits, ops = rng.integers(0, 5, (n + 1) // 2), rng.integers(0, 3, n // 2)
    value = int(digits[0])
    for op, digit in zip(ops, digits[1:]):
        value = (value + digit if op == 0 else value - digit if op == 1 else value * digit) % 5
    tokens = np.empty(n, dtype=np.int64)
    tokens[0::2], tokens[1::2] = digits, 5 + ops     # digits 0-4, operators 5-7
    return tokens, int(value)


def _majority(rng, n):
    bits = rng.integers(0, 2, n)
    ones = int(bits.sum())
    return None if 2 * ones == n else (bits, int(2 * ones > n))


TASKS = {t.name: t for t in (FormalTask("parity", 2, 2, _parity), FormalTask("even_pairs", 2, 2, _even_pairs),
                             FormalTask("cycle_navigation", 3, 5, _cycle_navigation),
                             FormalTask("modular_arithmetic", 8, 5, _modular_arithmetic),
                             FormalTask("majority", 2, 2, _majority))}


def make_batch(task: FormalTask, rng: np.random.Generator, batch: int, lengths: tuple[int, int]):
    """``batch`` strings with lengths uniform in ``lengths`` (inclusive): token ids shifted by one
    (0 pads) (B, T), their lengths (B,) and labels (B,)."""
    strings, labels = [], []
    while len(strings) < batch:
        drawn = task.draw(rng, int(rng.integers(lengths[0], lengths[1] + 1)))
        if drawn is not None:
            strings.append(drawn[0])
            labels.append(drawn[1])
    sizes = torch.tensor([len(s) for s in strings])
    tokens = torch.zeros(batch, int(sizes.max()), dtype=torch.long)
    for row, s in enumerate(strings):
        tokens[row, :len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64) + 1)
    return tokens, sizes, torch.tensor(labels)


def _accuracy(model, task, rng, count: int, lengths) -> float:
    correct = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, count, 250):
            tokens, sizes, labels = make_batch(task, rng, min(250, count - start), lengths)
            logits, _ = model(tokens, lengths=sizes)
            correct += int((logits.argmax(-1) == labels).sum())
    model.train()
    return correct / count


def rescaled(accuracy: float, classes: int) -> float:
    """The paper's score: 0 at chance (1 / classes), 1 when every string is right."""
    chance = 1.0 / classes
    return (accuracy - chance) / (1.0 - chance)


def train_and_test(task: FormalTask, cell: str, *, steps: int = 3000, batch: int = 64, hidden: int = 64,
                   lr: float = 3e-3, seed: int = 0, test_count: int = 2000) -> dict:
    """One cell on one task: trained ``steps`` steps of ``batch`` fresh training strings, then
    scored on ``test_count`` strings of the training lengths and of the test lengths."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SequenceClassifier(cell, 16, hidden, task.classes, vocab_size=task.vocab + 1, embedding_size=16,
                               pooling="last", bidirectional=False, head_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    start, losses = time.perf_counter(), []
    for _ in range(steps):
        tokens, sizes, labels = make_batch(task, rng, batch, TRAIN_LENGTHS)
        logits, _ = model(tokens, lengths=sizes)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    test_rng = np.random.default_rng(seed + 10_000)
    inside = _accuracy(model, task, test_rng, test_count, TRAIN_LENGTHS)
    longer = _accuracy(model, task, test_rng, test_count, TEST_LENGTHS)
    return {"task": task.name, "cell": cell, "seed": seed, "steps": steps, "hidden": hidden,
            "train_accuracy": inside, "test_accuracy": longer, "test_score": rescaled(longer, task.classes),
            "final_loss": float(np.mean(losses[-50:])), "seconds": seconds}
