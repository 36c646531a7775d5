"""The subcommands ``lstmkit train``, ``evaluate``, ``predict`` and ``config``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import CheckpointError
from .config import TASKS, ConfigError, config_yaml, default_config, load_config

__all__ = ["train_main", "evaluate_main", "predict_main", "config_main"]

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _fail(prog: str, error: Exception) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def _summary(results: dict) -> str:
    lines = []
    splits = [("valid", results.get("valid")), ("test", results.get("test"))]
    if "refit" in results:
        splits.insert(1, ("test (best before refit)", results["without_refit"]["test"]))
        splits[2] = (f"test (refit, {results['refit']['epochs']} epochs)", splits[2][1])
    for split, r in splits:
        r = r or {}
        if "accuracy" in r:
            line = f"  {split:5s} accuracy {r['accuracy']:.4f} ({r['errors']} errors of {r['n']})"
            baseline = r.get("baseline_tfidf_logreg")
            if split.startswith("test (refit") and "baseline_tfidf_logreg_refit" in r:
                baseline = r["baseline_tfidf_logreg_refit"]             # fitted on train + valid too
            if baseline:
                line += f"; TF-IDF + logistic regression {baseline['accuracy']:.4f}"
                if baseline.get("trained_on") == "train+valid":
                    line += " (refit too)"
            lines.append(line)
        elif "lstmkit" in r:
            lines.append(f"  {split:5s} MASE: lstmkit {r['lstmkit']['mase']:.3f}, seasonal naive "
                         f"{r['seasonal_naive']['mase']:.3f}, ETS {r['ets']['mase']:.3f} ({r['origins']} forecasts "
                         f"of {r['horizon']} steps)")
        elif "top_point" in r:
            where = f", anomaly at {r['anomaly']}, inside: {r['top_point_in_anomaly']}" if "anomaly" in r else ""
            lines.append(f"  {split:5s} top-scoring point {r['top_point']}{where}; {r['flagged_points']} points "
                         f"above the threshold {r['threshold']:.4g}")
    return "\n".join(lines)


def train_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit train", formatter_class=_FORMATTER,
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
    from .runner import train
    try:
        if args.resume:
            if args.config or args.overrides or args.run_dir:
                raise ConfigError("--resume takes the config saved in the run directory; "
                                  "do not give a config, --set or --run-dir with it")
            results = train(None, args.resume, resume=True)
            run_dir = Path(args.resume)
        else:
            config = load_config(args.config, args.overrides)
            from .runner import default_run_dir
            run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
            print(f"run directory: {run_dir}")
            results = train(config, run_dir)
    except (ConfigError, CheckpointError, OSError, ValueError, ImportError) as error:
        return _fail("lstmkit train", error)
    if results:
        print(f"trained {results['epochs_trained']} epochs in {results['train_seconds']} s; "
              f"final model {run_dir / 'checkpoints' / results['checkpoint']}")
        print(_summary(results))
        print(f"metrics: {run_dir / 'metrics.json'}; plots: {run_dir}/*.png")
    return 0


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit evaluate", formatter_class=_FORMATTER,
        description="Metrics and plots of a trained model on a split of its dataset or on a labelled file.",
        epilog="examples:\n"
               "  lstmkit evaluate runs/classify-japanese_vowels-20261123-101500\n"
               "  lstmkit evaluate runs/RUN/checkpoints/last.safetensors --split valid\n"
               "  lstmkit evaluate runs/RUN --data labelled.jsonl   # classify: {\"x\": ..., \"y\": ...} per line\n"
               "Files: JSON lines with labels (classify: x, y; sentiment: text, label); CSV for series\n"
               "(forecast: one column; anomaly: value,label).")
    parser.add_argument("run", help="run directory (its best checkpoint) or a checkpoint file")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split (default test)")
    parser.add_argument("--data", help="a labelled data file instead of a split")
    parser.add_argument("--out", help="where metrics.json and plots go (default RUN/evaluation)")
    args = parser.parse_args(argv)
    from .runner import evaluate
    try:
        results = evaluate(args.run, split=args.split, data=args.data, out_dir=args.out)
    except (CheckpointError, ConfigError, FileNotFoundError, ValueError, ImportError) as error:
        return _fail("lstmkit evaluate", error)
    print(json.dumps({k: v for k, v in results.items() if k != "confusion_matrix"}, indent=2))
    return 0


def predict_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit predict", formatter_class=_FORMATTER,
        description="Predictions of a trained model: JSON lines in, one JSON line out per input.",
        epilog="inputs per task (one JSON object per line):\n"
               "  classify   {\"x\": [[features...] per step]}  -> {\"label\": ..., \"probabilities\": {...}}\n"
               "  sentiment  {\"text\": \"...\"} (or a JSON string)  -> {\"label\": ..., \"probabilities\": {...}}\n"
               "  forecast   {\"history\": [values...], \"start\": step of history[0]}  -> {\"forecast\": [...]}\n"
               "  anomaly    {\"values\": [values...]}  -> {\"scores\": [...], \"anomalies\": [indices]}\n"
               "examples:\n"
               "  lstmkit predict runs/RUN inputs.jsonl > predictions.jsonl\n"
               "  echo '{\"text\": \"a triumph\"}' | lstmkit predict runs/RUN -")
    parser.add_argument("run", help="run directory (its best checkpoint) or a checkpoint file")
    parser.add_argument("input", nargs="?", default="-", help="JSON-lines file, or - for stdin (default)")
    args = parser.parse_args(argv)
    from .runner import load_run
    from .tasks.classify import read_jsonl
    try:
        task, meta, model, _ = load_run(args.run)          # a bad checkpoint fails before any input is read
        if args.input == "-":
            records = [json.loads(line) for line in sys.stdin if line.strip()]
        else:
            records = read_jsonl(Path(args.input), "input")
        for out in task.predict(model, meta, records):
            print(json.dumps(out))
    except json.JSONDecodeError as error:
        return _fail("lstmkit predict", ValueError(f"stdin is not JSON lines ({error})"))
    except (CheckpointError, ConfigError, FileNotFoundError, ValueError, ImportError) as error:
        return _fail("lstmkit predict", error)
    return 0


def config_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit config", formatter_class=_FORMATTER,
        description="Print a task's complete default config, every key commented.",
        epilog="examples:\n  lstmkit config forecast > my_forecast.yaml\n  lstmkit train my_forecast.yaml")
    parser.add_argument("task", nargs="?", default="classify", choices=TASKS, help="task (default classify)")
    args = parser.parse_args(argv)
    print(config_yaml(default_config(args.task)))
    return 0
