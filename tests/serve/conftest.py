"""The runs the server's tests serve: trained once for the whole directory."""

import random
from pathlib import Path

import numpy as np
import pytest

from toy import two_class_series


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A classifier of series, a word-level language model, an anomaly detector and a forecaster,
    trained for one epoch each."""
    pytest.importorskip("lightning", reason="the training extras are not installed")
    from lstmkit.runs import load_config
    from lstmkit.train.runner import train
    root = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    two_class_series(root / "series.jsonl", 60, rng)
    train(load_config(None, ["data.dataset=files", f"data.train_file={root / 'series.jsonl'}", "model.hidden_size=8",
                             "optim.epochs=1", "data.batch_size=16", "trainer.progress_bar=false"]),
          root / "classify-run", quiet=True)
    lines, pick = ["the cat sat on the mat", "a dog ran on a log"], random.Random(0)
    for name in ("train", "valid"):
        (root / f"{name}.txt").write_text("\n".join(pick.choice(lines) for _ in range(40)) + "\n")
    train(load_config(None, ["task=language_model", "data.dataset=files", f"data.train_file={root / 'train.txt'}",
                             f"data.valid_file={root / 'valid.txt'}", "model.hidden_size=8", "data.batch_size=4",
                             "optim.epochs=1", "optim.optimizer=adam", "optim.lr=0.01", "trainer.progress_bar=false"]),
          root / "lm-run", quiet=True)
    t = np.arange(300)
    (root / "normal.csv").write_text("value\n" + "\n".join(f"{np.sin(2 * np.pi * i / 12):.5f}" for i in t) + "\n")
    train(load_config(None, ["task=anomaly", "data.dataset=files", f"data.train_file={root / 'normal.csv'}",
                             "data.window=12", "data.smooth=4", "model.hidden_size=8", "optim.epochs=1",
                             "trainer.progress_bar=false"]),
          root / "anomaly-run", quiet=True)
    noisy = 2 + np.sin(2 * np.pi * t / 12) + 0.05 * rng.normal(size=len(t))    # noise: the seasonal naive errs
    (root / "series.csv").write_text("\n".join(f"{v:.5f}" for v in noisy) + "\n")
    train(load_config(None, ["task=forecast", "data.dataset=files", f"data.file={root / 'series.csv'}", "data.window=12",
                             "data.horizon=3", "data.season=12", "data.transform=sqrt", "model.hidden_size=8",
                             "optim.epochs=1", "trainer.progress_bar=false"]),
          root / "forecast-run", quiet=True)
    return {"classify": root / "classify-run", "lm": root / "lm-run", "anomaly": root / "anomaly-run",
            "forecast": root / "forecast-run"}
