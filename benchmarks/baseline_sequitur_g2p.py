"""The joint-sequence n-gram G2P of Bisani & Ney 2008 (``sequitur-g2p`` on PyPI) on the seq2seq
task's CMUdict split, scored by the task's own word and phoneme error rates: order 1 is trained,
then each higher order is ramped up from the one below, every model applied to the test words,
until ``--max-order`` or until ``--hours`` of training have passed (the issue's budget is two).

sequitur-g2p is GPL and has a binary wheel for CPython 3.11 only, so it is not a dependency of
lstmkit: install it into any 3.11 environment and name that interpreter with ``--python``::

    python3.11 -m venv /tmp/sequitur && /tmp/sequitur/bin/pip install sequitur-g2p==1.0.1668.30
    python benchmarks/baseline_sequitur_g2p.py --python /tmp/sequitur/bin/python --out /tmp/sequitur-run

The PyPI wheel (1.0.1668.30) fails during training with ``'SwigPyObject' object has no attribute
'thisown'``: each object it marks ``thisown`` takes a reference from SWIG's shared type capsule
when freed, until the capsule dies (fixed upstream in sequitur-g2p PRs #111 and #112, after that
wheel). The runner below pins the capsule with enough references to outlive a training run; the
models are unchanged.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from lstmkit.data.cmudict import cmudict_split, load_cmudict
from lstmkit.tasks.sequence_metrics import pronunciation_errors

RUNNER = """\
import runpy, shutil, sys
import sequitur
pins = [sys.modules["swig_runtime_data4"].type_pointer_capsule] * 100_000_000
script = shutil.which("g2p.py", path=sys.argv.pop(1))
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")
"""


def write_lexicons(out: Path, stress: bool) -> dict[str, list[str]]:
    """train.lex and valid.lex (a line per pronunciation: word, tab, phonemes) and test.words."""
    lexicon, split = load_cmudict(stress), cmudict_split(ordered=True)
    for name in ("train", "valid"):
        (out / f"{name}.lex").write_text("".join(f"{w}\t{' '.join(p)}\n" for w in split[name] for p in lexicon[w]))
    (out / "test.words").write_text("".join(f"{w}\n" for w in split["test"]))
    return {w: lexicon[w] for w in split["test"]}


def g2p(python: str, out: Path, log: str, *args: str) -> tuple[float, float]:
    """Run g2p.py with ``args`` in ``out``; its stderr goes to ``log``. Returns its wall and CPU
    seconds (CPU: what it took of the machine, whatever else shared the cores)."""
    scripts = str(Path(python).parent)
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out / log, "w") as err:
        done = subprocess.run([python, "-c", RUNNER, scripts, *args], cwd=out, stderr=err,
                              stdout=subprocess.PIPE if "--apply" in args else subprocess.DEVNULL, text=True)
    if done.returncode != 0:
        sys.exit(f"g2p.py {' '.join(args)} failed (exit {done.returncode}); see {out / log}")
    if "--apply" in args:
        (out / log.replace(".log", ".out")).write_text(done.stdout)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime


def score(out: Path, order: int, test: dict[str, list[list[str]]]) -> dict:
    """Errors of the order's test output; a word sequitur could not convert counts as empty."""
    guesses = {}
    for line in (out / f"apply-{order}.out").read_text().splitlines():
        word, _, phonemes = line.partition("\t")
        guesses[word] = phonemes.split()
    return pronunciation_errors(list(test.values()), [guesses.get(w, []) for w in test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="an interpreter with sequitur-g2p installed")
    parser.add_argument("--out", type=Path, required=True, help="working directory (lexicons, models, logs)")
    parser.add_argument("--max-order", type=int, default=6)
    parser.add_argument("--hours", type=float, default=2.0,
                        help="no new order is started after this many CPU hours of training")
    parser.add_argument("--stress", action="store_true", help="keep the vowels' stress digits")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    test = write_lexicons(args.out, args.stress)
    print(f"{len(test)} test words; training on train.lex, held out valid.lex (the task's split)", flush=True)
    print("| order | training CPU s (cumulative) | training wall s | test WER | test PER | apply CPU s |\n"
          "|---|---|---|---|---|---|", flush=True)
    trained = 0.0
    for order in range(1, args.max_order + 1):
        start = ["--train", "train.lex"] if order == 1 else ["--model", f"model-{order - 1}", "--ramp-up",
                                                             "--train", "train.lex"]
        wall, cpu = g2p(args.python, args.out, f"train-{order}.log", *start, "--devel", "valid.lex",
                        "--write-model", f"model-{order}")
        trained += cpu
        _, applied = g2p(args.python, args.out, f"apply-{order}.log", "--model", f"model-{order}",
                      "--apply", "test.words")
        errors = score(args.out, order, test)
        print(f"| {order} | {trained:,.0f} | {wall:,.0f} | {errors['wer']:.2%} | {errors['per']:.2%} | "
              f"{applied:,.0f} |", flush=True)
        if trained > args.hours * 3600:
            print(f"stopped: {trained / 3600:.2f} CPU hours of training passed the budget of {args.hours} h",
                  flush=True)
            break


if __name__ == "__main__":
    main()
