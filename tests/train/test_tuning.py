"""Hyper-parameter search (Optuna) on tiny data: it resumes, prunes, and its best config trains
again to the figure it reported."""

import csv

import numpy as np
import pytest

from lstmkit import cli
from lstmkit.runs import ConfigError, load_config

from toy import two_class_series

pytest.importorskip("optuna", reason="the train extra's optuna is not installed")
from lstmkit.train.tuning import parse_space, tune  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return two_class_series(tmp_path_factory.mktemp("tune") / "series.jsonl", 60, np.random.default_rng(0),
                            spread=0.6, centre=(0.5, 0.0))


def _overrides(data):
    return ["data.dataset=files", f"data.train_file={data}", "optim.epochs=4", "data.batch_size=16",
            "trainer.progress_bar=false", "model.num_layers=1", "optim.select=best"]


SPACE = {"model.hidden_size": "int:4..12", "optim.lr": "choice:0.03,0.0000001"}


def test_a_search_resumes_prunes_and_its_best_config_trains_to_its_figure(data, tmp_path):
    from lstmkit.train.runner import train
    study = tmp_path / "study"
    first = tune(None, SPACE, trials=2, study_dir=study, overrides=_overrides(data))
    earlier = [t.params for t in first.study.trials]
    assert len(earlier) == 2
    search = tune(None, SPACE, trials=10, study_dir=study, overrides=_overrides(data))   # continues the same study
    trials = search.study.trials
    assert [t.params for t in trials[:2]] == earlier
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 10
    assert any(t.state.name == "PRUNED" for t in trials)                                # a hopeless lr is stopped
    rows = list(csv.DictReader(open(study / "trials.csv")))
    assert len(rows) == len(trials) and {r["state"] for r in rows} >= {"COMPLETE", "PRUNED"}
    assert (study / "history.png").stat().st_size > 5_000
    assert search.best_params["optim.lr"] == 0.03

    best = load_config(study / "best.yaml")
    assert best.model.hidden_size == search.best_params["model.hidden_size"]
    train(best, tmp_path / "again", quiet=True)
    epochs = [float(r["val_loss"]) for r in csv.DictReader(open(tmp_path / "again" / "logs" / "attempt-1" / "metrics.csv"))
              if r.get("val_loss")]
    assert min(epochs) == pytest.approx(search.best_value, rel=1e-6)


def test_bad_spaces_are_named():
    for item, message in (("optim.lr=log:0..1", "log needs LOW above 0"), ("optim.lr=float:1..0", "LOW below HIGH"),
                          ("model.hidden_size=int:1.5..4", "whole numbers"), ("optim.lr", "expected KEY=KIND:ARGS"),
                          ("model.cell=choice:lstm", "two values or more"), ("optim.lr=normal:0..1", "expected int:")):
        with pytest.raises(ConfigError, match=message):
            parse_space([item])


def test_a_key_the_config_does_not_have_is_refused_before_any_trial(data, tmp_path):
    with pytest.raises(ConfigError, match="hiden_size"):
        tune(None, {"model.hiden_size": "int:4..8"}, trials=1, study_dir=tmp_path / "s", overrides=_overrides(data))
    assert not (tmp_path / "s" / "trial-0").exists()
    with pytest.raises(ConfigError, match="model.cell"):                   # a choice the config refuses
        tune(None, {"model.cell": "choice:gru,nope"}, trials=1, study_dir=tmp_path / "c", overrides=_overrides(data))
    assert not (tmp_path / "c" / "trial-0").exists()


def test_the_command_line_searches_and_says_where_the_best_config_is(data, tmp_path, capsys):
    settings = [a for s in _overrides(data) for a in ("--set", s)]
    assert cli.main(["tune", *settings, "--space", "model.hidden_size=int:4..8", "--trials", "2",
                     "--study-dir", str(tmp_path / "study")]) == 0
    out = capsys.readouterr().out
    assert "2 trials: 2 complete" in out and "best: val_loss" in out and "best.yaml" in out
    assert cli.main(["tune", *settings, "--space", "optim.lr=log:0..1", "--trials", "2",
                     "--study-dir", str(tmp_path / "other")]) == 2
    assert "log needs LOW above 0" in capsys.readouterr().err
