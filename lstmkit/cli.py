"""The ``lstmkit`` command (also ``python -m lstmkit``).

    lstmkit demo [--steps N ...]      the quickstart demo: forward vs bidirectional LSTM
    lstmkit bench [--cells ...]       the engine benchmark against torch.nn.LSTM/GRU/RNN
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

COMMANDS = {
    "demo": ("lstmkit.demo", "train the quickstart demo (forward vs bidirectional LSTM)"),
    "bench": ("lstmkit.bench", "time every cell's engine against torch.nn.LSTM/GRU/RNN"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lstmkit", description="lstmkit: the LSTM family of recurrent networks.",
        epilog="Run `lstmkit COMMAND --help` for a command's options, e.g. `lstmkit bench --help`.")
    parser.add_argument("command", choices=sorted(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    import importlib
    module = importlib.import_module(COMMANDS[args.command][0])
    result = module.main(argv[1:])
    return result if isinstance(result, int) else 0
