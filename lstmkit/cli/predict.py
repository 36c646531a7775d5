"""``lstmkit predict``: predictions of a trained model, JSON lines in and out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import guarded

__all__ = ["main"]


def _schemas() -> str:
    from ..runs import registry
    lines = []
    for name in registry.names():
        task = registry.get(name)
        outputs = ", ".join(task.predict_output.model_fields)
        lines.append(f"  {name:10s} {task.predict_input.EXAMPLE}  -> {{{outputs}}}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predictions of a trained model: JSON lines in, one JSON line out per input.",
        epilog="inputs per task (one JSON object per line) -> output fields:\n" + _schemas() + "\n"
               "examples:\n"
               "  lstmkit predict runs/RUN inputs.jsonl > predictions.jsonl\n"
               "  echo '{\"text\": \"a triumph\"}' | lstmkit predict runs/RUN -\n"
               "  lstmkit predict runs/RUN words.jsonl --beam 5 --n-best 3      # seq2seq and ctc runs")
    parser.add_argument("run", help="run directory (its best checkpoint) or a checkpoint file")
    parser.add_argument("input", nargs="?", default="-", help="JSON-lines file, or - for stdin (default)")
    parser.add_argument("--beam", type=int, metavar="N", help="beam width (seq2seq, ctc; default: the run's own)")
    parser.add_argument("--n-best", type=int, metavar="K", help="hypotheses returned per input (at most the beam)")
    parser.add_argument("--set", dest="decode", action="append", default=[], metavar="decode.KEY=VALUE",
                        help="another decoding setting of the run's config, e.g. --set decode.max_length=40")
    args = parser.parse_args(argv)

    def run() -> None:
        from ..data.readers import parse_jsonl, read_jsonl
        from ..runs import ConfigError, json_output, load_run
        decode = [f"beam={args.beam}"] * (args.beam is not None) + [f"n_best={args.n_best}"] * (args.n_best is not None)
        for item in args.decode:
            if not item.startswith("decode."):
                raise ConfigError(f"--set {item}: expected a decoding setting (decode.KEY=VALUE); a trained run's "
                                  "other settings are fixed")
            decode.append(item.removeprefix("decode."))
        run = load_run(args.run, decode=decode)     # a bad checkpoint fails before any input is read
        records = parse_jsonl(sys.stdin, "stdin") if args.input == "-" else read_jsonl(Path(args.input), "input")
        for out in run.predict(records):
            print(json_output.dumps(out))

    return guarded("lstmkit predict", run)
