"""The triggered weight average of NT-ASGD (``optim.nt_average``): its trigger against the rule
written out, the average against the mean of the recorded weights, and a training run that
validates, checkpoints and resumes with the average."""

import random
from pathlib import Path

import pytest
import torch

from lstmkit.train.averaging import TriggeredAverage

pytest.importorskip("lightning", reason="the training extras are not installed")
import lightning as L  # noqa: E402

from lstmkit.runs.checkpoint import load_checkpoint  # noqa: E402
from lstmkit.runs import load_config  # noqa: E402
from lstmkit.train.runner import train  # noqa: E402


@pytest.mark.parametrize("seed", range(20))
def test_the_trigger_is_the_first_loss_worse_than_the_best_more_than_n_evaluations_before(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 4)
    losses = [rng.choice([1.0, 2.0, 3.0]) for _ in range(12)]
    expected = next((i for i in range(len(losses)) if i > n and losses[i] > min(losses[:i - n])), None)
    average = TriggeredAverage(n)
    started = [average.observe(loss, [torch.zeros(2)]) for loss in losses]
    assert average.started == expected and started.count(True) == (expected is not None)
    assert average.losses == losses


def test_the_average_is_the_mean_of_the_weights_after_each_step_and_swapping_twice_restores_them():
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    average = TriggeredAverage(1)
    average.update(params)                                   # not started: nothing averaged
    for loss in (1.0, 3.0, 2.0):
        average.observe(loss, params)
    assert average.started == 2 and not average.active
    seen = []
    for _ in range(5):
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn_like(p))
        seen.append([p.detach().clone() for p in params])
        average.update(params)
    raw = [p.detach().clone() for p in params]
    average.swap(params)
    for i, p in enumerate(params):
        torch.testing.assert_close(p.detach(), torch.stack([s[i] for s in seen]).mean(0))
    with pytest.raises(RuntimeError, match="swap back first"):
        average.update(params)
    average.swap(params)
    assert all(torch.equal(p, r) for p, r in zip(params, raw))
    restored = TriggeredAverage(3)
    restored.load_state_dict(average.state_dict())
    assert restored.state_dict()["losses"] == [1.0, 3.0, 2.0] and restored.count == 5
    with pytest.raises(ValueError, match="nonmono: expected a number of evaluations >= 1, got 0"):
        TriggeredAverage(0)


class _Record(L.Callback):
    """The weights after every training step, per epoch."""

    def __init__(self):
        self.steps: dict[int, list[dict]] = {}

    def on_train_batch_end(self, trainer, pl_module, *args):
        weights = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        self.steps.setdefault(trainer.current_epoch, []).append(weights)


class _StopAfter(L.Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch + 1:
            raise RuntimeError("stop")


def _config(root: Path, *overrides: str):
    lines = ["the cat sat on the mat", "a dog ran on a log", "the dog and the cat sat"]
    rng = random.Random(0)
    for name, count in (("train", 200), ("valid", 30)):
        (root / f"{name}.txt").write_text("\n".join(rng.choice(lines) for _ in range(count)) + "\n")
    return load_config(None, ["task=language_model", "data.dataset=files", f"data.train_file={root / 'train.txt'}",
                              f"data.valid_file={root / 'valid.txt'}", "model.hidden_size=8", "data.batch_size=4",
                              "data.bptt=10", "optim.optimizer=sgd", "optim.lr=40", "optim.schedule=none",
                              "optim.nt_average=1", "optim.epochs=8", "optim.select=last",
                              "trainer.progress_bar=false", *overrides])


def test_training_with_the_triggered_average_validates_saves_and_resumes_with_the_mean_weights(tmp_path):
    record = _Record()
    results = train(_config(tmp_path), tmp_path / "run", quiet=True, callbacks=[record])
    started = results["nt_average"]["started_after_epoch"]
    assert started is not None and started <= 6                   # lr 40: the validation loss rises again
    after = [w for epoch in range(started, 8) for w in record.steps[epoch]]
    assert results["nt_average"]["steps_averaged"] == len(after) > 0
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")["state_dict"]
    for key, value in saved.items():
        mean = torch.stack([w[key.removeprefix("model.")] for w in after]).mean(0)
        torch.testing.assert_close(value, mean, rtol=1e-5, atol=1e-6)
    # a run stopped after the average started resumes to the same model
    with pytest.raises(RuntimeError, match="stop"):
        train(_config(tmp_path), tmp_path / "stopped", quiet=True, callbacks=[_StopAfter(started)])
    resumed = train(None, tmp_path / "stopped", resume=True, quiet=True)
    again = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.safetensors")["state_dict"]
    assert resumed["nt_average"] == results["nt_average"]
    assert all(torch.equal(saved[k], again[k]) for k in saved)


def test_the_triggered_average_needs_validation():
    with pytest.raises(Exception, match="expected nt_average null with refit, got 2"):
        load_config(None, ["optim.refit=true", "optim.nt_average=2"])
