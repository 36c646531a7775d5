"""The ``lstmkit`` command (also ``python -m lstmkit``): one module per subcommand.

    lstmkit train [CONFIG] [--set k=v] [--resume RUN]   train from a YAML config (default: JapaneseVowels)
    lstmkit tune [CONFIG] --space K=DIST --trials N    a hyper-parameter search (Optuna), resumable
    lstmkit evaluate RUN [--split|--data]               metrics and plots of a trained model
    lstmkit predict RUN [INPUT]                          predictions, JSON lines in and out
    lstmkit generate RUN [--prompt TEXT] [--top-p P]     text from a language model, streamed
    lstmkit serve RUN [RUN ...] [--port P]              trained runs behind HTTP (bearer token, metrics)
    lstmkit export RUN OUT [--format onnx]               a trained model as an ONNX file, preprocessing included
    lstmkit config [TASK]                                a task's default config, commented
    lstmkit demo [--steps N ...]                         the quickstart demo: forward vs bidirectional LSTM
    lstmkit bench [--cells ...]                          the engine benchmark against torch.nn.LSTM/GRU/RNN
    lstmkit reproduce [TASK...] [--mode] [--quick]       the 1997 experiments beside the paper's tables
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "train": ("lstmkit.cli.train", "main", "train a model from a config (default: JapaneseVowels)"),
    "tune": ("lstmkit.cli.tune", "main", "search a config's hyper-parameters with Optuna"),
    "evaluate": ("lstmkit.cli.evaluate", "main", "metrics and plots of a trained model"),
    "predict": ("lstmkit.cli.predict", "main", "predictions of a trained model (JSON lines)"),
    "generate": ("lstmkit.cli.generate", "main", "text from a trained language model, streamed as it is produced"),
    "serve": ("lstmkit.cli.serve", "main", "serve trained runs over HTTP: predictions and streaming sessions"),
    "export": ("lstmkit.cli.export", "main", "a trained model as a file for other runtimes (ONNX)"),
    "config": ("lstmkit.cli.config", "main", "print a task's default config, commented"),
    "demo": ("lstmkit.demo", "main", "train the quickstart demo (forward vs bidirectional LSTM)"),
    "bench": ("lstmkit.bench", "main", "time every cell's engine against torch.nn.LSTM/GRU/RNN"),
    "reproduce": ("lstmkit.reproduce.cli", "main", "the 1997 experiments, paper and modern mode, as a report"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lstmkit", description="lstmkit: the LSTM family of recurrent networks.",
        epilog="Run `lstmkit COMMAND --help` for a command's options and examples, e.g. `lstmkit train --help`.")
    parser.add_argument("command", choices=list(COMMANDS), help="; ".join(f"{k}: {v[2]}" for k, v in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    module_name, function, _ = COMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        print(f"lstmkit {args.command}: needs the extras ({error.name} is missing): "
              "pip install 'lstmkit[train,data,reproduce,serve,export]'", file=sys.stderr)
        return 2
    result = getattr(module, function)(argv[1:])
    return result if isinstance(result, int) else 0
