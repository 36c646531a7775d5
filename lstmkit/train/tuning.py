"""Hyper-parameter search with Optuna: ``lstmkit tune`` and :func:`tune`.

Each trial trains the config with some keys drawn from a search space, in a run directory of its
own (``STUDY/trial-N``), and is scored by the task's validation monitor (the figure that picks a
run's best checkpoint: its best epoch). The sampler is TPE, seeded; once five trials have
finished, a trial whose best validation figure so far, past the first fifth of its epochs, is
worse than the median of earlier trials' at that epoch is pruned (Optuna's median rule). The study lives in SQLite (``STUDY/study.db``): a search that was stopped
continues where it was when started again with the same directory (a trial the stop interrupted
is marked failed and drawn again; run one search per directory at a time). The directory also gets ``trials.csv`` (every trial's
parameters, state and figure), ``best.yaml`` (the best trial's whole config: ``lstmkit train
STUDY/best.yaml`` trains it again to the same figure with the same seed) and
``history.png`` (Optuna's optimisation-history plot).

A search space maps config keys to distributions, written as ``KIND:ARGS``:

- ``int:16..128`` (``int:16..128:16`` with a step), ``float:0..0.5``, ``log:1e-4..1e-1`` (a float
  drawn on a log scale), ``choice:lstm,gru,peephole`` (values read as YAML).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback

from ..runs import ConfigError, load_config, registry
from ..runs.config import config_yaml
from .runner import train

__all__ = ["Distribution", "parse_space", "tune", "Search"]


@dataclass(frozen=True)
class Distribution:
    """One key's search range: ``kind`` int, float, log or choice."""

    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()

    @classmethod
    def parse(cls, key: str, text: str) -> Distribution:
        kind, _, args = text.partition(":")
        expected = (f"--space {key}: expected int:LOW..HIGH[:STEP], float:LOW..HIGH, log:LOW..HIGH or "
                    f"choice:A,B,..., got {text!r}")
        if kind == "choice":
            choices = tuple(yaml.safe_load(v) for v in args.split(",") if v.strip())
            if len(choices) < 2:
                raise ConfigError(expected + " (a choice needs two values or more)")
            return cls("choice", choices=choices)
        if kind not in ("int", "float", "log"):
            raise ConfigError(expected)
        bounds, _, step = args.partition(":")
        low, sep, high = bounds.partition("..")
        try:
            low, high = float(low), float(high)
            step = float(step) if step else None
        except ValueError:
            raise ConfigError(expected) from None
        if not sep or not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise ConfigError(expected + " (LOW below HIGH, both finite)")
        if kind == "log" and low <= 0:
            raise ConfigError(expected + " (log needs LOW above 0)")
        if kind == "int" and not (low.is_integer() and high.is_integer() and (step is None or step.is_integer())):
            raise ConfigError(expected + " (whole numbers for int)")
        return cls(kind, low, high, step)

    def suggest(self, trial, key: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(key, int(self.low), int(self.high), step=int(self.step or 1))
        return trial.suggest_float(key, self.low, self.high, log=self.kind == "log", step=self.step)


def parse_space(items: Sequence[str] | Mapping[str, str | Distribution]) -> dict[str, Distribution]:
    """A search space from ``KEY=KIND:ARGS`` strings (the CLI's ``--space``) or a mapping."""
    pairs = items.items() if isinstance(items, Mapping) else []
    if not isinstance(items, Mapping):
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--space: expected KEY=KIND:ARGS such as optim.lr=log:1e-4..1e-1, got {item!r}")
            pairs.append((key.strip(), text.strip()))
    space = {key: d if isinstance(d, Distribution) else Distribution.parse(key, d) for key, d in pairs}
    if not space:
        raise ConfigError("tune: expected at least one --space KEY=KIND:ARGS")
    return space


class _Pruning(Callback):
    """Reports the task's validation monitor to the trial after each epoch, keeps its best, and
    stops the trial when Optuna's pruner says so."""

    def __init__(self, trial, mode: str):
        self.trial, self.mode, self.best = trial, mode, None

    def on_validation_end(self, trainer, module) -> None:
        import optuna
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(module.task.monitor)
        if value is None:
            return
        value = float(value)
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best = value
        self.trial.report(self.best, trainer.current_epoch)        # the best so far: one noisy epoch prunes nothing
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch + 1}: {module.task.monitor} {value:.6g}")


@dataclass
class Search:
    """What :func:`tune` found: the study, the best trial's figure, keys and config, and where
    its files are."""

    study: Any
    monitor: str
    best_value: float
    best_params: dict[str, Any]
    best_config: Any
    directory: Path


def tune(config: str | Path | None, space, *, trials: int, study_dir: str | Path, overrides: Sequence[str] = (),
         seed: int = 0, timeout: float | None = None, quiet: bool = True) -> Search:
    """Search ``space`` (see :func:`parse_space`) around ``config`` (a YAML file, or None for the
    default task's) with ``overrides``, until ``trials`` trials have finished (completed or
    pruned) in ``study_dir``, counting those of an earlier, stopped search, or ``timeout``
    seconds have passed. Returns the :class:`Search`; writes the files the module describes."""
    import optuna
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"tune: argument 'trials' expected a whole number of 1 or more, got {trials!r}")
    space = parse_space(space)
    base = load_config(config, list(overrides))
    for key, distribution in space.items():                 # every key must exist, every choice be valid
        for value in _examples(distribution):
            load_config(config, [*overrides, *_settings({key: value})])
    task = registry.make_task(base)
    directory = Path(study_dir)
    directory.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{directory.resolve() / 'study.db'}")
    study = optuna.create_study(study_name="lstmkit", storage=storage, load_if_exists=True,
                                direction="minimize" if task.mode == "min" else "maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5,
                                                                   n_warmup_steps=max(1, base.optim.epochs // 5)))
    # creating the store runs Alembic's migrations, which leave Lightning's INFO lines showing
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for stopped in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stopped.number, state=optuna.trial.TrialState.FAIL)     # left running by a stopped search

    def objective(trial) -> float:
        chosen = {key: d.suggest(trial, key) for key, d in space.items()}
        trial_config = load_config(config, [*overrides, *_settings(chosen)])
        pruning = _Pruning(trial, task.mode)
        run_dir = directory / f"trial-{trial.number}"
        trial.set_user_attr("run_dir", str(run_dir))
        train(trial_config, run_dir, callbacks=[pruning], quiet=quiet)
        if pruning.best is None:
            raise ValueError(f"trial {trial.number}: no validation figure was logged (does the data have a "
                             "validation split?)")
        return pruning.best

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done < trials:
        study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished)],
                       timeout=timeout, catch=(ValueError,))   # a trial's bad draw (NaN loss...) fails that trial only
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise RuntimeError("tune: no trial completed")
    best = study.best_trial
    best_config = load_config(config, [*overrides, *_settings(best.params)])
    (directory / "best.yaml").write_text(f"# best of {len(study.trials)} trials: {best.value:.6g} "
                                         f"(trial {best.number}, {best.user_attrs.get('run_dir')})\n"
                                         + config_yaml(best_config) + "\n")
    _write_trials(study, space, directory / "trials.csv")
    _plot(study, directory / "history.png")
    return Search(study, task.monitor, best.value, best.params, best_config, directory)


def _settings(values: dict[str, Any]) -> list[str]:
    """``KEY=VALUE`` overrides, each value written as YAML."""
    return [f"{key}={yaml.safe_dump(value).strip().removesuffix('...').strip()}" for key, value in values.items()]


def _examples(distribution: Distribution) -> tuple:
    """Values to check a key with before any trial: every choice, or the range's two ends."""
    if distribution.kind == "choice":
        return distribution.choices
    if distribution.kind == "int":
        return int(distribution.low), int(distribution.high)
    return distribution.low, distribution.high


def _write_trials(study, space: dict, path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["trial", "state", "value", *space, "pruned_at_epoch", "seconds", "run_dir"])
        for t in study.trials:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
            pruned_at = max(t.intermediate_values) + 1 if t.state.name == "PRUNED" and t.intermediate_values else None
            out.writerow([t.number, t.state.name, t.value, *(t.params.get(k) for k in space), pruned_at,
                          None if seconds is None else round(seconds, 1), t.user_attrs.get("run_dir")])


def _plot(study, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # Optuna marks its matplotlib plots experimental
        axes = plot_optimization_history(study)
    axes.figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(axes.figure)
