"""What a run logged for its last validation, against the same figures computed over the whole
validation split at once: the epoch's figures must be those of the split, however it was batched."""

import csv
import math
from pathlib import Path

import pytest
import torch

from lstmkit.runs import evaluate, load_run


def logged_validation(run_dir: Path) -> dict[str, float]:
    """The ``val_*`` figures of the run's last validation, as ``metrics.csv`` has them."""
    rows = [row for path in sorted((run_dir / "logs").glob("attempt-*/metrics.csv")) for row in csv.DictReader(open(path))]
    last = [row for row in rows if row.get("val_loss")][-1]
    return {k: float(v) for k, v in last.items() if k.startswith("val_") and v != ""}


def whole_split_validation(run_dir: Path) -> dict[str, float]:
    """The task's loss and metrics of its last checkpoint over the validation split as one batch."""
    run = load_run(run_dir / "checkpoints" / "last.safetensors")
    prepared = run.task.prepare(run.fitted)
    batch = run.task.collate([prepared.valid[i] for i in range(len(prepared.valid))])
    run.model.eval()
    with torch.no_grad():
        loss, metrics = run.task.batch_loss(run.model, batch)
    return {"val_loss": float(loss), **{f"val_{name}": float(value) for name, value in metrics.items()}}


def assert_logged_validation_is_the_whole_split(run_dir: Path) -> dict[str, float]:
    """Every logged validation figure equals the whole split's (and the run selects on one of them)."""
    logged, whole = logged_validation(run_dir), whole_split_validation(run_dir)
    assert set(logged) == set(whole), (logged, whole)
    for name, value in whole.items():
        assert logged[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    return logged


def assert_logged_validation_loss_is_evaluated(run_dir: Path) -> None:
    """For a task that validates in windows carrying a state (a language model): the logged loss is
    the one ``evaluate`` gives on the validation split."""
    logged = logged_validation(run_dir)
    results = evaluate(run_dir / "checkpoints" / "last.safetensors", split="valid", out_dir=run_dir / "check")
    assert math.isclose(logged["val_loss"], results["loss"], rel_tol=1e-5)
