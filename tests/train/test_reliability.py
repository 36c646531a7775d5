"""A failed, interrupted or corrupted run never looks like a success (issue 28's cases).

Each test reproduces one way a run could end wrongly (a signal, a corrupted header, non-finite
numbers, two runs in one directory, a full disk, bad input) and checks the clear error, the exit
status or the intact files that follow instead.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning", reason="the training extras are not installed")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import lightning as L  # noqa: E402

from lstmkit import cells, cli  # noqa: E402
from lstmkit.data.readers import read_series  # noqa: E402
from lstmkit.runs import json_output, registry  # noqa: E402
from lstmkit.runs.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from lstmkit.runs import ConfigError, default_config, load_config  # noqa: E402
from lstmkit.runs.config import config_yaml  # noqa: E402
from lstmkit.train.runner import NonFiniteLoss, default_run_dir, train  # noqa: E402
from lstmkit.runs import predict  # noqa: E402
from lstmkit.runs import make_task  # noqa: E402
from test_train import _classify_config, _CrashAfter, _tree, _write_classify_files  # noqa: E402


# ---------------------------------------------------------------------------------------------
# signals

@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_training_with_the_shells_status_and_the_resume_command(tmp_path, signum, status):
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(_classify_config(tmp_path, "optim.epochs=500", "trainer.progress_bar=true")))
    run_dir = tmp_path / "run"
    # a shell without job control starts background commands with SIGINT ignored, and a child
    # inherits that (so would this one under such a CI): give it the default disposition
    process = subprocess.Popen([sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stdout:                     # piped: one line per epoch
        if line.startswith("epoch 2/"):
            break
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    interrupted = run_dir / "checkpoints" / "interrupted.safetensors"
    assert interrupted.is_file() and not (run_dir / "metrics.json").exists()
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert f"checkpoint {interrupted} written" in stderr and f"lstmkit train --resume {run_dir}" in stderr


# ---------------------------------------------------------------------------------------------
# checkpoints

def _rewrite_header(path: Path, edit) -> None:
    """Write ``path`` again with its tensors unchanged and ``edit(tree_json)`` as its header tree."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata["tree"] = edit(metadata["tree"])
    save_file(tensors, path, metadata=metadata)


def test_the_checksum_covers_the_header_that_shapes_predictions(tmp_path):
    path = tmp_path / "c.safetensors"
    tree = _tree()
    tree["lstmkit"] = {"meta": {"mean": [0.25, 1.5], "classes": ["a", "b"]}}
    save_checkpoint(tree, path)
    assert load_checkpoint(path)["lstmkit"]["meta"]["classes"] == ["a", "b"]
    _rewrite_header(path, lambda t: t.replace("0.25", "0.26"))          # one byte of a fitted mean
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)
    save_checkpoint(tree, path)
    _rewrite_header(path, lambda t: t.replace('["a", "b"]', '["b", "a"]'))  # two class names swapped
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_version_1_checkpoints_still_load(tmp_path):
    import hashlib
    path = tmp_path / "old.safetensors"
    w = torch.arange(3.0)
    digest = hashlib.sha256(b"/w|torch.float32|(3,)|" + w.numpy().tobytes()).hexdigest()   # tensors only
    tree = json.dumps({"w": {"__tensor__": "/w"}, "n": 3})
    save_file({"/w": w}, path, metadata={"format": "lstmkit-checkpoint/1", "tree": tree, "sha256": digest})
    back = load_checkpoint(path)
    assert torch.equal(back["w"], w) and back["n"] == 3


def test_a_failed_write_says_so_keeps_the_previous_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(_tree(), path)
    before = path.read_bytes()
    (tmp_path / ".c.safetensors.abc123.tmp").write_bytes(b"x" * 100)     # left by a process killed mid-write
    import lstmkit.runs.checkpoint as checkpoint

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(_tree(), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]
    monkeypatch.undo()
    save_checkpoint(_tree(), path)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------
# non-finite numbers

def test_nan_or_infinite_numbers_in_a_data_file_are_refused_with_file_line_and_field(tmp_path):
    train_file, test_file = _write_classify_files(tmp_path)
    lines = train_file.read_text().splitlines()
    for bad, message in (("NaN", "NaN is not a number"), ("1e400", "1e400 is beyond the range")):
        broken = lines[:]
        broken[4] = broken[4].replace("[[", f"[[{bad}, ", 1).replace(", ", ", ", 1)
        path = tmp_path / f"bad-{bad}.jsonl"
        path.write_text("\n".join(broken) + "\n")
        config = load_config(None, ["data.dataset=files", f"data.train_file={path}", f"data.test_file={test_file}"])
        with pytest.raises(ValueError, match=rf"{path.name}' line 5: {message}"):
            make_task(config).prepare()
    series = tmp_path / "series.csv"
    series.write_text("value\n1.0\nnan\n2.0\n")
    with pytest.raises(ValueError, match=r"series.csv' line 3: expected a finite number, got 'nan'"):
        read_series(series)


def test_a_ragged_data_file_names_the_record(tmp_path):
    train_file, test_file = _write_classify_files(tmp_path)
    lines = train_file.read_text().splitlines()
    record = json.loads(lines[6])
    record["x"][1] = record["x"][1][:1]                        # one step with one feature of two
    lines[6] = json.dumps(record)
    train_file.write_text("\n".join(lines) + "\n")
    config = load_config(None, ["data.dataset=files", f"data.train_file={train_file}", f"data.test_file={test_file}"])
    with pytest.raises(ValueError, match=r"train.jsonl' line 7 x: expected every step with 2 features, got steps of "
                                         r"\[1, 2\] features"):
        make_task(config).prepare()


@pytest.mark.parametrize("override, message", [
    ("optim.lr=.inf", "optim.lr: Input should be a finite number"),
    ("optim.gamma=.nan", "optim.gamma: Input should be a finite number"),
    ("model.hidden_size=true", "model: hidden_size: expected a number, got True"),
    ("trainer.threads=false", "trainer: threads: expected a number, got False"),
    ("model.hidden_size=[8", "the value '[8' is not valid YAML"),
])
def test_config_numbers_must_be_finite_numbers(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_config_files_that_are_not_text_or_are_directories_get_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, expected a YAML file"):
        load_config(tmp_path)
    binary = tmp_path / "config.yaml"
    binary.write_bytes(b"seed: 1\nmodel:\n  cell: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"line 3 is not UTF-8 text \(byte 9 of the line, b'\\xff'\)"):
        load_config(binary)


def test_gate_bias_must_be_finite_numbers():
    with pytest.raises(ValueError, match=r"gate_bias\['f'\]' expected finite numbers, got nan"):
        cells.make("lstm", 2, 3, gate_bias={"f": float("nan")})
    with pytest.raises(TypeError, match=r"gate_bias\['f'\]' expected a number or 3 numbers, got 'one'"):
        cells.make("lstm", 2, 3, gate_bias={"f": "one"})


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    next(pl_module.model.parameters()).fill_(float("nan"))
    config = _classify_config(tmp_path, "optim.epochs=3")
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"the loss became nan at epoch 2, batch 1; the last good checkpoint is "
                                            r".*last.safetensors"):
        train(config, run_dir, quiet=True, callbacks=[Poison()])
    last = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    assert last["epoch"] == 0 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert not (run_dir / "checkpoints" / "interrupted.safetensors").exists()
    assert not (run_dir / "metrics.json").exists()


def test_predict_refuses_non_finite_or_overflowing_inputs(tmp_path):
    run_dir = tmp_path / "run"
    train(_classify_config(tmp_path, "optim.epochs=1"), run_dir, quiet=True)
    with pytest.raises(ValueError, match=r"input record 0 .*x.1.0: Input should be a finite number"):
        predict(run_dir, [{"x": [[0.1, 0.2], [float("nan"), 0.0]]}])
    with pytest.raises(ValueError, match=r"input record 1 x: expected finite numbers within float32's range "
                                         r"\(\|x\| <= 3.403e\+38\), got 1e\+308 at step 0 feature 1"):
        predict(run_dir, [{"x": [[0.1, 0.2]]}, {"x": [[0.1, 1e308]]}])
    done = subprocess.run([sys.executable, "-m", "lstmkit", "predict", str(run_dir), "-"], text=True,
                          capture_output=True, input='{"x": [[0.1, 0.2]]}\n{"x": [[NaN, 1]]}\n', timeout=120)
    assert done.returncode == 2 and "stdin line 2: NaN is not a number" in done.stderr, done.stderr


def test_json_written_never_holds_nan():
    assert json_output.dumps({"loss": float("nan"), "scores": [1.0, float("inf")], "n": 3}) == \
        '{"loss": null, "scores": [1.0, null], "n": 3}'


def test_a_huge_bad_record_is_quoted_as_a_bounded_excerpt(tmp_path):
    task = registry.get("classify")(default_config("classify"))
    record = {"x": [[0.5, 0.5]] * 200_000 + [["bad", 1]]}
    with pytest.raises(ValueError) as error:
        task.records([record])
    assert len(str(error.value)) < 1000 and "characters)" in str(error.value)


# ---------------------------------------------------------------------------------------------
# run directories

def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda *args: "20261203-120000")
    config = default_config("classify")
    made = [default_run_dir(config, tmp_path) for _ in range(3)]
    assert [p.name for p in made] == ["classify-japanese_vowels-20261203-120000",
                                      "classify-japanese_vowels-20261203-120000-2",
                                      "classify-japanese_vowels-20261203-120000-3"]
    assert all(p.is_dir() for p in made)


def test_a_second_train_into_a_directory_in_use_fails_at_once(tmp_path):
    config = _classify_config(tmp_path, "optim.epochs=1")
    run_dir = tmp_path / "run"

    class SecondRun(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            with pytest.raises(FileExistsError, match="is in use by another lstmkit train"):
                train(config, run_dir, quiet=True)
            self.tried = True
    second = SecondRun()
    train(config, run_dir, quiet=True, callbacks=[second])
    assert second.tried and json.loads((run_dir / "metrics.json").read_text())["epochs_trained"] == 1


def test_a_resumed_run_counts_the_seconds_of_every_attempt(tmp_path):
    config = _classify_config(tmp_path, "optim.epochs=3")

    class Slow(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            time.sleep(1.0)
    with pytest.raises(RuntimeError):
        train(config, tmp_path / "run", quiet=True, callbacks=[Slow(), _CrashAfter(1, RuntimeError)])
    with warnings.catch_warnings(record=True) as caught:
        results = train(None, tmp_path / "run", resume=True, quiet=True)
    assert results["train_seconds"] >= 2.0
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]


def test_resuming_past_a_corrupt_last_checkpoint_takes_the_newest_intact_one(tmp_path, capsys):
    config = _classify_config(tmp_path, "optim.epochs=3")
    with pytest.raises(RuntimeError):
        train(config, tmp_path / "run", quiet=True, callbacks=[_CrashAfter(1, RuntimeError)])   # after 2 epochs
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "last.safetensors").write_bytes(b"not a checkpoint")               # a disk that failed
    results = train(None, tmp_path / "run", resume=True, quiet=True)
    err = capsys.readouterr().err
    assert "last.safetensors (" in err and "resuming from" in err and "the newest intact checkpoint" in err
    assert results["epochs_trained"] == 3
    for name in ("last", "best", "interrupted"):
        if (checkpoints / f"{name}.safetensors").is_file():
            (checkpoints / f"{name}.safetensors").write_bytes(b"broken")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint to resume from .*last.safetensors .*best"):
        train(None, tmp_path / "run", resume=True, quiet=True)


# ---------------------------------------------------------------------------------------------
# command-line arguments

@pytest.mark.parametrize("argv, message", [
    (["demo", "--hidden", "0"], "argument --hidden: expected a positive int, got 0"),
    (["demo", "--batch", "0"], "argument --batch: expected a positive int, got 0"),
    (["demo", "--steps", "-1"], "argument --steps: expected a positive int, got -1"),
    (["bench", "--threads", "0"], "argument --threads: expected a positive int, got 0"),
])
def test_cli_numbers_out_of_range_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_cli_errors_name_the_place_and_show_no_traceback(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(_classify_config(tmp_path, "optim.epochs=1"), run_dir, quiet=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["evaluate", str(run_dir), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmkit evaluate: error:") and "a-file/out" in err and "Traceback" not in err
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"x": [[0.1, 0.2]]}\n{"x": [[0.1, 0.2]] ,, }\n')
    assert cli.main(["predict", str(run_dir), str(bad_json)]) == 2
    assert "bad.jsonl' line 2, column 21: not valid JSON (Expecting property name" in capsys.readouterr().err
    assert cli.main(["train", "--set", "model.hidden_size=[8"]) == 2
    assert "the value '[8' is not valid YAML" in capsys.readouterr().err


def test_a_forecast_record_with_a_bad_field_names_it():
    task = registry.get("forecast")(default_config("forecast"))
    with pytest.raises(ValueError, match=r"input record 0 .*start: Input should be a valid integer"):
        task.records([{"history": [1.0, 2.0], "start": "abc"}])


def test_two_processes_train_into_one_run_directory(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(_classify_config(tmp_path, "optim.epochs=2", "trainer.devices=2",
                                                   "trainer.threads=1")))
    done = subprocess.run([sys.executable, "-m", "lstmkit", "train", str(config)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.json").is_file() and "does not exist" not in done.stderr


def test_lightnings_rank_observer_ends_the_command_as_the_collectives_error_does(tmp_path):
    # the observer's SIGKILL raced the collective's error: the command ended -9, without the message
    script = textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path
        from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
        from lstmkit.train.runner import _rank_deaths_reported
        rank = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        rank.wait()
        with _rank_deaths_reported(Path({str(tmp_path)!r}), ""):
            _ChildProcessObserver(main_pid=0, child_processes=[rank])._run()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "lstmkit train: error: another training process stopped (exit status [3]); no checkpoint was" in done.stderr


def test_a_failing_rank_fails_the_command_at_once_with_the_resume_command(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(_classify_config(tmp_path, "optim.epochs=500", "trainer.devices=2",
                                                   "trainer.threads=1", "trainer.progress_bar=true")))
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("epoch 2/"):
            break
    rank_1 = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    os.kill(rank_1, signal.SIGKILL)
    started = time.perf_counter()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and time.perf_counter() - started < 60
    assert "lstmkit train: error: another training process stopped" in stderr and "Traceback" not in stderr
    assert f"lstmkit train --resume {run_dir}" in stderr
