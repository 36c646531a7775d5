"""The training workflow: configs, checkpoints, the CLI end to end, resume, interruption.

These run on tiny generated data files (no dataset package needed); tests of the real
datasets are in test_datasets.py.
"""

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("lightning", reason="the training extras are not installed")

import lightning as L  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.runs.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from lstmkit.runs import ConfigError, default_config, load_config, parse_config  # noqa: E402
from lstmkit.runs.config import config_yaml  # noqa: E402
from lstmkit.runs import registry  # noqa: E402
from lstmkit.train.runner import Interrupted, train  # noqa: E402
from lstmkit.runs import evaluate, load_run, predict, resolve_checkpoint  # noqa: E402
from lstmkit.runs import make_task  # noqa: E402

# ---------------------------------------------------------------------------------------------
# configs


@pytest.mark.parametrize("task", registry.names())
def test_default_config_round_trips_through_its_commented_yaml(task):
    text = config_yaml(default_config(task))
    assert "#" in text and f"task: {task}" in text
    assert parse_config(yaml.safe_load(text)) == default_config(task)


@pytest.mark.parametrize("data, message", [
    ({"model": {"hiden_size": 3}}, r"model\.hiden_size: unknown key"),
    ({"model": {"hidden_size": 0}}, r"model\.hidden_size: Input should be greater than 0, got 0"),
    ({"model": {"cell": "lstn"}}, r"model\.cell: expected one of \[.*'lstm'"),
    ({"optim": {"lr": "fast"}}, r"optim\.lr: Input should be a valid number.*got 'fast'"),
    ({"optim": {"epochs": 2.5}}, r"optim\.epochs"),
    ({"task": "translate"}, r"task: expected one of"),
    ({"data": {"dataset": "files"}}, r"data: dataset 'files' needs data\.train_file"),
    ({"seed": "zero"}, r"seed: Input should be a valid integer"),
    ({"optim": {"refit": True, "schedule": "plateau"}}, r"optim: refit .* needs schedule none, cosine or step"),
    ({"task": "anomaly", "optim": {"refit": True}}, r"optim: refit: expected false for anomaly"),
])
def test_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_overrides_and_config_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: forecast\nmodel:\n  cell: gru\n")
    config = load_config(path, ["model.hidden_size=12", "optim.clip_grad_norm=null", "data.periods=[24]"])
    assert (config.task, config.model.cell, config.model.hidden_size) == ("forecast", "gru", 12)
    assert config.optim.clip_grad_norm is None and config.data.periods == [24]
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["model.hidden_size"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# checkpoints

def _tree():
    return {"state_dict": {"w": torch.randn(3, 4), "b": torch.arange(5)},
            "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
                                  "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0], "x": None}]}],
            "epoch": 4, "name": "run", "flag": True, "inf": math.inf, "empty": torch.zeros(0)}


def test_checkpoint_round_trip_keeps_types(tmp_path):
    tree = _tree()
    save_checkpoint(tree, tmp_path / "c.safetensors")
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(back["state_dict"]["w"], tree["state_dict"]["w"])
    assert back["state_dict"]["b"].dtype == torch.int64
    group = back["optimizer_states"][0]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["x"] is None
    assert list(back["optimizer_states"][0]["state"]) == [0]                   # int keys stay ints
    assert back["inf"] == math.inf and back["flag"] is True and back["empty"].shape == (0,)


def test_corrupted_or_truncated_checkpoints_are_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(_tree(), path)
    data = bytearray(path.read_bytes())
    (tmp_path / "truncated.safetensors").write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "truncated.safetensors")
    data[-3] ^= 0xFF                                                          # a flipped bit in a tensor
    (tmp_path / "flipped.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(tmp_path / "flipped.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.ones(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not an lstmkit checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_failed_save_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(_tree(), path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="cannot store a object"):
        save_checkpoint({"bad": object()}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


# ---------------------------------------------------------------------------------------------
# end to end on tiny generated data

def _write_classify_files(root: Path) -> tuple[Path, Path]:
    """Three classes of 2-feature series of length 5..12: the class sets the sign pattern."""
    rng = np.random.default_rng(0)
    paths = []
    for name, n in (("train", 90), ("test", 30)):
        path = root / f"{name}.jsonl"
        with open(path, "w") as f:
            for i in range(n):
                y = i % 3
                T = int(rng.integers(5, 13))
                x = rng.normal(0, 0.3, (T, 2)) + [[(-1) ** y, y - 1]]
                f.write(json.dumps({"x": x.round(4).tolist(), "y": f"c{y}"}) + "\n")
        paths.append(path)
    return tuple(paths)


def _classify_config(root: Path, *overrides: str):
    train_file, test_file = _write_classify_files(root)
    return load_config(None, ["data.dataset=files", f"data.train_file={train_file}", f"data.test_file={test_file}",
                              "model.hidden_size=8", "optim.epochs=3", "data.batch_size=16",
                              "trainer.progress_bar=false", "model.head_dropout=0.2", "optim.lr=0.02",
                              "optim.select=best", *overrides])


def _weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.safetensors")["state_dict"]


def test_cli_train_evaluate_predict(tmp_path, capsys):
    config = _classify_config(tmp_path, "optim.epochs=6")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config_yaml(config))
    run = tmp_path / "run"
    assert cli.main(["train", str(config_path), "--run-dir", str(run), "--set", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "test  accuracy" in out
    for name in ("config.yaml", "metrics.json", "learning_curves.png", "confusion_matrix_test.png",
                 "checkpoints/best.safetensors", "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["seed"] == 3 and saved["model"]["hidden_size"] == 8
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9 and metrics["epochs_trained"] == 6

    assert cli.main(["evaluate", str(run), "--split", "valid"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "valid"
    assert (run / "evaluation" / "confusion_matrix_valid.png").is_file()
    assert cli.main(["evaluate", str(run), "--data", str(tmp_path / "test.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["test"]["accuracy"]

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"x": r["x"]}) + "\n"
                              for r in map(json.loads, (tmp_path / "test.jsonl").read_text().splitlines()[:4])))
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["label"] for p in lines] == ["c0", "c1", "c2", "c0"]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in lines)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": [[1, 2]]}\n\n{"x": [[1, 2, 3]]}\n')       # the second record, on the file's third line
    assert cli.main(["predict", str(run), str(bad)]) == 2
    assert f"predict: input {str(bad)!r} line 3 x: expected every step with 2 features" in capsys.readouterr().err
    assert cli.main(["predict", str(run), str(inputs), "--beam", "3"]) == 2     # a classifier has no beam
    assert "expected a run of a task that decodes with a beam (seq2seq, ctc), got a 'classify' run" in \
        capsys.readouterr().err


def test_ensemble_trains_saves_and_predicts(tmp_path):
    run = tmp_path / "run"
    results = train(_classify_config(tmp_path, "optim.epochs=4", "model.ensemble=3"), run, quiet=True)
    assert results["test"]["accuracy"] > 0.9
    weights = _weights(run)
    assert any(k.startswith("model.members.2.") for k in weights)
    record = json.loads((tmp_path / "test.jsonl").read_text().splitlines()[0])
    [out] = predict(run, [{"x": record["x"]}])
    assert out["label"] == record["y"] and abs(sum(out["probabilities"].values()) - 1) < 1e-6
    assert evaluate(run, split="test")["accuracy"] == results["test"]["accuracy"]


def test_last_checkpoint_is_the_latest_epoch_not_the_best(tmp_path):
    run = tmp_path / "run"
    train(_classify_config(tmp_path, "optim.epochs=3", "optim.lr=1e-12", "model.head_dropout=0"), run, quiet=True)
    checkpoints = run / "checkpoints"
    assert load_checkpoint(checkpoints / "best.safetensors")["epoch"] == 0       # never improves after epoch 0
    assert load_checkpoint(checkpoints / "last.safetensors")["epoch"] == 2


def test_select_last_makes_the_last_epoch_the_run_model(tmp_path):
    run = tmp_path / "run"
    results = train(_classify_config(tmp_path, "optim.epochs=3", "optim.select=last", "optim.refit=true"), run,
                    quiet=True)
    checkpoints = run / "checkpoints"
    assert not (checkpoints / "best.safetensors").exists()                      # nothing ranks epochs
    assert load_checkpoint(checkpoints / "last.safetensors")["epoch"] == 2
    assert results["refit"]["epochs"] == 3                                      # the last epoch's count
    single = train(_classify_config(tmp_path, "optim.epochs=3", "optim.select=last"), tmp_path / "single", quiet=True)
    assert single["checkpoint"] == "last.safetensors"
    assert resolve_checkpoint(tmp_path / "single") == tmp_path / "single" / "checkpoints" / "last.safetensors"
    assert evaluate(tmp_path / "single")["accuracy"] == single["test"]["accuracy"]
    with pytest.raises(ConfigError, match="checkpoint_every"):
        load_config(None, ["optim.select=last", "trainer.checkpoint_every=2"])


class _CrashInRefit(L.Callback):
    """Raise in the refit phase (the one without validation) at the start of its second epoch."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.limit_val_batches == 0 and trainer.current_epoch == 1:
            raise RuntimeError("stop in refit")


def test_refit_trains_on_train_and_valid_for_the_best_epoch_count(tmp_path, capsys):
    config = _classify_config(tmp_path, "optim.epochs=4", "optim.refit=true")
    results = train(config, tmp_path / "run", quiet=True)
    checkpoints = tmp_path / "run" / "checkpoints"
    best_epoch = load_checkpoint(checkpoints / "best.safetensors")["epoch"]
    assert results["refit"] == {"epochs": best_epoch + 1, "examples": 90}          # train + valid
    assert results["checkpoint"] == "final.safetensors" and (checkpoints / "final.safetensors").is_file()
    assert results["without_refit"]["test"]["n"] == results["test"]["n"] == 30
    assert (tmp_path / "run" / "without_refit" / "confusion_matrix_test.png").is_file()
    assert evaluate(tmp_path / "run")["accuracy"] == results["test"]["accuracy"]  # the run's model is the refit one
    final, best = load_checkpoint(checkpoints / "final.safetensors"), load_checkpoint(checkpoints / "best.safetensors")
    assert not all(torch.equal(final["state_dict"][k], best["state_dict"][k]) for k in final["state_dict"])

    with pytest.raises(RuntimeError, match="stop in refit"):
        train(config, tmp_path / "crashed", quiet=True, callbacks=[_CrashInRefit()])
    assert (tmp_path / "crashed" / "checkpoints" / "refit" / "interrupted.safetensors").is_file()
    resumed = train(None, tmp_path / "crashed", resume=True, quiet=True)
    assert resumed["refit"] == results["refit"] and resumed["test"] == results["test"]
    again = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "final.safetensors")["state_dict"]
    assert all(torch.equal(final["state_dict"][k], again[k]) for k in again)

    assert cli.main(["train", "--resume", str(tmp_path / "crashed")]) == 0
    assert "test (refit, " in capsys.readouterr().out


def test_predict_from_stdin_in_a_subprocess(tmp_path):
    run = tmp_path / "run"
    train(_classify_config(tmp_path, "optim.epochs=2"), run, quiet=True)
    record = json.loads((tmp_path / "test.jsonl").read_text().splitlines()[0])
    done = subprocess.run([sys.executable, "-m", "lstmkit", "predict", str(run / "checkpoints" / "last.safetensors")],
                          input=json.dumps({"x": record["x"]}) + "\n", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] in ("c0", "c1", "c2")


def test_cli_errors(tmp_path, capsys):
    assert cli.main(["train", "--set", "model.hiden_size=3"]) == 2
    assert "model.hiden_size: unknown key" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    assert cli.main(["predict", str(tmp_path / "broken.safetensors"), "-"]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert cli.main(["config", "anomaly"]) == 0
    assert parse_config(yaml.safe_load(capsys.readouterr().out)).task == "anomaly"


class _CrashAfter(L.Callback):
    """Raise ``error`` at the start of epoch ``epoch + 1`` (after epoch ``epoch``'s checkpoints),
    or ``mid_epoch`` in epoch ``epoch`` after its second batch."""

    def __init__(self, epoch: int, error: type[BaseException], *, mid_epoch: bool = False):
        self.epoch, self.error, self.mid_epoch = epoch, error, mid_epoch

    def on_train_batch_end(self, trainer, *args):
        if self.mid_epoch and trainer.current_epoch == self.epoch and args[-1] == 1:
            raise self.error("stop")

    def on_train_epoch_start(self, trainer, pl_module):
        if not self.mid_epoch and trainer.current_epoch == self.epoch + 1:
            raise self.error("stop")


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    config = _classify_config(tmp_path, "optim.epochs=4", "model.head_dropout=0.3")
    train(config, tmp_path / "straight", quiet=True)
    with pytest.raises(RuntimeError, match="stop"):
        train(config, tmp_path / "crashed", quiet=True, callbacks=[_CrashAfter(1, RuntimeError)])
    assert (tmp_path / "crashed" / "checkpoints" / "interrupted.safetensors").is_file()
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "crashed", quiet=True)
    resumed = train(None, tmp_path / "crashed", resume=True, quiet=True)
    assert resumed["epochs_trained"] == 4
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "crashed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "crashed" / "logs").glob("attempt-*"))) == 2
    assert (tmp_path / "crashed" / "learning_curves.png").is_file()


def test_ctrl_c_leaves_a_usable_checkpoint_and_resumes_to_the_uninterrupted_model(tmp_path):
    config = _classify_config(tmp_path, "optim.epochs=3")
    train(config, tmp_path / "straight", quiet=True)
    with pytest.raises(Interrupted) as stop:
        train(config, tmp_path / "run", quiet=True, callbacks=[_CrashAfter(1, KeyboardInterrupt, mid_epoch=True)])
    interrupted = tmp_path / "run" / "checkpoints" / "interrupted.safetensors"
    assert stop.value.exit_status == 130 and stop.value.checkpoint == interrupted
    assert predict(interrupted, [{"x": [[0.1, 0.2]] * 5}])[0]["label"] in ("c0", "c1", "c2")
    results = train(None, tmp_path / "run", resume=True, quiet=True)
    assert results["epochs_trained"] == 3 and results["test"]["n"] == 30
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "run")      # resumed from the end of epoch 1
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = tmp_path / "first"                           # stopped within the first epoch: begins again
    with pytest.raises(Interrupted):
        train(config, first, quiet=True, callbacks=[_CrashAfter(0, KeyboardInterrupt, mid_epoch=True)])
    train(None, first, resume=True, quiet=True)
    c = _weights(first)
    assert all(torch.equal(a[k], c[k]) for k in a)


def _write_series(path: Path, n: int, *, anomaly: tuple[int, int] | None = None):
    t = np.arange(n)
    values = np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(0).normal(size=n)
    labels = np.zeros(n, dtype=int)
    if anomaly:
        values[anomaly[0]:anomaly[1]] += 3.0
        labels[anomaly[0]:anomaly[1]] = 1
    with open(path, "w") as f:
        f.write("value,label\n" if anomaly else "value\n")
        for v, y in zip(values, labels):
            f.write(f"{v:.5f},{y}\n" if anomaly else f"{v:.5f}\n")


def test_forecast_end_to_end_on_a_file(tmp_path):
    _write_series(tmp_path / "s.csv", 400)
    config = load_config(None, ["task=forecast", "data.dataset=files", f"data.file={tmp_path / 's.csv'}",
                                "data.window=24", "data.horizon=6", "data.season=12", "model.hidden_size=16",
                                "optim.epochs=8", "trainer.progress_bar=false", "optim.lr=0.01"])
    results = train(config, tmp_path / "run", quiet=True)
    test = results["test"]
    assert {"lstmkit", "seasonal_naive", "ets"} <= test.keys() and test["horizon"] == 6
    assert test["lstmkit"]["mase"] < 1.5 and (tmp_path / "run" / "forecast_test.png").is_file()
    out = predict(tmp_path / "run", [{"history": np.sin(2 * np.pi * np.arange(24) / 12).tolist()}])
    assert len(out[0]["forecast"]) == 6
    assert evaluate(tmp_path / "run", data=tmp_path / "s.csv")["horizon"] == 6


def test_forecast_refit_data_is_every_window_before_the_test_part(tmp_path):
    _write_series(tmp_path / "s.csv", 400)
    config = load_config(None, ["task=forecast", "data.dataset=files", f"data.file={tmp_path / 's.csv'}",
                                "data.window=24", "data.horizon=6", "data.season=12"])
    task = make_task(config)
    prepared = task.prepare()
    refit, x = task.refit_data(prepared), prepared.extra
    assert len(refit) == x["test_start"] - 6 - 24 + 1 > len(prepared.train) + len(prepared.valid)
    first, last = refit[0], refit[len(refit) - 1]
    assert torch.equal(first[0], x["features"][:24]) and torch.equal(prepared.train[0][0], first[0])
    assert torch.equal(last[1], torch.tensor(x["scaled"][x["test_start"] - 6:x["test_start"]], dtype=torch.float32))


def test_forecast_transform_is_inverted_and_checked(tmp_path):
    _write_series(tmp_path / "s.csv", 300)
    values = np.loadtxt(tmp_path / "s.csv", skiprows=1)
    np.savetxt(tmp_path / "counts.csv", (values + 2.0) ** 2)           # positive, variance grows with level
    overrides = ["task=forecast", "data.dataset=files", "data.window=24", "data.horizon=6", "data.season=12",
                 "model.hidden_size=8", "optim.epochs=3", "trainer.progress_bar=false", "data.transform=sqrt"]
    results = train(load_config(None, overrides + [f"data.file={tmp_path / 'counts.csv'}"]), tmp_path / "run",
                    quiet=True)
    meta = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")["lstmkit"]["meta"]
    train_part = (values[:len(values) - 120] + 2.0) ** 2                  # before validation and test
    assert meta["transform"] == "sqrt" and meta["mean"] == pytest.approx(np.sqrt(train_part).mean())
    history = (values[:24] + 2.0) ** 2
    [out] = predict(tmp_path / "run", [{"history": history.tolist()}])
    loaded = load_run(tmp_path / "run")
    meta, model = loaded.fitted, loaded.model
    x = torch.tensor((np.sqrt(history) - meta.mean) / meta.std, dtype=torch.float32)[None, :, None]
    raw = model(x)[0].detach().double().numpy()[0]
    assert np.allclose(out["forecast"], np.maximum(raw * meta.std + meta.mean, 0) ** 2)
    assert np.isfinite(results["test"]["lstmkit"]["mase"])
    with pytest.raises(ValueError, match="transform 'sqrt' needs values >= 0"):
        predict(tmp_path / "run", [{"history": [-1.0] * 24}])
    with pytest.raises(ValueError, match="transform 'log1p' needs values > -1"):
        train(load_config(None, overrides[:-1] + ["data.transform=log1p", f"data.file={tmp_path / 's.csv'}"]),
              tmp_path / "run2", quiet=True)


def test_anomaly_end_to_end_on_files(tmp_path):
    _write_series(tmp_path / "normal.csv", 600)
    _write_series(tmp_path / "test.csv", 900, anomaly=(700, 710))
    config = load_config(None, ["task=anomaly", "data.dataset=files", f"data.train_file={tmp_path / 'normal.csv'}",
                                f"data.test_file={tmp_path / 'test.csv'}", "data.window=24", "model.hidden_size=16",
                                "optim.epochs=6", "trainer.progress_bar=false", "optim.lr=0.01"])
    results = train(config, tmp_path / "run", quiet=True)
    assert results["test"]["top_point_in_anomaly"] and results["test"]["detected"]
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")["lstmkit"]["meta"]
    assert saved["threshold"] == pytest.approx(results["test"]["threshold"])
    values = np.sin(2 * np.pi * np.arange(200) / 12)
    values[150:155] += 3.0
    out = predict(tmp_path / "run", [{"values": values.tolist()}])[0]
    assert out["anomalies"] and all(140 <= i <= 175 for i in out["anomalies"])


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("configs/*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    assert config.task in registry.names()


def test_sentiment_baseline_follows_the_refit_protocol():
    from lstmkit.cli.train import summary
    from lstmkit.tasks.sentiment.task import SentimentTask
    from lstmkit.tasks.sentiment.task import tfidf_baseline
    # the test texts' sentiment words occur in the validation texts only
    pos, neg = ["good film", "nice film", "good plot"] * 4, ["bad film", "poor film", "bad plot"] * 4
    splits = {"train": (pos + neg, ["p"] * 12 + ["n"] * 12),
              "valid": (["superb film", "superb plot", "dreadful film", "dreadful plot"] * 2, ["p", "p", "n", "n"] * 2),
              "test": (["superb", "dreadful"] * 5, ["p", "n"] * 5)}
    plain, refit = tfidf_baseline(splits, "test"), tfidf_baseline(splits, "test", refit=True)
    assert plain["trained_on"] == "train" and refit["trained_on"] == "train+valid" and refit["C"] == plain["C"]
    assert plain["accuracy"] == 0.5 and refit["accuracy"] == 1.0
    results = {"valid": {"accuracy": 0.9, "errors": 1, "n": 10, "baseline_tfidf_logreg": plain},
               "without_refit": {"test": {"accuracy": 0.8, "errors": 2, "n": 10, "baseline_tfidf_logreg": plain}},
               "test": {"accuracy": 0.7, "errors": 3, "n": 10, "baseline_tfidf_logreg": plain,
                        "baseline_tfidf_logreg_refit": refit},
               "refit": {"epochs": 4, "examples": 32}}
    lines = summary(SentimentTask, results).splitlines()
    assert lines[1].endswith("TF-IDF + logistic regression 0.5000")
    assert "refit, 4 epochs" in lines[2] and lines[2].endswith("TF-IDF + logistic regression 1.0000 (refit too)")


def test_piped_output_gets_one_line_per_epoch_and_a_terminal_the_live_bar(tmp_path):
    from lstmkit.train.progress import EpochLines, LiveBar, progress_callback
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(_classify_config(tmp_path, "trainer.progress_bar=true", "optim.epochs=2")))
    done = subprocess.run([sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    epochs = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all(f" {name} " in epochs[0] for name in ("train_loss", "train_acc", "val_loss", "val_acc"))
    assert "\r" not in done.stdout + done.stderr

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    assert isinstance(progress_callback(Terminal()), LiveBar)
    assert isinstance(progress_callback(io.StringIO()), EpochLines)
