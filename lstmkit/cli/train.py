"""``lstmkit train``: train a task model from a YAML config, or resume an interrupted run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import guarded

__all__ = ["main", "summary"]


def summary(task, results: dict) -> str:
    """The CLI's lines for a run's ``results``: validation, test (and with refit, test before and
    after it), each in the words of ``task`` (a registered :class:`~lstmkit.runs.task.Task`)."""
    splits = [("valid", results.get("valid"), False), ("test", results.get("test"), False)]
    if "refit" in results and "test" in results:
        splits[1:] = [("test (best before refit)", results["without_refit"]["test"], False),
                      (f"test (refit, {results['refit']['epochs']} epochs)", results["test"], True)]
    return "\n".join(task.summary(split, r, refit=refit) for split, r, refit in splits if r)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model from a YAML config (none: the JapaneseVowels classifier).",
        epilog="examples:\n"
               "  lstmkit train                                   # the default: JapaneseVowels, BiGRU\n"
               "  lstmkit train configs/forecast_taylor.yaml\n"
               "  lstmkit train configs/sentiment_rotten_tomatoes.yaml --set model.cell=gru --set optim.epochs=4\n"
               "  lstmkit train --resume runs/classify-japanese_vowels-20261123-101500\n"
               "Start a config from `lstmkit config TASK`. The run directory gets config.yaml, checkpoints/\n"
               "(last, best, interrupted; final with optim.refit), logs/, learning_curves.png, metrics.json\n"
               "and the task's plots.")
    parser.add_argument("config", nargs="?", help="YAML config file (default: the built-in classify config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (dotted, value in YAML), e.g. --set model.hidden_size=128")
    parser.add_argument("--run-dir", help="where the run is written (default: runs/TASK-DATASET-TIME)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    args = parser.parse_args(argv)

    def run() -> None:
        from ..runs import ConfigError, load_config, registry
        from ..train.runner import default_run_dir, train
        if args.resume:
            if args.config or args.overrides or args.run_dir:
                raise ConfigError("--resume takes the config saved in the run directory; "
                                  "do not give a config, --set or --run-dir with it")
            results = train(None, args.resume, resume=True)
            run_dir = Path(args.resume)
        else:
            config = load_config(args.config, args.overrides)
            run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
            print(f"run directory: {run_dir}")
            results = train(config, run_dir)
        if results:
            print(f"trained {results['epochs_trained']} epochs in {results['train_seconds']} s; "
                  f"final model {run_dir / 'checkpoints' / results['checkpoint']}")
            print(summary(registry.get(results["task"]), results))
            print(f"metrics: {run_dir / 'metrics.json'}; plots: {run_dir}/*.png")

    try:
        return guarded("lstmkit train", run)
    except KeyboardInterrupt as stop:      # runner.Interrupted names the checkpoint written and how to resume
        print(f"lstmkit train: {stop or 'interrupted before training began'}", file=sys.stderr)
        return getattr(stop, "exit_status", 130)
    except RuntimeError as error:
        if type(error).__name__ != "RankFailed":        # anything else is a bug: its traceback stays
            raise
        print(f"lstmkit train: error: {error}", file=sys.stderr)
        return 1
