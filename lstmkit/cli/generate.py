"""``lstmkit generate``: text from a trained language model, streamed to stdout as it is produced."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .arguments import non_negative_int, positive_int
from .errors import guarded

__all__ = ["main"]


def _temperature(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0 (0: the most probable token), got {value}")
    return number


def _probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1], got {value!r}") from None
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1], got {value}")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmkit generate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Text from a trained language model (a run of the language_model task), printed token by "
                    "token as it is produced. The prompt is read once; each new token is one recurrent step.",
        epilog="examples:\n"
               "  lstmkit generate runs/RUN --prompt 'the company said' --max-tokens 40 --top-p 0.9 --seed 1\n"
               "  lstmkit generate runs/RUN --temperature 0          # the most probable token at every step\n"
               "  lstmkit generate runs/RUN --prompt 'the' --beam 5   # the most probable sentence (beam search)\n"
               "words the vocabulary lacks are read as <unk> (said on stderr); <eos> prints as a new line")
    parser.add_argument("run", help="run directory (its best checkpoint) or a checkpoint file")
    parser.add_argument("--prompt", default="", help="text to continue (default: the start of a sentence)")
    parser.add_argument("--max-tokens", type=positive_int, default=50, help="tokens to generate (default 50)")
    parser.add_argument("--temperature", type=_temperature,
                        help="sampling temperature, 0 for the most probable token (default 1)")
    parser.add_argument("--top-k", type=positive_int, help="sample among the k most probable tokens only")
    parser.add_argument("--top-p", type=_probability, help="sample among the most probable tokens whose "
                                                           "probabilities sum to p (nucleus sampling)")
    parser.add_argument("--beam", type=positive_int, help="beam search for the most probable continuation of the "
                                                          "sentence instead of sampling")
    parser.add_argument("--n-best", type=positive_int, default=1, help="with --beam: print the n best, one per line "
                                                                       "with its log-probability")
    parser.add_argument("--seed", type=non_negative_int, help="seed of the sampling (the same seed, the same text)")
    args = parser.parse_args(argv)
    if args.beam is None and args.n_best != 1:
        parser.error("--n-best needs --beam")
    if args.beam is not None and args.n_best > args.beam:
        parser.error(f"--n-best {args.n_best} needs --beam of at least {args.n_best}, got {args.beam}")
    sampling = [flag for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k),
                                         ("--top-p", args.top_p), ("--seed", args.seed)) if value is not None]
    if args.beam is not None and sampling:
        parser.error(f"--beam searches for the most probable text and samples nothing: it takes no "
                     f"{', '.join(sampling)}")

    def run() -> None:
        from ..data.text import EOS
        from ..runs import load_run
        generator = load_run(args.run).generator()
        unknown = generator.unknown(args.prompt)
        if unknown:
            print(f"lstmkit generate: note: the vocabulary lacks {unknown[:10]}{'...' if len(unknown) > 10 else ''}"
                  ", read as <unk>", file=sys.stderr)
        if args.prompt:
            print(args.prompt, end="", flush=True)
        separator = generator.separator
        if args.beam is not None:
            found = generator.beam(args.prompt, beam=args.beam, max_tokens=args.max_tokens)
            for k, (tokens, score) in enumerate(found[:args.n_best]):
                words = separator.join(t for t in tokens if t != EOS)
                lead = args.prompt if k else ""
                tail = f"\t{score:.4f}" if args.n_best > 1 else ""
                print(f"{lead}{separator if args.prompt else ''}{words}{tail}", flush=True)
            return
        temperature = 1.0 if args.temperature is None else args.temperature
        for piece in generator.pieces(args.prompt, max_tokens=args.max_tokens, temperature=temperature,
                                      top_k=args.top_k, top_p=args.top_p, seed=args.seed):
            print(piece.text, end="", flush=True)                # <eos> is a new line
        print(flush=True)

    return guarded("lstmkit generate", run)
