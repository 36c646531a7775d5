"""Small data files the tests train on."""

import json
from pathlib import Path

import numpy as np


def two_class_series(path: Path, n: int, rng: np.random.Generator, *, spread: float = 0.3,
                     centre: tuple[float, float] = (1.0, 0.0)) -> Path:
    """``n`` JSON lines ``{"x": 4 to 8 steps of 2 features, "y": "c0" or "c1"}``: the classes
    alternate, and class c0's first feature is centred at ``centre[0]``, c1's at ``-centre[0]``
    (the second at ``centre[1]``), with noise of sd ``spread`` drawn from ``rng``."""
    with open(path, "w") as f:
        for i in range(n):
            x = rng.normal(0, spread, (int(rng.integers(4, 9)), 2)) + [[(-1) ** (i % 2) * centre[0], centre[1]]]
            f.write(json.dumps({"x": x.round(3).tolist(), "y": f"c{i % 2}"}) + "\n")
    return path
