"""``lstmkit predict``: predictions of a trained model, JSON lines in and out."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import guarded

__all__ = ["main"]

_RECORD = re.compile(r"predict: input record (\d+)")


def _on_line(message: str, lines: list[int], where: str) -> str:
    """A task's error about record ``i`` (counted from 0 over the records) as one about the line
    of the input that holds it (counted from 1, blank lines included)."""
    found = _RECORD.match(message)
    if found is None or int(found[1]) >= len(lines):
        return message
    return f"predict: {where} line {lines[int(found[1])]}{message[found.end():]}"


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
        from ..data.readers import decode_utf8, numbered_jsonl, read_numbered_jsonl
        from ..runs import ConfigError, json_output, load_run
        decode = [f"beam={args.beam}"] * (args.beam is not None) + [f"n_best={args.n_best}"] * (args.n_best is not None)
        for item in args.decode:
            if not item.startswith("decode."):
                raise ConfigError(f"--set {item}: expected a decoding setting (decode.KEY=VALUE); a trained run's "
                                  "other settings are fixed")
            decode.append(item.removeprefix("decode."))
        run = load_run(args.run, decode=decode)     # a bad checkpoint fails before any input is read
        if args.input == "-":
            where = "stdin"
            numbered = numbered_jsonl(decode_utf8(sys.stdin.buffer.read(), where).splitlines(), where)
        else:
            where = f"input {args.input!r}"
            numbered = read_numbered_jsonl(Path(args.input), "input")
        try:
            outputs = run.predict([record for _, record in numbered])
        except ValueError as error:
            raise ValueError(_on_line(str(error), [line for line, _ in numbered], where)) from None
        for out in outputs:
            print(json_output.dumps(out))

    return guarded("lstmkit predict", run)
