"""The classifier's three forms of one scaling and pooling: ``predict`` over whole sequences, a
session fed step by step (the running pooling of ``lstmkit.models.pooling``), and the exported
ONNX graph give the same probabilities, from one typed fitted state that survives the checkpoint."""

import importlib.util

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from sessions import run_session  # noqa: E402
from toy import two_class_series  # noqa: E402
from validation import assert_logged_validation_is_the_whole_split  # noqa: E402

from lstmkit.runs import load_checkpoint, load_config, load_run, resolve_checkpoint  # noqa: E402
from lstmkit.tasks.classify.fitted import ClassifierFitted  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402


@pytest.fixture(scope="module", params=["mean", "max", "last"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    two_class_series(root / "series.jsonl", 40, np.random.default_rng(0), centre=(1.0, 3.0))
    train(load_config(None, ["data.dataset=files", f"data.train_file={root / 'series.jsonl'}", "model.hidden_size=6",
                             "model.bidirectional=false", f"model.pooling={request.param}", "optim.epochs=1", "data.batch_size=16",
                             "trainer.progress_bar=false"]), root / "run", quiet=True)
    return load_run(root / "run")



def test_the_logged_validation_is_that_of_the_whole_split(run):
    assert_logged_validation_is_the_whole_split(run.directory)

def test_a_pooling_without_a_step_form_has_no_sessions(run):
    from lstmkit.runs.stream import opens
    from lstmkit.tasks.classify.stream import SequenceStream
    other = load_run(run.directory)
    other.model.pool.how = "attention"                          # a pooling without a step form
    assert not SequenceStream.supported(other.model) and opens(other, None) is None


def test_the_fitted_state_is_typed_and_scales_as_trained(run):
    fitted = run.fitted
    assert isinstance(fitted, ClassifierFitted) and fitted.classes == ["c0", "c1"] and fitted.features == 2
    assert ClassifierFitted.from_dict(load_checkpoint(resolve_checkpoint(run.directory))["lstmkit"]["meta"]) == fitted
    x = np.array([[1.0, 3.0], [-1.0, 3.0]])
    assert fitted.scaled(x, "x").numpy() == pytest.approx((x - fitted.mean) / fitted.std, abs=1e-6)
    with pytest.raises(ValueError, match="x: expected finite numbers"):
        fitted.scaled([[np.nan, 0.0]], "x")


def test_predict_a_session_and_the_onnx_graph_classify_alike(run, tmp_path):
    x = np.random.default_rng(1).normal(0, 1, (7, 2)).round(3).tolist()
    assert run.task.stream.supported(run.model)              # forward layers, a running pooling
    expected = run.predict([{"x": x[:n]} for n in (2, 5, 7)])
    outputs = run_session(run, {"x": x[:2]}, [{"x": x[2:5]}, {"x": x[5:]}])
    for got, want in zip(outputs, expected):
        assert got["label"] == want["label"]
        assert list(got["probabilities"].values()) == pytest.approx(list(want["probabilities"].values()), abs=1e-6)
    if importlib.util.find_spec("onnxruntime") is None:
        return
    import onnxruntime as ort

    from lstmkit.export import export_run
    export_run(run.directory, tmp_path / "classify.onnx")
    probabilities, label = ort.InferenceSession(str(tmp_path / "classify.onnx")).run(
        None, {"x": np.asarray([x], dtype=np.float32), "lengths": np.asarray([7])})
    assert probabilities[0].tolist() == pytest.approx(list(expected[-1]["probabilities"].values()), abs=1e-5)
    assert run.fitted.classes[int(label[0])] == expected[-1]["label"]
