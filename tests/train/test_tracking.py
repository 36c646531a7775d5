"""Experiment tracking: a tiny run's metrics read back with TensorBoard's and MLflow's own readers."""

import json

import numpy as np
import pytest

from lstmkit.runs import load_config
from lstmkit.train.runner import train

from toy import two_class_series

pytest.importorskip("lightning", reason="the training extras are not installed")


def _train(tmp_path, name, *settings):
    data = two_class_series(tmp_path / "series.jsonl", 40, np.random.default_rng(0))
    run = tmp_path / "runs" / name
    results = train(load_config(None, ["data.dataset=files", f"data.train_file={data}", "model.hidden_size=6",
                                       "optim.epochs=3", "data.batch_size=16", "trainer.progress_bar=false",
                                       *settings]), run, quiet=True)
    return run, results


def _csv_epochs(run):
    import csv
    rows = list(csv.DictReader(open(run / "logs" / "attempt-1" / "metrics.csv")))
    return [float(r["val_loss"]) for r in rows if r.get("val_loss")]


def test_tensorboard_has_the_runs_metrics_and_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run, results = _train(tmp_path, "tb", "trainer.logger=tensorboard")
    where = json.loads((run / "tracking.json").read_text())
    assert results["tracking"] == where and where["logger"] == "tensorboard"
    events = EventAccumulator(str(run / "logs" / "tensorboard" / "attempt-1"))
    events.Reload()
    logged = [s.value for s in events.Scalars("val_loss")]
    assert logged == pytest.approx(_csv_epochs(run)) and len(logged) == 3
    assert (run / "logs" / "attempt-1" / "metrics.csv").is_file()           # the run's own CSV stays


def test_mlflow_has_the_runs_metrics_and_config_in_a_local_store(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    run, results = _train(tmp_path, "ml", "trainer.logger=mlflow")
    where = json.loads((run / "tracking.json").read_text())
    assert where["tracking_uri"] == f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    client = MlflowClient(where["tracking_uri"])
    [run_id] = where["run_ids"]
    logged = [m.value for m in sorted(client.get_metric_history(run_id, "val_loss"), key=lambda m: m.step)]
    assert logged == pytest.approx(_csv_epochs(run)) and len(logged) == 3
    recorded = client.get_run(run_id)
    assert recorded.data.params["model.hidden_size"] == "6" and recorded.info.run_name == "ml"
    assert recorded.data.tags["run_dir"] == str(run.resolve())
    second, _ = _train(tmp_path, "ml2", "trainer.logger=mlflow")                # one store for a folder's runs
    experiment = client.get_experiment_by_name("lstmkit-classify")
    assert len(client.search_runs([experiment.experiment_id])) == 2


def test_a_logger_whose_package_is_missing_is_named(tmp_path, monkeypatch):
    def missing(*args, **kwargs):          # what Lightning raises without tensorboard or tensorboardX
        raise ModuleNotFoundError("No module named 'tensorboard'", name="tensorboard")

    monkeypatch.setattr("lightning.pytorch.loggers.TensorBoardLogger", missing)
    with pytest.raises(ValueError, match=r"trainer.logger 'tensorboard' needs tensorboard .*pip install 'lstmkit\[track\]'"):
        _train(tmp_path, "none", "trainer.logger=tensorboard")
