"""``lstmkit tune``: a hyper-parameter search with Optuna (see :mod:`lstmkit.train.tuning`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .errors import guarded

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit tune", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search hyper-parameters of a config with Optuna (TPE, median pruning on the validation "
                    "figure per epoch, a SQLite study that a second start continues).",
        epilog="examples:\n"
               "  lstmkit tune configs/forecast_sunspots.yaml --trials 20 --study-dir runs/tune-sunspots \\\n"
               "      --space model.hidden_size=int:16..128 --space optim.lr=log:1e-4..3e-2 \\\n"
               "      --space model.cell=choice:lstm,gru\n"
               "distributions: int:LOW..HIGH[:STEP], float:LOW..HIGH, log:LOW..HIGH, choice:A,B,...\n"
               "The study directory gets study.db, trial-N/ (a run directory each), trials.csv, best.yaml\n"
               "(`lstmkit train STUDY/best.yaml` trains the best trial again) and history.png.")
    parser.add_argument("config", nargs="?", help="YAML config file (default: the built-in classify config)")
    parser.add_argument("--space", action="append", default=[], metavar="KEY=KIND:ARGS", required=True,
                        help="a config key and its distribution, e.g. optim.lr=log:1e-4..1e-1 (repeatable)")
    parser.add_argument("--trials", type=int, default=20, help="trials to finish, counting earlier ones (default 20)")
    parser.add_argument("--study-dir", required=True, help="where the study and its trials' runs are kept")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every trial, e.g. --set optim.epochs=20")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    args = parser.parse_args(argv)

    def run() -> None:
        from ..train.tuning import tune
        search = tune(args.config, args.space, trials=args.trials, study_dir=args.study_dir, overrides=args.overrides,
                      seed=args.seed, timeout=args.timeout)
        states = [t.state.name for t in search.study.trials]
        print(f"{len(states)} trials: {states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
              f"{states.count('FAIL')} failed")
        print(f"best: {search.monitor} {search.best_value:.6g} with "
              + ", ".join(f"{k}={v}" for k, v in search.best_params.items()))
        print(f"config: {search.directory / 'best.yaml'}; trials: {search.directory / 'trials.csv'}; "
              f"plot: {search.directory / 'history.png'}")

    return guarded("lstmkit tune", run)
