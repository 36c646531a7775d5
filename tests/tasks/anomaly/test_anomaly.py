"""The anomaly detector's three forms of one scoring: ``predict`` over a whole series, a session
fed point by point, and the exported ONNX graph give the same scores, from one typed fitted state
that survives the checkpoint."""

import importlib.util

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from sessions import run_session  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402

from lstmkit.runs import load_checkpoint, load_config, load_run, resolve_checkpoint  # noqa: E402
from lstmkit.tasks.anomaly.fitted import AnomalyFitted  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly")
    t = np.arange(240)
    (root / "normal.csv").write_text("value\n" + "\n".join(f"{np.sin(2 * np.pi * i / 12):.5f}" for i in t) + "\n")
    train(load_config(None, ["task=anomaly", "data.dataset=files", f"data.train_file={root / 'normal.csv'}",
                             "data.window=12", "data.smooth=4", "model.hidden_size=6", "optim.epochs=1",
                             "trainer.progress_bar=false"]), root / "run", quiet=True)
    return load_run(root / "run")



def test_the_logged_validation_is_that_of_the_whole_split(run):
    assert_logged_validation_is_the_whole_split(run.directory)

def test_the_fitted_state_is_typed_and_is_what_the_checkpoint_holds(run):
    assert isinstance(run.fitted, AnomalyFitted) and run.fitted.threshold is not None
    stored = load_checkpoint(resolve_checkpoint(run.directory))["lstmkit"]["meta"]
    assert stored == run.fitted.to_dict() and AnomalyFitted.from_dict(stored) == run.fitted
    with pytest.raises(ValueError, match=r"lacks \['smooth'\]"):
        AnomalyFitted.from_dict({k: v for k, v in stored.items() if k != "smooth"})


def test_smoothing_a_stream_in_pieces_equals_smoothing_the_whole_series():
    fitted = AnomalyFitted(mean=0.0, std=1.0, window=3, smooth=4, quantile=0.99, threshold=0.5)
    errors = np.random.default_rng(0).random(20)
    errors[:3] = 0.0
    whole = fitted.smoothed(errors)
    pieces = [fitted.smoothed(errors[max(0, n - 3):n + 1], max(0, n - 3))[-1] for n in range(20)]
    assert np.allclose(pieces, whole, rtol=0, atol=1e-15) and not whole[:3].any()
    brute = [0.0 if n < 3 else errors[max(0, n - 3):n + 1].sum() / 4 for n in range(20)]
    assert np.allclose(whole, brute, rtol=0, atol=1e-15)


def test_predict_a_session_and_the_onnx_graph_score_alike(run, tmp_path):
    values = (np.sin(2 * np.pi * np.arange(60) / 12) + np.where(np.arange(60) == 40, 3.0, 0.0)).round(4).tolist()
    [whole] = run.predict([{"values": values}])
    outputs = run_session(run, {"values": values[:20]}, [{"values": values[20:33]}, {"values": values[33:]}])
    streamed = [score for output in outputs for score in output["scores"]]
    assert streamed == pytest.approx(whole["scores"], rel=1e-6, abs=1e-9)      # float32 batches of other sizes
    assert [i for output in outputs for i in output["anomalies"]] == whole["anomalies"]
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import onnxruntime as ort

    from lstmkit.export import export_run
    export_run(run.directory, tmp_path / "anomaly.onnx")
    scores, anomalies = ort.InferenceSession(str(tmp_path / "anomaly.onnx")).run(None, {"values": np.asarray(values)})
    assert scores.tolist() == pytest.approx(whole["scores"], abs=1e-5) and anomalies.tolist() == whole["anomalies"]
