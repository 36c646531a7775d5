"""The import paths that moved keep working until lstmkit 0.3, each with a DeprecationWarning
that names the new one, and give the very objects of the new paths."""

import importlib
import json
import subprocess
import sys
import warnings

import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

MOVED = [  # old module, attribute, new module
    ("lstmkit.train.config", "load_config", "lstmkit.runs.parsing"),
    ("lstmkit.train.config", "ModelConfig", "lstmkit.runs.config"),
    ("lstmkit.train.registry", "register", "lstmkit.runs.registry"),
    ("lstmkit.train.checkpoint", "load_checkpoint", "lstmkit.runs.checkpoint"),
    ("lstmkit.train.checkpoint", "SafetensorsCheckpointIO", "lstmkit.train.checkpoint_io"),
    ("lstmkit.train.json_output", "dumps", "lstmkit.runs.json_output"),
    ("lstmkit.train.plots", "learning_curves", "lstmkit.runs.plots"),
    ("lstmkit.train.generate", "TextGenerator", "lstmkit.tasks.language_model.generate"),
    ("lstmkit.train.estimators", "RecurrentClassifier", "lstmkit.tasks.classify.estimator"),
    ("lstmkit.train.tasks", "Task", "lstmkit.runs.task"),
    ("lstmkit.train.tasks", "make_task", "lstmkit.runs.registry"),
    ("lstmkit.train.tasks.forecast", "ForecastTask", "lstmkit.tasks.forecast.task"),
    ("lstmkit.train.tasks._common", "finite_float32", "lstmkit.runs.records"),
    ("lstmkit.train.tasks._sequence_metrics", "pronunciation_errors", "lstmkit.tasks.sequence_metrics"),
]


def test_each_old_module_path_warns_once_and_gives_the_new_objects():
    # a fresh interpreter, where no old module was imported yet: each warns when first imported
    code = ("import importlib, json, warnings\nwarned = {}\n"
            f"for old in {sorted({old for old, _, _ in MOVED})!r}:\n"
            "    with warnings.catch_warnings(record=True) as caught:\n"
            "        warnings.simplefilter('always')\n"
            "        importlib.import_module(old)\n"
            "    warned[old] = [str(w.message) for w in caught if w.category is DeprecationWarning]\n"
            "print(json.dumps(warned))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    warned = json.loads(result.stdout.splitlines()[-1])
    for old, messages in warned.items():          # a module of an old package: its package warned
        package = old if messages else old.rpartition(".")[0]
        assert any(package in m and "lstmkit 0.3" in m for m in warned[package]), (old, messages)
    for old, name, new in MOVED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(old)
        assert getattr(module, name) is getattr(importlib.import_module(new), name), (old, name)


def test_the_old_load_run_gives_the_old_tuple(tmp_path):
    from lstmkit.runs import load_config, load_run
    from lstmkit.train import runner
    from lstmkit.train.runner import train
    config = load_config(None, ["task=forecast", "data.dataset=sunspots", "model.hidden_size=4", "optim.epochs=1",
                                "trainer.progress_bar=false"])
    train(config, tmp_path / "run", quiet=True)
    with pytest.warns(DeprecationWarning, match="lstmkit.runs.load_run"):
        task, meta, model, checkpoint = runner.load_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert (task.name, meta, checkpoint) == (run.task.name, run.fitted.to_dict(), run.checkpoint) and not model.training
    with pytest.warns(DeprecationWarning, match="lstmkit.runs.predict"):
        old_predict = runner.predict
    record = {"history": [50.0] * 44}
    assert old_predict(tmp_path / "run", [record]) == run.predict([record])


def test_the_generators_of_the_classic_tasks_still_resolve_from_lstmkit_tasks():
    import lstmkit.data.synthetic as synthetic
    import lstmkit.tasks
    with pytest.warns(DeprecationWarning, match="lstmkit.data.synthetic"):
        assert lstmkit.tasks.adding_hs97 is synthetic.adding_hs97
    with pytest.warns(DeprecationWarning):
        from lstmkit.tasks import embedded_reber                          # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        lstmkit.tasks.nothing_here


def test_a_task_written_with_step_still_trains_warned():
    import torch

    from lstmkit.runs import Task

    class Old(Task):
        def step(self, model, batch):
            return torch.tensor(1.0), {}

    with pytest.warns(DeprecationWarning, match="Old.step is now Task.batch_loss"):
        loss, _ = Old(None).batch_loss(None, {})
    assert float(loss) == 1.0
    with pytest.raises(NotImplementedError):
        Task(None).batch_loss(None, {})


def test_renamed_names_keep_working_warned(tmp_path):
    import torch

    from lstmkit.models import Seq2Seq, SequenceTagger
    from lstmkit.models import seq2seq
    from lstmkit.runs import load_config
    for task, extra in (("anomaly", "data.train_file=normal.csv"), ("forecast", "data.file=series.csv")):
        with pytest.warns(DeprecationWarning, match="data.dataset 'file' is now 'files'"):
            config = load_config(None, [f"task={task}", "data.dataset=file", extra])
        assert config.data.dataset == "files"
    with pytest.warns(DeprecationWarning, match="EOS_ID"):
        assert seq2seq.EOS == seq2seq.EOS_ID == 2
    torch.manual_seed(0)
    model = Seq2Seq("lstm", 6, 7, 8).eval()
    source, lengths, targets = torch.tensor([[3, 4, 5]]), torch.tensor([3]), torch.tensor([[4, 2]])
    with pytest.warns(DeprecationWarning, match="targets="):
        assert torch.equal(model(source, lengths, target=targets)[1], model(source, lengths, targets)[1])
    tagger = SequenceTagger("lstm", 10, 4, 5, embedding_size=3).eval()
    words, tags = torch.tensor([[2, 3, 4]]), torch.tensor([[0, 1, 2]])
    with pytest.warns(DeprecationWarning, match="targets="):
        assert torch.equal(tagger(words, torch.tensor([3]), tags=tags)[1], tagger(words, torch.tensor([3]), targets=tags)[1])
