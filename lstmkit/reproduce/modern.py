"""Modern mode: today's practice (minibatch Adam, clipping, full BPTT, a cell from the registry)
on the paper's own tasks, judged by the paper's own criteria (spec §0 "modern default")."""

from __future__ import annotations

from .experiments import EXPERIMENTS, Row
from .runner import ModernSpec

__all__ = ["MODERN_ROWS", "MODERN_CELLS", "modern_rows"]

MODERN_CELLS = ("lstm", "gru", "peephole", "elman")

# row key -> the modern network for it (spec §2.x "modern default")
MODERN_ROWS: dict[str, ModernSpec] = {
    "1-3x2-lr0.5": ModernSpec(hidden=8, loss="bce", batch=16),
    "2a-p100": ModernSpec(hidden=8, loss="ce", batch=32),
    "2b-p100": ModernSpec(hidden=8, loss="ce", batch=32),
    "2c-q50-p50": ModernSpec(hidden=16, loss="ce", batch=32),
    "2c-q100-p100": ModernSpec(hidden=16, loss="ce", batch=32),
    "3a-T100-N3": ModernSpec(hidden=8, loss="mse", batch=32),
    "3b-T100-N3": ModernSpec(hidden=8, loss="mse", batch=32),
    "3c-T100-N3": ModernSpec(hidden=8, loss="mse", batch=32),
    "4-T100": ModernSpec(hidden=32, loss="mse", batch=64),
    "5-T100-n140": ModernSpec(hidden=32, loss="mse", batch=64),
    "6a": ModernSpec(hidden=32, loss="ce", batch=32),
    "6b": ModernSpec(hidden=32, loss="ce", batch=32),
}


def modern_rows(names) -> list[tuple[str, Row, ModernSpec]]:
    """(experiment name, row, spec) of the modern rows of the chosen experiments."""
    out = []
    for exp in EXPERIMENTS.values():
        for row in exp.rows:
            if row.key in MODERN_ROWS and (exp.name in names or row.key in names):
                out.append((exp.name, row, MODERN_ROWS[row.key]))
    return out
