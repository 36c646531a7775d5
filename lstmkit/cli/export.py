"""``lstmkit export``: a trained run's model as a file another runtime reads (ONNX)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .errors import guarded

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit export", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export a trained run's model with its preprocessing, for runtimes without Python.",
        epilog="examples:\n"
               "  lstmkit export runs/RUN --format onnx model.onnx\n"
               "  python -c \"import onnxruntime as ort; s = ort.InferenceSession('model.onnx'); "
               "print([i.name for i in s.get_inputs()])\"")
    parser.add_argument("run", help="run directory (its final model) or a checkpoint file")
    parser.add_argument("out", type=Path, help="the file to write")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the file format (default: onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        parser.error(f"argument out: {str(args.out)!r} exists; give another file, or --force to overwrite it")

    def run() -> None:
        from ..export import export_run
        model = export_run(args.run, args.out, opset=args.opset)
        inputs = ", ".join(i.name for i in model.graph.input)
        outputs = ", ".join(o.name for o in model.graph.output)
        print(f"wrote {args.out} (ONNX opset {args.opset}): inputs {inputs}; outputs {outputs}")

    return guarded("lstmkit export", run)
