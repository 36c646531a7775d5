"""Distributed training (DDP over gloo on the CPU) trains the model that one process trains.

Following PyTorch's own DDP test (``_test_DDP_niter``): P processes with ``data.batch_size`` b
must end with the parameters of one process trained with batch size P·b on the same global
batches, after the same steps, and report the same validation figures: to 1e-10 when trained
in float64 (``trainer.precision: 64``), to 1e-5 in float32 (the processes' partial gradient sums
round differently from one sum). The runs are real
``lstmkit train`` processes (Lightning's launcher, or torchrun for "several machines"), without
dropout or input noise (each process draws its own random masks, so those runs are equally good
but not equal).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.runs.checkpoint import load_checkpoint
from lstmkit.runs import BucketBatchSampler

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")

ATOL = {64: 1e-10, 32: 1e-5}


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "lstmkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _train(tmp_path: Path, config: str, name: str, *overrides: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    run = tmp_path / name
    _run(["train", str(path), "--run-dir", str(run), *[a for o in overrides for a in ("--set", o)]], tmp_path)
    return run


def _assert_same_model(a: Path, b: Path, precision: int) -> None:
    ca, cb = (load_checkpoint(r / "checkpoints" / "last.safetensors") for r in (a, b))
    assert ca["global_step"] == cb["global_step"] > 0
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key in ca["state_dict"]:
        torch.testing.assert_close(ca["state_dict"][key], cb["state_dict"][key], rtol=0, atol=ATOL[precision], msg=key)


def _val_losses(run: Path) -> list[float]:
    rows = [row for path in sorted((run / "logs").glob("attempt-*/metrics.csv")) for row in csv.DictReader(open(path))]
    return [float(row["val_loss"]) for row in rows if row.get("val_loss")]


def _assert_close_figures(a, b, where: str = "metrics") -> None:
    """Equal structure; numbers equal to float32 rounding (the weights differ by that much)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_close_figures(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_close_figures(x, y, f"{where}[{k}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), where
    else:
        assert a == b, where


def _assert_same_run(two: Path, one: Path, precision: int) -> None:
    _assert_same_model(two, one, precision)
    np.testing.assert_allclose(_val_losses(two), _val_losses(one), rtol=ATOL[precision] / 10)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (two, one)]
    _assert_close_figures(*(m["valid"] for m in metrics), "valid")
    _assert_close_figures(*(m["test"] for m in metrics), "test")


# the sampler --------------------------------------------------------------------------------------
@pytest.mark.parametrize("lengths", [None, list(np.random.default_rng(0).integers(1, 40, 103))])
@pytest.mark.parametrize("processes", [2, 3])
def test_the_processes_share_the_global_batches_of_one_process(lengths, processes):
    b = 4
    one = BucketBatchSampler(103, b * processes, shuffle=True, seed=5, lengths=lengths)
    parts = [BucketBatchSampler(103, b, shuffle=True, seed=5, lengths=lengths) for _ in range(processes)]
    for epoch in (0, 3):
        for sampler in (one, *parts):
            sampler.set_epoch(epoch)
        each = [p.batches(rank, processes) for rank, p in enumerate(parts)]
        assert len({len(batches) for batches in each}) == 1, "every process takes as many steps"
        global_batches = [b for b in one.batches() if len(b) >= processes]
        assert len(each[0]) == len(global_batches)
        for k, batch in enumerate(global_batches):
            assert sum((e[k] for e in each), []) == batch           # contiguous parts, in order
            assert max(len(e[k]) for e in each) - min(len(e[k]) for e in each) <= 1


@pytest.mark.parametrize("size", [2, 11, 40])
def test_evaluation_reads_every_example_once(size):
    sampler = BucketBatchSampler(size, 4, shuffle=False)
    seen = sorted(i for rank in range(3) for batch in sampler.batches(rank, 3) for i in batch)
    # a split smaller than the processes: each reads it whole (the sums over processes stay exact means)
    assert seen == (sorted(list(range(size)) * 3) if size < 3 else list(range(size)))
    assert all(sampler.batches(rank, 3) for rank in range(3))


# classification, forecasting, language model -------------------------------------------------------
def _classify_files(root: Path) -> tuple[Path, Path]:
    """Three classes of 2-feature series of length 3..20; 108 training series, 93 after the
    validation split, so that the last global batch of 10 splits 2 / 1 (the loss must use the
    global count)."""
    rng = np.random.default_rng(0)
    paths = []
    for name, n in (("train", 108), ("test", 31)):
        path = root / f"{name}.jsonl"
        with open(path, "w") as f:
            for i in range(n):
                y = i % 3
                x = rng.normal(0, 1.0, (int(rng.integers(3, 21)), 2)) + [[(-1) ** y * 0.3, (y - 1) * 0.3]]
                f.write(json.dumps({"x": x.round(4).tolist(), "y": f"c{y}"}) + "\n")
        paths.append(path)
    return tuple(paths)


@pytest.mark.parametrize("precision", [64, 32])
def test_two_processes_train_the_classifier_one_process_trains(tmp_path, precision):
    train_file, test_file = _classify_files(tmp_path)
    config = f"""task: classify
data: {{dataset: files, train_file: {train_file}, test_file: {test_file}, batch_size: 5}}
model: {{hidden_size: 8, dropout: 0.0, head_dropout: 0.0, input_noise: 0.0}}
optim: {{epochs: 3, lr: 0.02}}
trainer: {{progress_bar: false, threads: 1}}
"""
    two = _train(tmp_path, config, "two", "trainer.devices=2", f"trainer.precision={precision}")
    one = _train(tmp_path, config, "one", "data.batch_size=10", f"trainer.precision={precision}")
    _assert_same_run(two, one, precision)


def test_two_processes_train_the_forecaster_one_process_trains(tmp_path):
    t = np.arange(600)
    series = np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(1).normal(size=t.size)
    (tmp_path / "series.csv").write_text("value\n" + "\n".join(f"{v:.5f}" for v in series) + "\n")
    config = f"""task: forecast
data: {{dataset: files, file: {tmp_path / 'series.csv'}, window: 24, horizon: 4, season: 24, test_size: 48,
       valid_size: 48, batch_size: 16}}
model: {{hidden_size: 8}}
optim: {{epochs: 2}}
trainer: {{progress_bar: false, threads: 1}}
"""
    two = _train(tmp_path, config, "two", "trainer.devices=2", "trainer.precision=64")
    one = _train(tmp_path, config, "one", "data.batch_size=32", "trainer.precision=64")
    _assert_same_run(two, one, 64)


@pytest.mark.parametrize("precision", [64, 32])
def test_two_processes_train_the_language_model_one_process_trains(tmp_path, precision):
    rng = np.random.default_rng(2)
    words = [f"w{k}" for k in range(30)]
    for name, n in (("train", 400), ("valid", 60), ("test", 60)):
        lines = (" ".join(rng.choice(words, int(rng.integers(3, 12)))) for _ in range(n))
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    config = f"""task: language_model
data: {{dataset: files, train_file: {tmp_path / 'train.txt'}, valid_file: {tmp_path / 'valid.txt'},
       test_file: {tmp_path / 'test.txt'}, batch_size: 3, bptt: 12, variable_bptt: true}}
model: {{hidden_size: 16, num_layers: 2}}
optim: {{epochs: 2, lr: 1.0}}
trainer: {{progress_bar: false, threads: 1}}
"""
    two = _train(tmp_path, config, "two", "trainer.devices=2", f"trainer.precision={precision}")
    one = _train(tmp_path, config, "one", "data.batch_size=6", f"trainer.precision={precision}")
    _assert_same_run(two, one, precision)


# several machines: torchrun ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_through_torchrun_train_what_one_process_trains(tmp_path):
    train_file, test_file = _classify_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"""task: classify
data: {{dataset: files, train_file: {train_file}, test_file: {test_file}, batch_size: 5}}
model: {{hidden_size: 8, dropout: 0.0, head_dropout: 0.0, input_noise: 0.0}}
optim: {{epochs: 2, lr: 0.02}}
trainer: {{progress_bar: false, threads: 1, num_nodes: 2}}
""")
    port, run = _free_port(), tmp_path / "nodes"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LSTMKIT_RUN_DIR")}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=lstmkit-test",
                               "-m", "lstmkit", "train", str(config), "--run-dir", str(run)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), [err[-2000:] for _, err in outputs]
    one = _train(tmp_path, config.read_text(), "one", "data.batch_size=10", "trainer.num_nodes=1")
    _assert_same_run(run, one, 32)


def test_a_launcher_run_without_a_run_directory_is_refused(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("task: classify\n")
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "1"}
    env.pop("LSTMKIT_RUN_DIR", None)
    done = subprocess.run([sys.executable, "-m", "lstmkit", "train", str(config)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs --run-dir" in done.stderr and "Traceback" not in done.stderr


# a lost process ---------------------------------------------------------------------------------
def test_a_killed_rank_stops_the_run_and_resume_finishes_it(tmp_path):
    train_file, test_file = _classify_files(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"""task: classify
data: {{dataset: files, train_file: {train_file}, test_file: {test_file}, batch_size: 2}}
model: {{hidden_size: 32}}
optim: {{epochs: 6, lr: 0.01}}
trainer: {{progress_bar: true, threads: 1, devices: 2}}
""")
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(run)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("epoch 2/"):
            break
    rank_1 = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    os.kill(rank_1, signal.SIGKILL)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 1
    assert "another training process stopped" in stderr and "Traceback" not in stderr
    assert f"lstmkit train --resume {run}" in stderr
    stopped_at = load_checkpoint(run / "checkpoints" / "last.safetensors")["epoch"]
    assert 1 <= stopped_at < 5
    _run(["train", "--resume", str(run)], tmp_path)
    assert load_checkpoint(run / "checkpoints" / "last.safetensors")["epoch"] == 5
    assert json.loads((run / "metrics.json").read_text())["epochs_trained"] == 6
