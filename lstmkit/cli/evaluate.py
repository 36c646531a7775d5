"""``lstmkit evaluate``: metrics and plots of a trained model on a split or a labelled file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .errors import guarded

__all__ = ["main"]


def _formats() -> str:
    from ..runs import registry
    return "\n".join(f"  {name:10s} {registry.get(name).formats}" for name in registry.names())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit evaluate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Metrics and plots of a trained model on a split of its dataset or on a labelled file.",
        epilog="examples:\n"
               "  lstmkit evaluate runs/classify-japanese_vowels-20261123-101500\n"
               "  lstmkit evaluate runs/RUN/checkpoints/last.safetensors --split valid\n"
               "  lstmkit evaluate runs/RUN --data labelled.jsonl   # classify: {\"x\": ..., \"y\": ...} per line\n"
               "files per task:\n" + _formats())
    parser.add_argument("run", help="run directory (its best checkpoint) or a checkpoint file")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split (default test)")
    parser.add_argument("--data", help="a labelled data file instead of a split")
    parser.add_argument("--out", help="where metrics.json and plots go (default RUN/evaluation)")
    args = parser.parse_args(argv)

    def run() -> None:
        from ..runs import evaluate, json_output
        results = evaluate(args.run, split=args.split, data=args.data, out_dir=args.out)
        print(json_output.dumps({k: v for k, v in results.items() if k != "confusion_matrix"}, indent=2))

    return guarded("lstmkit evaluate", run)
