"""``report.md`` and ``results.json`` of a reproduction run (the CLI draws the plots it links)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_report"]

_FIGURES = {"misclassified": "misclassified (fraction of 2,560)", "mean_abs_diff": "mean |out − clean target|",
            "wrong": "wrong / 2,560", "mse": "test MSE"}


def _n(v, digits: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and digits:
        return f"{v:.{digits}g}"
    return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)


def _after(s: dict) -> str:
    if s.get("after") is None:
        return "–"
    return f"{_n(s['after'])} [{_n(s['after_min'])}–{_n(s['after_max'])}]"


def verdict(ours: dict, paper: dict) -> str:
    """Solved at least as often as the paper (on the paper's criterion), and how fast."""
    if ours["success"] < paper.get("success", 100):
        return "**not reproduced**" if ours["success"] == 0 else "**less often**"
    if paper.get("after") and ours.get("after") is not None:
        ratio = ours["after"] / paper["after"]
        return "reproduced" + (f" ({ratio:.1f}× the paper's sequences)" if ratio > 1.5 else "")
    return "reproduced"


def _figures(ours: dict, paper: dict) -> str:
    parts = [f"{_FIGURES[k]}: {_n(ours.get(k), 3)} / {_n(paper[k], 3)}" for k in _FIGURES if k in paper]
    return "; ".join(parts) or "–"


def _paper_section(results: dict, experiments: dict) -> list[str]:
    lines = ["## Paper mode", "",
             "The paper's networks (`lstm1997` memory-cell blocks, the paper's connectivity, gate biases and "
             "initialisation), learning online with the truncated gradient, ½·SSE and the paper's learning rate, "
             "stopped by the paper's criterion. *Sequences* = training sequences until the criterion was met: mean "
             "[min–max] over the successful trials. Test figures: ours / the paper's.", ""]
    for name, exp in experiments.items():
        rows = [r for r in exp.rows if r.key in results]
        skipped = [r for r in exp.rows if r.key not in results]
        if not rows and not skipped:
            continue
        lines += [f"### {exp.title}", "",
                  "| row | # weights (paper) | trials | success % (paper) | sequences | paper | test figures (ours / paper) | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            s = results[r.key]["summary"]
            p = r.paper
            st1 = f" (ST1 {_n(s.get('st1'))} / {_n(p['st1'])})" if p.get("st1") else ""
            lines.append(f"| {r.label} | {r.net.weight_count():,} ({p['weights']:,}) | {s['trials']} | "
                         f"{s['success']:.0f} ({p.get('success', 100)}) | {_after(s)}{st1} | {_n(p.get('after'))} | "
                         f"{_figures(s, p)} | {verdict(s, p)} |")
        for r in skipped:
            lines.append(f"| {r.label} | {r.net.weight_count():,} ({r.paper['weights']:,}) | – | – | not run "
                         f"({'--long' if r.long else 'not selected'}) | {_n(r.paper.get('after'))} | – | – |")
        lines.append("")
    return lines + _drift_section(results, experiments)


def _drift_section(results: dict, experiments: dict) -> list[str]:
    """Internal state drift (H&S97 §4): the 1997 cell has no forget gate, so its state s sums every
    input the gate lets in; once |s| is large, h′(s) ≈ 0 and the errors that reach the cell vanish."""
    rows = [r for e in experiments.values() for r in e.rows if r.key in results and "drift" in results[r.key]["summary"]]
    if not rows:
        return []
    lines = ["### Internal state drift", "",
             "The 1997 cell has no forget gate: its state s adds up whatever its input gate lets in, and once "
             "|s| is large, h′(s) ≈ 0 and the error that reaches the cell's output no longer enters it (the paper's "
             "§4, *internal state drift*). Measured on 256 training-distribution sequences at each sequence's last "
             "step, at initialisation and when the trial ended, averaged over all trials (solved or not); a cell is "
             "*saturated* when h′(s)/h′(0) < 0.01 there. A cell that has learned to hold what it must remember sits "
             "far out too once written, so saturation at the end of a solved trial is the solution, not a fault; "
             "saturation at initialisation, or at the end of a failed trial, is the trap (with h the identity, as "
             "in 2a/2b, a cell never saturates and the drift lands on the output units instead).", "",
             "| row | success % | mean \\|s\\| at the last step: init → end | saturated cells: init → end | "
             "saturated at the end: solved / failed trials |",
             "|---|---|---|---|---|"]
    pct = lambda d, k: f"{100 * d[k]['saturated']:.0f}%" if k in d else "–"  # noqa: E731
    for r in rows:
        s = results[r.key]["summary"]
        d = s["drift"]
        lines.append(f"| {r.key} | {s['success']:.0f} | {d['init']['abs_s']:.2f} → {d['end']['abs_s']:.2f} | "
                     f"{pct(d, 'init')} → {pct(d, 'end')} | {pct(d, 'end_solved')} / {pct(d, 'end_failed')} |")
    return lines + [""]


def _modern_section(results: dict, experiments: dict) -> list[str]:
    lines = ["## Modern mode", "",
             "Today's practice on the same tasks and the same criteria: a cell from the registry with a linear head, "
             "minibatch Adam, gradient-norm clipping 1.0, full BPTT, softmax/sigmoid/identity outputs for "
             "ce/bce/mse. *Sequences* = updates × batch size, mean [min–max] over the successful trials; "
             "*init* is the chrono initialisation's horizon (Tallec & Ollivier 2018) or the forget bias (and "
             "*last step ×w* where each sequence's final step weighs w in the loss, *last step only* where it alone "
             "counts); the Elman RNN is the recurrent baseline the paper compares against.", ""]
    rows = {r.key: r for e in experiments.values() for r in e.rows}
    cells = list(dict.fromkeys(c for per_cell in results.values() for c in per_cell))
    solved = {c: sum(per_cell[c]["summary"]["success"] > 0 for per_cell in results.values() if c in per_cell) for c in cells}
    lines += ["Rows solved in at least one trial: " + ", ".join(f"{c} {solved[c]}/{len(results)}" for c in cells) + ".", "",
              "| row | cell | hidden, lr, init | trials | success % | sequences | paper's LSTM | test figures | time |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key, per_cell in results.items():
        r = rows[key]
        for cell, entry in per_cell.items():
            s = entry["summary"]
            figures = "; ".join(f"{_FIGURES[k]}: {_n(s[k], 3)}" for k in _FIGURES if k in s) or "–"
            success = f"{s['success']:.0f}" if s["success"] else "**0**"
            lines.append(f"| {key} | {cell} | {entry['hidden']}, {entry['lr']:g}, {entry['init']} | {s['trials']} | "
                         f"{success} | {_after(s)} | {_n(r.paper.get('after'))} | {figures} | {s['seconds']:.0f} s |")
    return lines + [""]


def _guess_section(results: dict) -> list[str]:
    lines = ["## Random weight guessing", "",
             "Every weight of the paper's network drawn from U[−a, a] until all 256 training sequences are "
             "correct (the paper: guessing solves 3a faster than LSTM, so 3a is easy, not a long-lag test).", "",
             "| row | a | trials | solved | guesses (mean) | misclassified (fraction of 2,560) |", "|---|---|---|---|---|---|"]
    for key, g in results.items():
        lines.append(f"| {key} | {g['scale']} | {g['trials']} | {g['solved']} | {_n(g['guesses'])} | "
                     f"{_n(g.get('misclassified'), 3)} |")
    return lines + [""]


def _flow_section(results: list[dict]) -> list[str]:
    lines = ["## Gradient flow (docs/classic_tasks.md §2.11)", "",
             "‖∂L/∂h_{T−k}‖ against the lag k on the adding problem (T = "
             f"{results[0].get('T', 200)}, H = 64, batch 256, at initialisation), and the per-step factor e^λ of a "
             "line fitted to its log over k ≥ 10. For Elman the bound ρ·E|f′| is the factor the linearised "
             "recurrence predicts.", "", "![gradient flow](gradient_flow.png)", "",
             "| model | factor ∂L/∂h | factor ∂L/∂c | ρ·E\\|f′\\| |", "|---|---|---|---|"]
    fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    for r in results:
        lines.append(f"| {r['model']} | {fmt(r['factor_h'])} | {fmt(r.get('factor_c'))} | {fmt(r.get('bound'))} |")
    return lines + [""]


def _formal_section(results: list[dict]) -> list[str]:
    cells = list(dict.fromkeys(r["cell"] for r in results))
    tasks = list(dict.fromkeys(r["task"] for r in results))
    first = results[0]
    lines = ["## The xLSTM paper's formal languages (Beck et al. 2024, Figure 4)", "",
             f"One layer of each cell (hidden {first['hidden']}, embedding 16), {first['steps']:,} Adam steps of 64 "
             "fresh strings of 3 to 40 tokens, tested on 2,000 strings of 40 to 256 tokens: the paper's score, "
             "accuracy rescaled so that chance is 0 and every string right is 1 (in brackets: accuracy on 2,000 "
             "strings of the training lengths). The best of the trials where there are several. The paper and "
             "the `xlstm` repository: parity needs state tracking, which the memory mixing of sLSTM (and of "
             "the LSTM) gives and the linear recurrences of mLSTM and the minimal RNNs lack.", "",
             "| task | " + " | ".join(cells) + " |", "|---|" + "---:|" * len(cells)]
    for task in tasks:
        row = []
        for cell in cells:
            runs = [r for r in results if r["task"] == task and r["cell"] == cell]
            best = max(runs, key=lambda r: r["test_score"])
            row.append(f"{best['test_score']:.2f} ({best['train_accuracy']:.2f})")
        lines.append(f"| {task} | " + " | ".join(row) + " |")
    return lines + [""]


_SECTIONS = {"paper", "modern", "guess", "gradient_flow", "formal_languages"}


def write_report(out: Path, results: dict, experiments: dict, header: list[str]) -> None:
    """Write ``results.json`` and ``report.md`` (plots are written by the caller)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    title = ("The xLSTM paper's formal languages with lstmkit" if set(results) & _SECTIONS == {"formal_languages"}
             else "Hochreiter & Schmidhuber (1997), reproduced with lstmkit")
    lines = [f"# {title}", ""] + header + [""]
    if results.get("paper"):
        if results.get("init_range"):
            lines += [f"**Not the paper's initialisation**: every weight but the fixed gate biases was drawn from "
                      f"U[−{results['init_range']:g}, {results['init_range']:g}] (`--init-range`).", ""]
        lines += _paper_section(results["paper"], experiments)
    if results.get("modern"):
        lines += _modern_section(results["modern"], experiments)
    if results.get("guess"):
        lines += _guess_section(results["guess"])
    if results.get("gradient_flow"):
        lines += _flow_section(results["gradient_flow"])
    if results.get("formal_languages"):
        lines += _formal_section(results["formal_languages"])
    plots = sorted(p.name for p in out.glob("curves-*.png"))
    if plots:
        lines += ["## Learning curves", "", "Mean ½·SSE per training sequence against sequences seen, one line per trial.", ""]
        lines += [f"![{p}]({p})" for p in plots] + [""]
    (out / "report.md").write_text("\n".join(lines))
