"""The task registry: a task defined here, outside the package, is one class and one registration,
and then the CLI trains, evaluates and predicts it like a built-in one."""

import importlib.util
import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="the training extras are not installed")

from pydantic import BaseModel, Field  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.data.readers import read_jsonl  # noqa: E402
from lstmkit.models import Forecaster  # noqa: E402
from lstmkit.runs import registry  # noqa: E402
from lstmkit.runs import DataConfig, ModelConfig, RunConfig, default_config, load_config  # noqa: E402
from lstmkit.runs import ListDataset, Prepared, Record, Task, WindowTask, make_task  # noqa: E402


class SumData(DataConfig):
    dataset: Literal["generated"] = Field("generated", description="uniform noise in [-1, 1]")
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


class SumTask(WindowTask):
    """A sequence of numbers (B, T, 1) -> their sum (B, 1)."""

    name = "running_sum"
    config_class = SumConfig
    predict_input = SumInput
    predict_output = SumOutput
    formats = 'evaluate --data: JSON lines {"values": [...], "sum": number}; predict: {"values": [...]}'

    @staticmethod
    def _items(values: list[np.ndarray], sums: list[float]) -> ListDataset:
        return ListDataset([(torch.tensor(v, dtype=torch.float32)[:, None], torch.tensor([s], dtype=torch.float32))
                            for v, s in zip(values, sums)])

    def prepare(self, meta=None) -> Prepared:
        d = self.config.data
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
    assert "running_sum" in registry.names() and registry.names()[:4] == ("classify", "sentiment", "forecast",
                                                                        "anomaly")
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
    assert "input record 0 expected {\"values\": [numbers...]}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    assert "running_sum" in capsys.readouterr().out
    if importlib.util.find_spec("onnx") is not None:       # a task without Task.export_graph is refused by name
        assert cli.main(["export", str(run), str(tmp_path / "model.onnx")]) == 2
        assert "the 'running_sum' task has no ONNX export (tasks with one: classify, sentiment" in capsys.readouterr().err


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
