"""Runs written before the reorganisation (lstmkit at 463f871: a forecaster of the sunspots and a
word-level language model, ``tests/runs/data``) load unchanged, answer ``predict`` as that version
answered (its outputs recorded beside them), and get the parts the tasks have now: a typed fitted
state, a streaming session, an ONNX export."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pydantic", reason="the run extras are not installed")

from sessions import run_session  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.runs import load_run  # noqa: E402
from lstmkit.tasks.forecast.fitted import ForecastFitted  # noqa: E402
from lstmkit.tasks.language_model.fitted import VocabularyFitted  # noqa: E402

DATA = Path(__file__).with_name("data")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name, fitted", [("forecast", ForecastFitted), ("lm", VocabularyFitted)])
def test_an_old_run_predicts_as_it_did(name, fitted, tmp_path, capsys):
    run = shutil.copytree(DATA / name, tmp_path / name)
    loaded = load_run(run)
    assert isinstance(loaded.fitted, fitted)
    inputs, outputs = _lines(DATA / f"{name}_input.jsonl"), _lines(DATA / f"{name}_output.jsonl")
    assert loaded.predict(inputs) == outputs                                   # to the last digit
    assert cli.main(["predict", str(run), str(DATA / f"{name}_input.jsonl")]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == outputs


def test_an_old_run_streams_and_exports(tmp_path):
    run = load_run(shutil.copytree(DATA / "forecast", tmp_path / "forecast"))
    [record] = _lines(DATA / "forecast_input.jsonl")
    [expected] = _lines(DATA / "forecast_output.jsonl")
    history = record["history"]
    [*_, last] = run_session(run, {"values": history[:30], "start": record["start"]}, [{"values": history[30:]}])
    assert last["forecast"] == pytest.approx(expected["forecast"], abs=1e-9)
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import numpy as np
    import onnxruntime as ort

    from lstmkit.export import export_run
    export_run(run.directory, tmp_path / "old.onnx")
    [forecast] = ort.InferenceSession(str(tmp_path / "old.onnx")).run(
        None, {"history": np.asarray([history]), "start": np.asarray([record["start"]])})
    assert forecast[0].tolist() == pytest.approx(expected["forecast"], rel=1e-4)
