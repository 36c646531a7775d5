"""Random weight guessing (Schmidhuber & Hochreiter 1996): draw every weight of the paper's
network i.i.d. from U[−a, a] until all training sequences are classified correctly. H&S97 note
that it solves the two-sequence problem (Exp. 3a) faster than gradient learning: that task is
easy for the architecture, not a test of long-lag learning."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .experiments import Row
from .runner import TEST_SEQUENCES

__all__ = ["guess"]


def guess(row: Row, *, seed: int = 0, trial: int = 0, scale: float = 10.0, train_size: int = 256,
          max_guesses: int = 20_000) -> dict:
    """Guesses until every one of ``train_size`` training sequences is correct (|error| < 0.2 at
    the end), then the fraction misclassified on 2,560 test sequences."""
    net = dataclasses.replace(row.net, init_range=scale, input_gate_bias=None, output_gate_bias=None)
    rng = np.random.default_rng([seed, trial, 5])
    train = row.draw(trial, rng, train_size)
    start = time.perf_counter()
    for n in range(1, max_guesses + 1):
        weights = net.init([seed, trial, 6, n])
        y = weights.run(train)
        if (np.abs(y[train.ends] - train.target[train.ends]) < 0.2).all():
            test = row.draw(trial, np.random.default_rng([seed, trial, 3]), TEST_SEQUENCES)
            return {"success": True, "guesses": n, "test": row.test(test, weights.run(test)),
                    "seconds": time.perf_counter() - start}
    return {"success": False, "guesses": max_guesses, "test": {}, "seconds": time.perf_counter() - start}
