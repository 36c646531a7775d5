"""The forecaster's three forms of one mapping (transform, scaling, phase features): ``predict``
from a history, a session fed value by value, and the exported ONNX graph forecast alike, from
one typed fitted state that survives the checkpoint."""

import importlib.util

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from sessions import run_session  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402

from lstmkit.runs import load_checkpoint, load_config, load_run, resolve_checkpoint  # noqa: E402
from lstmkit.tasks.forecast.fitted import ForecastFitted  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    t = np.arange(300)
    series = 2 + np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(0).normal(size=len(t))
    (root / "series.csv").write_text("\n".join(f"{v:.5f}" for v in series) + "\n")
    train(load_config(None, ["task=forecast", "data.dataset=files", f"data.file={root / 'series.csv'}", "data.window=12",
                             "data.horizon=3", "data.season=12", "data.transform=log1p", "data.periods=[12]",
                             "model.hidden_size=6", "optim.epochs=1", "trainer.progress_bar=false"]),
          root / "run", quiet=True)
    return load_run(root / "run")



def test_the_logged_validation_is_that_of_the_whole_split(run):
    assert_logged_validation_is_the_whole_split(run.directory)

def test_the_fitted_state_is_typed_and_maps_values_both_ways(run):
    fitted = run.fitted
    assert isinstance(fitted, ForecastFitted) and (fitted.transform, fitted.periods) == ("log1p", [12])
    stored = load_checkpoint(resolve_checkpoint(run.directory))["lstmkit"]["meta"]
    assert ForecastFitted.from_dict(stored) == fitted
    values = np.array([0.5, 1.0, 3.0])
    assert fitted.from_model(fitted.to_model(values)) == pytest.approx(values, abs=1e-12)
    assert fitted.to_model(values) == pytest.approx((np.log1p(values) - fitted.mean) / fitted.std)
    assert fitted.features(fitted.to_model(values), 5).shape == (3, 3)
    with pytest.raises(ValueError, match="log1p' needs values > -1, got history with minimum -2"):
        fitted.to_model([-2.0, 1.0], "history")


def test_an_old_checkpoint_without_a_transform_reads_as_none(run):
    stored = run.fitted.to_dict()
    del stored["transform"]
    assert ForecastFitted.from_dict(stored).transform == "none"


def test_predict_a_session_and_the_onnx_graph_forecast_alike(run, tmp_path):
    values = (2 + np.sin(2 * np.pi * np.arange(30) / 12)).round(4).tolist()
    expected = run.predict([{"history": values[:n], "start": 7} for n in (12, 20, 30)])
    outputs = run_session(run, {"values": values[:12], "start": 7}, [{"values": values[12:20]}, {"values": values[20:]}])
    for got, want in zip(outputs, expected):
        assert got["forecast"] == pytest.approx(want["forecast"], abs=1e-9)
    assert run_session(run, {"values": values[:5]}, [])[0] == {"forecast": None}      # fewer than the window
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import onnxruntime as ort

    from lstmkit.export import export_run
    export_run(run.directory, tmp_path / "forecast.onnx")
    [forecast] = ort.InferenceSession(str(tmp_path / "forecast.onnx")).run(
        None, {"history": np.asarray([values[-12:]]), "start": np.asarray([7 + 30 - 12])})
    assert forecast[0].tolist() == pytest.approx(expected[-1]["forecast"], abs=1e-4)
