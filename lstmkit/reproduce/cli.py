"""``lstmkit reproduce``: the 1997 experiments, paper mode and modern mode, and the report."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .. import cells
from .experiments import EXPERIMENTS
from .formal_languages import CELLS as FORMAL_CELLS
from .modern import MODERN_CELLS, modern_rows
from .runner import ModernLearner, PaperLearner, run_trial, summarize

__all__ = ["main"]

QUICK = {"trials": 1, "paper_budget": 60_000, "modern_budget": 20_000, "tasks": ("3", "6")}
EXAMPLES = """examples:
  lstmkit reproduce --quick                      a few-minute subset (what the tests run)
  lstmkit reproduce                              every experiment, paper and modern mode, default trials
  lstmkit reproduce 3 4 --mode paper --trials 3  Exps. 3 and 4 in paper mode, 3 trials per row
  lstmkit reproduce 3a-T100-N3 --mode modern --cells lstm elman
  lstmkit reproduce gradient-flow                the vanishing-gradient experiment alone
  lstmkit reproduce formal-languages --cells lstm slstm mlstm mingru elman
                                                 the xLSTM paper's formal languages (only when named)
  lstmkit reproduce 2c --mode paper --init-range 0.02
                                                 Exp. 2c with weights 10x smaller than the paper's
"""


def _parser() -> argparse.ArgumentParser:
    names = list(EXPERIMENTS) + ["guess", "gradient-flow", "formal-languages"]
    parser = argparse.ArgumentParser(
        prog="lstmkit reproduce", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Run the experiments of Hochreiter & Schmidhuber (1997) and write report.md, results.json "
                    "and plots, our figures beside the paper's.")
    parser.add_argument("tasks", nargs="*", metavar="TASK",
                        help=f"experiments ({', '.join(names)}) or table rows (e.g. 3a-T100-N3); default: all")
    parser.add_argument("--mode", choices=("paper", "modern", "both"), default="both")
    parser.add_argument("--trials", type=int, help="trials per row (default: the paper's count; modern: 3)")
    parser.add_argument("--cells", nargs="+", choices=cells.names(), metavar="CELL",
                        help=f"cells for modern mode, from the registry (default: {' '.join(MODERN_CELLS)}; "
                             f"formal-languages: {' '.join(FORMAL_CELLS)})")
    parser.add_argument("--steps", type=int, help="formal-languages: training steps of 64 strings per cell and task "
                        "(default 4,000; --quick: 300)")
    parser.add_argument("--long", action="store_true", help="also run the rows that take hours in paper mode")
    parser.add_argument("--quick", action="store_true", help="a few-minute subset: 1 trial, small budgets")
    parser.add_argument("--budget", type=int, help="training sequences per trial before it counts as failed "
                        "(default: each row's own: paper mode 10x the paper's mean, 200,000 for Exps. 1, 2a "
                        "and 2b; modern mode 100,000, more for 2b and 5)")
    parser.add_argument("--init-range", type=float, metavar="R",
                        help="paper mode: draw every weight but the fixed gate biases from U[-R, R] instead of "
                             "the paper's range (a deviation the report states)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="paper-mode trials run at once (threads)")
    parser.add_argument("--out", type=Path, default=Path("reproduce"), help="output directory (default: ./reproduce)")
    return parser


def _selected(tasks: list[str]) -> tuple[set[str], bool, bool]:
    rows = {r.key for e in EXPERIMENTS.values() for r in e.rows}
    known = set(EXPERIMENTS) | rows | {"guess", "gradient-flow", "formal-languages"}
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise SystemExit(f"lstmkit reproduce: argument TASK expected one of {sorted(set(EXPERIMENTS))}, a row "
                         f"such as 3a-T100-N3, 'guess', 'gradient-flow' or 'formal-languages', got {unknown[0]!r}")
    chosen = set(tasks) - {"guess", "gradient-flow", "formal-languages"}
    if not tasks:
        return set(EXPERIMENTS), True, True
    return chosen, "guess" in tasks, "gradient-flow" in tasks


def _progress(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="seq", unit_scale=True, dynamic_ncols=True, leave=False,
                disable=not sys.stderr.isatty())


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported when a plot is drawn)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_curves(path: Path, title: str, trials) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in trials:
        if r.curve:
            seen, sse = zip(*r.curve)
            ax.plot(seen, np.maximum(sse, 1e-8), lw=0.8, alpha=0.8)
    ax.set(yscale="log", xlabel="training sequences", ylabel="mean ½·SSE per sequence", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _records(trials) -> list[dict]:
    """The trials for results.json, each learning curve thinned to about 200 points."""
    return [dataclasses.asdict(r) | {"curve": r.curve[::max(1, len(r.curve) // 200)]} for r in trials]


def _run_paper(chosen, args, out: Path) -> dict:
    results = {}
    for exp in EXPERIMENTS.values():
        rows = [r for r in exp.rows if (exp.name in chosen or r.key in chosen) and (args.long or not r.long
                                                                                   or r.key in chosen)]
        for row in rows:
            trials = args.trials or (QUICK["trials"] if args.quick else row.trials)
            budget = args.budget or (min(row.budget, QUICK["paper_budget"]) if args.quick else row.budget)
            bar = _progress(trials * budget, f"paper {row.key}")
            with ThreadPoolExecutor(max(1, args.workers)) as pool:
                done = list(pool.map(lambda t: run_trial(
                    exp, row, t, seed=args.seed, budget=budget, on_progress=bar.update,
                    learner=PaperLearner(exp, row, args.seed, t, init_range=args.init_range)), range(trials)))
            bar.close()
            summary = summarize(done)
            results[row.key] = {"summary": summary, "budget": budget, "trials": _records(done)}
            _plot_curves(out / f"curves-{row.key}-paper.png", f"{row.key}, paper mode", done)
            print(f"paper  {row.key:<16} success {summary['success']:5.1f}%  sequences {summary['after']}  "
                  f"(paper {row.paper.get('after')})  {summary['seconds']:.0f} s", flush=True)
    return results


def _run_modern(chosen, args, out: Path) -> dict:
    results = {}
    for name, row, spec in modern_rows(chosen):
        exp = EXPERIMENTS[name]
        results[row.key] = {}
        for cell in args.cells or MODERN_CELLS:
            cspec = dataclasses.replace(spec, cell=cell)
            trials = args.trials or (QUICK["trials"] if args.quick else 3)
            budget = args.budget or (QUICK["modern_budget"] if args.quick else cspec.budget)
            bar = _progress(trials * budget, f"modern {row.key} {cell}")
            learners = [ModernLearner(cspec, row.net.inputs, row.net.outputs, args.seed, t) for t in range(trials)]
            done = [run_trial(exp, row, t, seed=args.seed, budget=budget, chunk=cspec.batch, on_progress=bar.update,
                              learner=learner) for t, learner in enumerate(learners)]
            bar.close()
            summary = summarize(done)
            results[row.key][cell] = {"summary": summary, "hidden": cspec.hidden, "lr": cspec.lr,
                                      "init": learners[0].init, "budget": budget,
                                      "trials": _records(done)}
            if cell == "lstm":
                _plot_curves(out / f"curves-{row.key}-modern-lstm.png", f"{row.key}, modern mode, lstm", done)
            print(f"modern {row.key:<16} {cell:<9} success {summary['success']:5.1f}%  sequences {summary['after']}  "
                  f"{summary['seconds']:.0f} s", flush=True)
    return results


def _run_guess(args) -> dict:
    from .guessing import guess
    row = EXPERIMENTS["3"].rows[0]
    trials = args.trials or (QUICK["trials"] if args.quick else 10)
    runs = [guess(row, seed=args.seed, trial=t) for t in range(trials)]
    solved = [g for g in runs if g["success"]]
    out = {"scale": 10.0, "trials": trials, "solved": len(solved),
           "guesses": float(np.mean([g["guesses"] for g in solved])) if solved else None}
    if solved:
        out["misclassified"] = float(np.mean([g["test"]["misclassified"] for g in solved]))
    print(f"guess  {row.key:<16} solved {len(solved)}/{trials}, guesses {out['guesses']}", flush=True)
    return {row.key: out}


def _run_flow(args, out: Path) -> list[dict]:
    from .gradient_flow import MODELS, gradient_flow
    T, batch = (50, 32) if args.quick else (200, 256)
    results = [gradient_flow(m, T=T, batch=batch, seed=args.seed) | {"T": T} for m in MODELS]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        g = np.asarray(r["g_c"] if r["model"].startswith("lstm1997 trunc") else r["g_h"])
        k = np.arange(len(g))
        ok = g > 0
        ax.plot(k[ok], g[ok], label=r["model"] + (" (∂L/∂s)" if r["model"].startswith("lstm1997 trunc") else ""))
    ax.set(yscale="log", xlabel="lag k", ylabel="mean ‖∂L/∂h_{T−k}‖", title="Gradient flow at initialisation")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "gradient_flow.png", dpi=90)
    plt.close(fig)
    print("gradient-flow  " + ", ".join(f"{r['model']}: {r['factor_h'] or r.get('factor_c')}" for r in results[:3])
          + " ...", flush=True)
    return results


def _run_formal(args) -> list[dict]:
    from .formal_languages import TASKS, train_and_test
    steps = args.steps or (300 if args.quick else 4000)
    results = []
    for task in TASKS.values():
        for cell in args.cells or FORMAL_CELLS:
            for trial in range(args.trials or 1):
                r = train_and_test(task, cell, steps=steps, seed=args.seed + trial)
                results.append(r)
                print(f"formal {task.name:<19} {cell:<8} test score {r['test_score']:6.3f}  (accuracy "
                      f"{r['train_accuracy']:.3f} at lengths 3-40, {r['test_accuracy']:.3f} at 40-256)  "
                      f"{r['seconds']:.0f} s", flush=True)
    return results


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"lstmkit reproduce: argument --steps expected a positive int, got {args.steps}")
    if args.trials is not None and args.trials < 1:
        raise SystemExit(f"lstmkit reproduce: argument --trials expected a positive int, got {args.trials}")
    if args.init_range is not None and not 0 < args.init_range < float("inf"):
        raise SystemExit(f"lstmkit reproduce: argument --init-range expected a positive finite number, "
                         f"got {args.init_range}")
    chosen, do_guess, do_flow = _selected(args.tasks)
    if args.quick and not args.tasks:
        chosen, do_guess, do_flow = set(QUICK["tasks"]), True, True
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {"command": "lstmkit reproduce " + shlex.join(argv if argv is not None else sys.argv[2:]),
               "seed": args.seed, "init_range": args.init_range}
    if chosen and args.mode in ("paper", "both"):
        results["paper"] = _run_paper(chosen, args, args.out)
    if chosen and args.mode in ("modern", "both"):
        results["modern"] = _run_modern(chosen, args, args.out)
    if do_guess:
        results["guess"] = _run_guess(args)
    if do_flow:
        results["gradient_flow"] = _run_flow(args, args.out)
    if "formal-languages" in args.tasks:
        results["formal_languages"] = _run_formal(args)
    results["seconds"] = time.perf_counter() - start
    header = [f"Command: `{results['command']}` (seed {args.seed}); {results['seconds'] / 60:.1f} min on "
              f"{platform.machine()} with {torch.get_num_threads()} torch threads, {time.strftime('%Y-%m-%d')}."]
    if chosen or do_guess or do_flow:
        header += ["", "Spec: `docs/classic_tasks.md` §2; every row's network has the paper's number of weights."]
    from .report import write_report
    write_report(args.out, results, EXPERIMENTS, header)
    print(f"wrote {args.out / 'report.md'} and {args.out / 'results.json'} ({results['seconds']:.0f} s)")
    return 0
