"""ONNX export (lstmkit.export), every file checked with ONNX Runtime against lstmkit to 1e-5:
T in {1, 5, 17}, batch in {1, 3}, ragged lengths, both directions, stacks and merges; task
models; the run export against `lstmkit predict`; and the refusals."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit import cells
from lstmkit.export import ExportError, export_run, to_onnx
from lstmkit.layers import Bidirectional, Recurrent, Stack
from lstmkit.models import Forecaster, LanguageModel, SequenceClassifier

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TOL = dict(rtol=1e-5, atol=1e-5)
NATIVE = [("lstm", {}), ("peephole", {}), ("peephole", {"bias": False}), ("cifg", {}), ("np", {}), ("gru", {}),
          ("gru_cho", {}), ("elman", {}), ("elman", {"activation": "relu"}), ("elman", {"activation": "logistic"})]
SCANNED = [("nig", {}), ("nig", {"bias": False}), ("nfg", {}), ("nog", {}), ("niaf", {}), ("noaf", {}), ("fgr", {}),
           ("layernorm_lstm", {}), ("lstm1997", {}), ("lstm1997", {"cell_size": 2, "bias": "gates"}),
           ("lstm1997", {"recurrent": "cells", "forget_gate": True, "g": "tanh", "h": "identity"}),
           ("lstm1997", {"recurrent": "none", "output_gate": False, "g": "logistic", "bias": "none",
                         "cell_size": 4, "truncate": True}),
           ("mingru", {}), ("mingru", {"bias": False}), ("minlstm", {"gate_bias": {"f": 2.0}}),
           ("slstm", {"heads": 2}), ("slstm", {"forget": "exp", "bias": False}), ("mlstm", {}),
           ("mlstm", {"heads": 2, "gate_bias": {"f": 2.0}})]
EXPORTED = NATIVE + SCANNED


def _run(model, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in feeds.items()})


def _flatten(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for part in state for t in _flatten(part)]


def _lengths(batch: int, T: int) -> torch.Tensor:
    return torch.tensor([T, max(1, T // 2), max(1, T - 2)][:batch]) if batch > 1 else torch.tensor([T])


def _check_layer(net, batch: int, T: int, I: int = 3) -> None:
    """ONNX Runtime against lstmkit to 1e-5; where lstmkit's own float32 result is further than
    that from its float64 result (a layer norm over a few nearly equal values magnifies rounding),
    against the float64 result, to twice lstmkit's float32 error."""
    net = net.eval()
    x = torch.randn(batch, T, I) if net.batch_first else torch.randn(T, batch, I)
    lengths = _lengths(batch, T)
    with torch.no_grad():
        y, final = net(x, lengths=lengths)
        y64, final64 = copy.deepcopy(net).double()(x.double(), lengths=lengths)
    out = _run(to_onnx(net), {"x": x, "lengths": lengths})
    expected, expected64 = [y, *_flatten(final)], [y64, *_flatten(final64)]
    assert len(out) == len(expected)
    for got, want, want64 in zip(out, expected, expected64):
        own_error = float((want.double() - want64).abs().max())
        if own_error <= TOL["atol"] / 2:
            torch.testing.assert_close(torch.from_numpy(got), want, **TOL)
        else:
            torch.testing.assert_close(torch.from_numpy(got).double(), want64, rtol=0, atol=2 * own_error)


@pytest.mark.parametrize("name,options", EXPORTED, ids=[f"{n}-{o}" for n, o in EXPORTED])
@pytest.mark.parametrize("T", [1, 5, 17])
@pytest.mark.parametrize("batch", [1, 3])
def test_each_exported_cell_runs_in_onnx_runtime_as_in_lstmkit(name, options, T, batch):
    torch.manual_seed(T + batch)
    for reverse in (False, True):
        _check_layer(Recurrent(cells.make(name, 3, 4, **options), reverse=reverse), batch, T)
    _check_layer(lstmkit.build_rnn(name, 3, 4, num_layers=2, bidirectional=True, **options), batch, T)


@pytest.mark.parametrize("merge", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("opset", [14, 17, 18])
def test_merges_stacks_residuals_and_opsets(merge, opset):
    torch.manual_seed(1)
    bi = Bidirectional(cells.make("lstm", 4, 4), cells.make("lstm", 4, 4), merge=merge)
    size = bi.output_size
    layers = [Recurrent(cells.make("gru", 4, 4)), bi, Recurrent(cells.make("peephole", size, size))]
    net = Stack(layers, residual=[False, merge != "concat", True]).eval()
    x, lengths = torch.randn(3, 9, 4), torch.tensor([9, 1, 6])
    with torch.no_grad():
        y, _ = net(x, lengths=lengths)
    out = _run(to_onnx(net, opset=opset), {"x": x, "lengths": lengths})
    torch.testing.assert_close(torch.from_numpy(out[0]), y, **TOL)


def test_time_major_layers_and_padding_that_is_not_zero():
    torch.manual_seed(2)
    net = lstmkit.build_rnn("gru", 3, 5, num_layers=2, batch_first=False, residual=False).eval()
    _check_layer(net, 3, 6)
    x, lengths = torch.randn(2, 7, 3), torch.tensor([7, 3])
    x[1, 3:] = 1e3                                       # padding the valid steps must never see
    stack = Stack([Recurrent(cells.make("lstm", 3, 3)), Recurrent(cells.make("lstm", 3, 3))], residual=True).eval()
    with torch.no_grad():
        y, _ = stack(x, lengths=lengths)
    torch.testing.assert_close(torch.from_numpy(_run(to_onnx(stack), {"x": x, "lengths": lengths})[0]), y, **TOL)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_classifier_exports_with_its_pooling_and_head(pooling, bidirectional):
    torch.manual_seed(3)
    model = SequenceClassifier("lstm", 3, 6, 4, pooling=pooling, bidirectional=bidirectional, num_layers=2).eval()
    x, lengths = torch.randn(3, 8, 3), torch.tensor([8, 2, 5])
    with torch.no_grad():
        logits, _ = model(x, lengths=lengths)
    got_logits, probabilities = _run(to_onnx(model), {"x": x, "lengths": lengths})
    torch.testing.assert_close(torch.from_numpy(got_logits), logits, **TOL)
    torch.testing.assert_close(torch.from_numpy(probabilities), torch.softmax(logits, -1), **TOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_forecaster_exports_for_any_batch_and_window(bidirectional):
    torch.manual_seed(4)
    model = Forecaster("gru", 2, 6, horizon=3, bidirectional=bidirectional).eval()
    exported = to_onnx(model)
    for batch, window in ((1, 5), (4, 12)):
        x = torch.randn(batch, window, 2)
        with torch.no_grad():
            forecast, _ = model(x)
        torch.testing.assert_close(torch.from_numpy(_run(exported, {"x": x})[0]), forecast, **TOL)


@pytest.mark.parametrize("cell,options", [("lstm", {}), ("gru", {}), ("layernorm_lstm", {}),
                                          ("lstm", {"weight_drop": 0.5, "tie_weights": True})])
def test_a_language_model_exports_with_its_state_and_streams_in_chunks(cell, options):
    torch.manual_seed(5)
    model = LanguageModel(cell, 20, 8, num_layers=2, **options)
    tokens = torch.randint(0, 20, (3, 9))
    model.train()
    model(tokens)                  # a training pass: weight drop leaves a masked weight in the cell
    model.eval()
    with torch.no_grad():
        logits, finals, _ = model(tokens)
    session = ort.InferenceSession(to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    state = {i.name: np.zeros((3, i.shape[1]), np.float32) for i in session.get_inputs() if i.name != "tokens"}
    chunks = []
    for part in (tokens[:, :4], tokens[:, 4:5], tokens[:, 5:]):       # the state fed back between chunks
        out = session.run(None, {"tokens": part.numpy(), **state})
        chunks.append(out[0])
        state = {name.replace("final", "state"): value
                 for name, value in zip((o.name for o in session.get_outputs()[1:]), out[1:])}
    torch.testing.assert_close(torch.from_numpy(np.concatenate(chunks, 1)), logits, **TOL)
    for got, want in zip(state.values(), (t for final in finals for t in final)):
        torch.testing.assert_close(torch.from_numpy(got), want, **TOL)


def test_native_cells_become_native_nodes_and_the_others_a_scan():
    for name, options in NATIVE:
        ops = {node.op_type for node in to_onnx(Recurrent(cells.make(name, 3, 4, **options)).eval()).graph.node}
        assert ops & {"LSTM", "GRU", "RNN"} and "Scan" not in ops, name
    for name, options in SCANNED:
        ops = {node.op_type for node in to_onnx(Recurrent(cells.make(name, 3, 4, **options)).eval()).graph.node}
        assert "Scan" in ops and not ops & {"LSTM", "GRU", "RNN"}, name


def test_training_mode_a_low_opset_and_unexportable_merges_are_refused():
    net = lstmkit.build_rnn("lstm", 3, 4, num_layers=2, dropout=0.5)
    with pytest.raises(ExportError, match="training mode.*call .eval"):
        to_onnx(net)
    with pytest.raises(ExportError, match=r"'opset' expected an int >= 14 \(.*\), got 11"):
        to_onnx(net.eval(), opset=11)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ExportError, match=rf"and <= {newest} \(the newest the installed onnx knows\), got 99"):
        to_onnx(net.eval(), opset=99)
    with pytest.raises(ExportError, match="merge None has no ONNX form"):
        to_onnx(Bidirectional(cells.make("lstm", 3, 4), cells.make("lstm", 3, 4), merge=None).eval())
    with pytest.raises(ExportError, match="two directions are different cells"):
        to_onnx(Bidirectional(cells.make("lstm", 3, 4), cells.make("gru", 3, 4)).eval())
    with pytest.raises(ExportError, match="expected a Recurrent, Bidirectional or Stack layer.*got Linear"):
        to_onnx(torch.nn.Linear(3, 4).eval())


def test_the_exported_run_reproduces_lstmkit_predict(tmp_path):
    rng = np.random.default_rng(0)
    with open(tmp_path / "train.jsonl", "w") as f:
        for i in range(60):
            y = i % 3
            x = rng.normal(3.0, 2.0, (int(rng.integers(2, 9)), 2)) + [[(-1) ** y, y]]
            f.write(json.dumps({"x": x.round(3).tolist(), "y": f"c{y}"}) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"task: classify\ndata: {{dataset: files, train_file: {tmp_path / 'train.jsonl'}}}\n"
                      "model: {hidden_size: 6, pooling: mean}\noptim: {epochs: 2}\ntrainer: {progress_bar: false}\n")
    run, out = tmp_path / "run", tmp_path / "model.onnx"
    command = [sys.executable, "-m", "lstmkit"]
    assert subprocess.run([*command, "train", str(config), "--run-dir", str(run)], capture_output=True).returncode == 0
    done = subprocess.run([*command, "export", str(run), str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and f"wrote {out}" in done.stdout, done.stderr
    records = [{"x": rng.normal(3.0, 2.0, (T, 2)).round(3).tolist()} for T in (5, 1, 8)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    predicted = subprocess.run([*command, "predict", str(run), str(tmp_path / "in.jsonl")], capture_output=True,
                               text=True)
    expected = [json.loads(line) for line in predicted.stdout.splitlines()]
    lengths = np.array([len(r["x"]) for r in records])
    x = np.zeros((3, lengths.max(), 2), np.float32)
    for b, r in enumerate(records):
        x[b, :lengths[b]] = r["x"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, {"x": x, "lengths": lengths})
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    for p, label, want in zip(probabilities, labels, expected):
        assert classes[int(label)] == want["label"]
        np.testing.assert_allclose(p, [want["probabilities"][c] for c in classes], rtol=1e-5, atol=1e-6)
    refused = subprocess.run([*command, "export", str(run), str(out), "--opset", "9", "--force"], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "'opset' expected an int >= 14 (" in refused.stderr
    assert "Traceback" not in refused.stderr
    # the run's own model is never overwritten, nor any file without --force
    last = run / "checkpoints" / "last.safetensors"
    before = last.read_bytes()
    kept = subprocess.run([*command, "export", str(run), str(last)], capture_output=True, text=True)
    assert kept.returncode == 2 and "exists; give another file, or --force" in kept.stderr
    kept = subprocess.run([*command, "export", str(run), str(last), "--force"], capture_output=True, text=True)
    assert kept.returncode == 2 and "outside the run's checkpoints" in kept.stderr and last.read_bytes() == before
    again = subprocess.run([*command, "export", str(run), str(out), "--force"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("transform,periods", [("log1p", [7]), ("sqrt", []), ("none", [5, 12])])
def test_an_exported_forecast_run_reproduces_lstmkit_predict(tmp_path, transform, periods):
    t = np.arange(400)
    series = 5 + 2 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(0).gamma(2.0, 0.3, t.size)
    (tmp_path / "s.csv").write_text("v\n" + "\n".join(f"{v:.4f}" for v in series) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"task: forecast\ndata: {{dataset: files, file: {tmp_path / 's.csv'}, window: 14, horizon: 3, "
                      f"season: 7, test_size: 30, valid_size: 30, transform: {transform}, periods: {periods}}}\n"
                      "model: {hidden_size: 6}\noptim: {epochs: 1}\ntrainer: {progress_bar: false}\n")
    run, out = tmp_path / "run", tmp_path / "model.onnx"
    command = [sys.executable, "-m", "lstmkit"]
    assert subprocess.run([*command, "train", str(config), "--run-dir", str(run)], capture_output=True).returncode == 0
    assert subprocess.run([*command, "export", str(run), str(out)], capture_output=True).returncode == 0
    records = [{"history": series[:50].tolist()}, {"history": series[100:114].tolist(), "start": 100},
               {"history": series[:390].tolist(), "start": 0}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    predicted = subprocess.run([*command, "predict", str(run), str(tmp_path / "in.jsonl")], capture_output=True,
                               text=True)
    expected = np.array([json.loads(line)["forecast"] for line in predicted.stdout.splitlines()])
    history = np.array([r["history"][-14:] for r in records])
    start = np.array([r.get("start", 0) + len(r["history"]) - 14 for r in records])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (forecast,) = session.run(None, {"history": history, "start": start})
    np.testing.assert_allclose(forecast, expected, rtol=1e-5, atol=1e-5)


def test_an_exported_anomaly_run_reproduces_lstmkit_predict(tmp_path):
    t = np.arange(600)
    normal = np.sin(2 * np.pi * t / 25) + 0.05 * np.random.default_rng(1).normal(size=t.size)
    (tmp_path / "normal.csv").write_text("v\n" + "\n".join(f"{v:.4f}" for v in normal) + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"task: anomaly\ndata: {{dataset: files, train_file: {tmp_path / 'normal.csv'}, window: 16}}\n"
                      "model: {hidden_size: 6}\noptim: {epochs: 2}\ntrainer: {progress_bar: false}\n")
    run, out = tmp_path / "run", tmp_path / "model.onnx"
    command = [sys.executable, "-m", "lstmkit"]
    done = subprocess.run([*command, "train", str(config), "--run-dir", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert subprocess.run([*command, "export", str(run), str(out)], capture_output=True).returncode == 0
    series = np.sin(2 * np.pi * np.arange(300) / 25)
    series[150:160] += 2.5                                  # an anomaly to find
    (tmp_path / "in.jsonl").write_text(json.dumps({"values": series.round(4).tolist()}) + "\n")
    predicted = subprocess.run([*command, "predict", str(run), str(tmp_path / "in.jsonl")], capture_output=True,
                               text=True)
    expected = json.loads(predicted.stdout)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scores, anomalies = session.run(None, {"values": series.round(4)})
    np.testing.assert_allclose(scores, expected["scores"], rtol=1e-5, atol=1e-9)
    assert anomalies.tolist() == expected["anomalies"] and 150 <= anomalies.min() <= 160
    assert float(session.get_modelmeta().custom_metadata_map["threshold"]) == expected["threshold"]


def test_an_ensemble_run_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train.jsonl").write_text("".join(
        json.dumps({"x": rng.normal(size=(4, 2)).round(3).tolist(), "y": f"c{i % 2}"}) + "\n" for i in range(20)))
    config = tmp_path / "config.yaml"
    config.write_text(f"task: classify\ndata: {{dataset: files, train_file: {tmp_path / 'train.jsonl'}}}\n"
                      "model: {hidden_size: 3, ensemble: 2}\noptim: {epochs: 1}\ntrainer: {progress_bar: false}\n")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "lstmkit", "train", str(config), "--run-dir", str(run)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.raises(ExportError, match="an ensemble of 2 models, which has no ONNX export"):
        export_run(run, tmp_path / "model.onnx")
