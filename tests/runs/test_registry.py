"""The task registry: a task defined here, outside the package, is one class and one registration,
and then the CLI trains, evaluates and predicts it like a built-in one; the parts it declares in
this one module (a streaming session, an ONNX graph, an estimator) are found by the server, the
exporter and :mod:`lstmkit.estimators` as a built-in task's are."""

import importlib.util
import json
from pathlib import Path
from typing import Literal


import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="the training extras are not installed")

from pydantic import BaseModel, Field  # noqa: E402

from sklearn.base import RegressorMixin  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.export.api import forecaster_output  # noqa: E402
from lstmkit.train.estimator import RunEstimator  # noqa: E402
from lstmkit.data.readers import read_jsonl  # noqa: E402
from lstmkit.models import Forecaster  # noqa: E402
from lstmkit.runs import registry  # noqa: E402
from lstmkit.runs import DataConfig, ModelConfig, RunConfig, default_config, load_config  # noqa: E402
from lstmkit.runs import ListDataset, Prepared, Record, Task, WindowTask, make_task  # noqa: E402


class SumData(DataConfig):
    needs = {"files": ("file",)}
    dataset: Literal["generated", "files"] = Field("generated", description="uniform noise in [-1, 1], or 'files'")
    file: Path | None = Field(None, description="dataset 'files': JSON lines {values, sum}, split 3:1:1 in order")
    size: int = Field(512, gt=0, description="training sequences (a quarter as many validate and test)")
    length: int = Field(6, gt=0, description="steps per sequence")


class SumConfig(RunConfig):
    task: Literal["running_sum"] = Field("running_sum", description="the sum of a sequence (a task of the tests)")
    data: SumData = Field(default_factory=SumData)
    model: ModelConfig = Field(default_factory=ModelConfig)


class SumInput(Record):
    EXAMPLE = '{"values": [numbers...]}'
    values: list[float] = Field(min_length=1)


class SumOutput(BaseModel):
    sum: float


class SumStart(BaseModel):
    model_config = {"extra": "forbid"}
    values: list[float] = Field(default_factory=list)


class SumStep(BaseModel):
    model_config = {"extra": "forbid"}
    values: list[float] = Field(min_length=1)


class SumStream:
    """Sessions: the model's sum of every value sent so far, after each step record."""

    start_input, step_input = SumStart, SumStep

    def __init__(self, run, lock):
        self.model, self.lock = run.model, lock

    @torch.no_grad()
    def advance(self, states, inputs):
        with self.lock:
            return [(float(self.model(torch.tensor(v, dtype=torch.float32)[None, :, None])[0]), None) for v in inputs]

    async def _read(self, values, new, submit):
        values = values + new
        return values, {"sum": (await submit(None, values))[0] if values else None}

    async def start(self, record, submit):
        return await self._read([], record.values, submit)

    async def update(self, state, record, submit):
        return await self._read(state, record.values, submit)

    def export(self, state):
        return {"values": state}

    def restore(self, exported):
        return [float(v) for v in exported["values"]]


class SumRegressor(RegressorMixin, RunEstimator):
    """The sums of sequences, from Python: ``fit(X, y)``, ``predict(X)``."""

    task = "running_sum"

    def __init__(self, cell="lstm", hidden_size=16, num_layers=1, bidirectional=False, dropout=0.0, epochs=12,
                 batch_size=32, lr=0.02, optimizer="adam", seed=0, run_dir=None, config=None, verbose=False):
        self.cell, self.hidden_size, self.num_layers, self.bidirectional = cell, hidden_size, num_layers, bidirectional
        self.dropout, self.epochs, self.batch_size, self.lr, self.optimizer = dropout, epochs, batch_size, lr, optimizer
        self.seed, self.run_dir, self.config, self.verbose = seed, run_dir, config, verbose

    def fit(self, X, y):
        run_dir = self._new_run_dir()
        file = run_dir / "data" / "sums.jsonl"
        file.parent.mkdir(parents=True)
        file.write_text("".join(json.dumps({"values": list(map(float, x)), "sum": float(s)}) + "\n"
                                for x, s in zip(X, y)))
        return self._train({"dataset": "files", "file": file}, run_dir)

    def predict(self, X):
        return np.asarray([o["sum"] for o in self._predict_records([{"values": list(map(float, x))} for x in X])])


class SumTask(WindowTask):
    """A sequence of numbers (B, T, 1) -> their sum (B, 1)."""

    name = "running_sum"
    config_class = SumConfig
    predict_input = SumInput
    predict_output = SumOutput
    formats = 'evaluate --data: JSON lines {"values": [...], "sum": number}; predict: {"values": [...]}'
    stream = SumStream
    estimators = (SumRegressor,)

    def export_graph(self, g, model, meta):
        values = g.input("values", "FLOAT", ["batch", "time"])
        x = g.op("Unsqueeze", [values, g.const([2], "axis", np.int64)])                     # (B, T, 1)
        g.output(forecaster_output(g, model, x), "sum", "FLOAT", ["batch", 1])
        return {"length": str(meta["length"])}

    @staticmethod
    def _items(values: list[np.ndarray], sums: list[float]) -> ListDataset:
        return ListDataset([(torch.tensor(v, dtype=torch.float32)[:, None], torch.tensor([s], dtype=torch.float32))
                            for v, s in zip(values, sums)])

    def prepare(self, meta=None) -> Prepared:
        d = self.config.data
        if d.dataset == "files":
            records = read_jsonl(d.file, "data.file")
            n = len(records)
            values, sums = [np.asarray(r["values"]) for r in records], [r["sum"] for r in records]
            cut = [0, 3 * n // 5, 4 * n // 5, n]
            train, valid, test = (self._items(values[a:b], sums[a:b]) for a, b in zip(cut, cut[1:]))
        else:
            rng = np.random.default_rng(d.split_seed)
            splits = [rng.uniform(-1, 1, (n, d.length)) for n in (d.size, d.size // 4, d.size // 4)]
            train, valid, test = (self._items(list(x), x.sum(1).tolist()) for x in splits)
        return Prepared(train=train, valid=valid, test=test, meta=meta or {"length": d.length})

    def build_model(self, meta):
        return Forecaster(self.config.model.cell, 1, self.config.model.hidden_size, horizon=1)

    @torch.no_grad()
    def _mse(self, model, dataset: ListDataset) -> float:
        model.eval()
        batch = self.collate(dataset.items)
        return float(torch.nn.functional.mse_loss(model(batch["x"])[0], batch["y"]))

    def evaluate(self, model, prepared, split, out_dir):
        dataset = getattr(prepared, split)
        return {"split": split, "n": len(dataset), "mse": self._mse(model, dataset)}

    def evaluate_file(self, model, meta, path, out_dir):
        records = read_jsonl(Path(path), "data file")
        dataset = self._items([np.asarray(r["values"]) for r in records], [r["sum"] for r in records])
        return {"file": str(path), "n": len(dataset), "mse": self._mse(model, dataset)}

    @torch.no_grad()
    def predict(self, model, meta, records):
        model.eval()
        return [{"sum": float(model(torch.tensor(r.values, dtype=torch.float32)[None, :, None])[0])}
                for r in self.records(records)]

    @classmethod
    def summary(cls, split, results, *, refit=False):
        return f"  {split:5s} MSE {results['mse']:.4f}"


@pytest.fixture
def sum_task():
    registry.register(SumTask)
    yield SumTask
    registry.unregister(SumTask.name)


def test_a_task_from_outside_trains_evaluates_and_predicts_through_the_cli(sum_task, tmp_path, capsys):
    assert "running_sum" in registry.names() and registry.names()[:5] == ("classify", "sentiment", "forecast",
                                                                        "global_forecast", "anomaly")
    assert cli.main(["config", "running_sum"]) == 0
    config_text = capsys.readouterr().out
    assert "task: running_sum" in config_text and "steps per sequence" in config_text
    config = tmp_path / "sum.yaml"
    config.write_text(config_text)
    run = tmp_path / "run"
    assert cli.main(["train", str(config), "--run-dir", str(run), "--set", "model.hidden_size=16",
                     "--set", "optim.epochs=12", "--set", "optim.lr=0.02", "--set", "trainer.progress_bar=false"]) == 0
    out = capsys.readouterr().out
    assert "test  MSE" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "running_sum" and metrics["test"]["mse"] < 0.2     # the sum's variance is 2

    assert cli.main(["evaluate", str(run), "--split", "valid"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "valid"
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text('{"values": [0.5, 0.5, -0.25], "sum": 0.75}\n{"values": [-1, -1, 0], "sum": -2}\n')
    assert cli.main(["evaluate", str(run), "--data", str(labelled)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2

    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"values": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]}\n{"values": [-0.5, -0.5, -0.5, -0.5, -0.5, -0.5]}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 0
    high, low = (json.loads(line)["sum"] for line in capsys.readouterr().out.splitlines())
    assert abs(high - 3) < 1.0 and abs(low + 3) < 1.0
    inputs.write_text('{"values": []}\n')
    assert cli.main(["predict", str(run), str(inputs)]) == 2
    assert "inputs.jsonl' line 1 expected {\"values\": [numbers...]}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    assert "running_sum" in capsys.readouterr().out

    # its streaming session, through the server's routes
    from fastapi.testclient import TestClient
    from lstmkit.serve import create_app, load_models
    token = "t" * 32
    with TestClient(create_app(load_models([run]), [token])) as client:
        headers = {"Authorization": f"Bearer {token}"}
        opened = client.post("/v1/models/run/sessions", json={"start": {"values": [0.5, 0.5]}}, headers=headers)
        assert opened.status_code == 201, opened.text
        steps = client.post(f"/v1/sessions/{opened.json()['session']}/steps",
                            json={"steps": [{"values": [0.25]}, {"values": [-1.0, 0.5]}]}, headers=headers).json()
    from lstmkit.runs import predict
    expected = predict(run, [{"values": [0.5, 0.5]}, {"values": [0.5, 0.5, 0.25]}, {"values": [0.5, 0.5, 0.25, -1, 0.5]}])
    got = [opened.json()["output"]["sum"], *(o["sum"] for o in steps["outputs"])]
    assert got == pytest.approx([e["sum"] for e in expected], abs=1e-6)

    # its ONNX graph, through lstmkit export
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort
        assert cli.main(["export", str(run), str(tmp_path / "model.onnx")]) == 0
        capsys.readouterr()
        session = ort.InferenceSession(str(tmp_path / "model.onnx"))
        [sums] = session.run(None, {"values": np.asarray([[0.5, 0.5, 0.25]], dtype=np.float32)})
        assert float(sums[0, 0]) == pytest.approx(expected[1]["sum"], abs=1e-5)
        with pytest.MonkeyPatch.context() as patch:             # a task without Task.export_graph is refused by name
            patch.setattr(SumTask, "export_graph", Task.export_graph)
            assert cli.main(["export", str(run), str(tmp_path / "none.onnx")]) == 2
            assert "the 'running_sum' task has no ONNX export (tasks with one: classify, sentiment" in \
                capsys.readouterr().err


def test_a_task_from_outside_gets_an_estimator_from_its_one_module(sum_task, tmp_path):
    import lstmkit.estimators
    assert lstmkit.estimators.SumRegressor is SumRegressor and "SumRegressor" in dir(lstmkit.estimators)
    rng = np.random.default_rng(1)
    X = list(rng.uniform(-1, 1, (400, 6)))
    regressor = SumRegressor(run_dir=str(tmp_path / "fit")).fit(X, [x.sum() for x in X])
    assert (tmp_path / "fit" / "checkpoints").is_dir() and regressor.run_.task.name == "running_sum"
    assert regressor.score(X[:50], [x.sum() for x in X[:50]]) > 0.8
    assert SumRegressor.load(tmp_path / "fit").predict(X[:3]) == pytest.approx(regressor.predict(X[:3]))


def test_registering_checks_the_task_and_unknown_tasks_list_the_registered_ones(sum_task):
    assert registry.get("running_sum") is SumTask and isinstance(make_task(default_config("running_sum")), SumTask)
    with pytest.raises(ValueError, match="is taken"):
        registry.register(type("Other", (SumTask,), {}))
    with pytest.raises(TypeError, match="Task subclass"):
        registry.register(dict)
    with pytest.raises(TypeError, match="config_class expected a RunConfig subclass"):
        registry.register(type("NoConfig", (Task,), {"name": "no_config"}))
    with pytest.raises(ValueError, match="to default to 'wrong'"):
        registry.register(type("Wrong", (SumTask,), {"name": "wrong"}))
    with pytest.raises(ValueError, match=r"task: expected one of \('classify', .*'running_sum'\)"):
        load_config(None, ["task=nonexistent"])


def test_every_task_has_its_schemas_and_summary():
    for name in registry.names():
        task = registry.get(name)
        assert task.name == name and task.config_class().task == name and task.formats
        assert issubclass(task.predict_input, Record) and issubclass(task.predict_output, BaseModel)
