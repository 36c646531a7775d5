"""The experiments of Hochreiter & Schmidhuber (1997): tasks, the paper's networks and settings,
its stopping criteria and its published figures (docs/classic_tasks.md §2.1–§2.7).

Each :class:`Experiment` has rows (one per line of the paper's table); a row knows how to draw
its sequences, which paper network learns them (:class:`PaperNet`), the learning rate, the
number of trials, the budget, and the paper's figures to put beside ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..data.synthetic import Flat
from ..data.synthetic.arithmetic import arithmetic_flat
from ..data.synthetic.long_lag import long_lag_flat, very_long_lag_flat
from ..data.synthetic.reber import embedded_reber_strings, reber_flat, top_k_correct
from ..data.synthetic.temporal_order import temporal_order_flat
from ..data.synthetic.two_sequence import two_sequence_flat
from .paper_net import PaperNet

__all__ = ["Row", "Experiment", "EXPERIMENTS", "Criterion", "Streak", "Window", "TestSet", "sequence_errors"]


def sequence_errors(data: Flat, y: np.ndarray, *, last_only: bool, clean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the largest |output − target| over its target steps (or its last step) and
    the summed squared error at its last step."""
    target = data.clean if clean and data.clean is not None else data.target
    err = np.abs(y - target).max(1)                                         # (steps,)
    err = np.where(data.mask, err, 0.0)
    ends = data.ends
    worst = err[ends] if last_only else np.maximum.reduceat(err, data.offsets[:-1])
    sse = ((y[ends] - target[ends]) ** 2).sum(1)
    return worst, sse


class Criterion:
    """A stopping criterion: ``observe`` sees each trained chunk; it returns the number of
    training sequences after which the criterion was met (and the run stops), or None."""

    check_every: int | None = None      # set when the criterion needs the weights (a test set)

    def observe(self, data: Flat, y: np.ndarray, seen: int, weights, rng) -> int | None:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Streak(Criterion):
    """Success once ``n`` successive training sequences all have error < ``threshold``; the count
    is the sequences seen before that streak began (Exp. 2)."""

    threshold: float
    last_only: bool
    n: int = 10_000
    start: int = 0

    def observe(self, data, y, seen, weights, rng):
        worst, _ = sequence_errors(data, y, last_only=self.last_only)
        for i, bad in enumerate(worst >= self.threshold):
            if bad:
                self.start = seen + i + 1
            elif seen + i + 1 - self.start >= self.n:
                return self.start
        return None


@dataclass
class Window(Criterion):
    """ST3-style: among the ``n`` most recent training sequences at most ``max_wrong`` have error
    ≥ ``threshold`` and their mean summed squared error is < ``max_mean_sse`` (Exps. 4–6)."""

    threshold: float
    max_wrong: int = 0
    max_mean_sse: float = float("inf")
    n: int = 2000
    wrong: list = field(default_factory=list)
    sse: list = field(default_factory=list)

    def observe(self, data, y, seen, weights, rng):
        worst, sse = sequence_errors(data, y, last_only=True)
        self.wrong = self.wrong[-self.n:] + list(worst >= self.threshold)
        self.sse = self.sse[-self.n:] + list(sse)
        w, s = np.cumsum([0] + self.wrong), np.cumsum([0.0] + self.sse)
        offset = seen - (len(self.wrong) - len(worst))                      # sequence count at index 0
        for i in range(len(self.wrong) - len(worst), len(self.wrong)):
            if i + 1 >= self.n:
                lo = i + 1 - self.n
                if w[i + 1] - w[lo] <= self.max_wrong and (s[i + 1] - s[lo]) / self.n < self.max_mean_sse:
                    return offset + i + 1
        return None


@dataclass
class TestSet(Criterion):
    """Checked every ``check_every`` training sequences on a test set: ``evaluate(weights, rng)``
    returns (ST1 met, ST2 met); the run stops at ST2 and records when ST1 was first met."""

    evaluate: Callable = None
    check_every: int = 256
    st1_at: int | None = None

    def observe(self, data, y, seen, weights, rng):
        st1, st2 = self.evaluate(weights, rng)
        here = seen + len(data.lengths)
        if st1 and self.st1_at is None:
            self.st1_at = here
        return here if st2 else None


@dataclass(frozen=True)
class Row:
    """One line of a paper table."""

    key: str                            # e.g. "3a-T100-N3"
    label: str                          # what the line says, e.g. "T=100, N=3"
    net: PaperNet
    lr: float
    draw: Callable[[int, np.random.Generator, int], Flat]    # (trial, rng, n) -> n training sequences
    criterion: Callable[[int], Criterion]                    # trial -> a fresh stopping criterion
    paper: dict                         # the published figures of this line
    trials: int
    budget: int                         # training sequences before a trial counts as failed
    test: Callable[[Flat, np.ndarray], dict] | None = None   # figures on the 2,560 final test sequences
    long: bool = False                  # hours in paper mode here: run only when asked


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    per_step: bool                      # weight updates at every target step (RTRL) or per sequence
    rows: tuple[Row, ...]


def _steady(draw: Callable[[np.random.Generator, int], Flat]):
    """A draw that does not depend on the trial."""
    return lambda trial, rng, n: draw(rng, n)


def _budget(paper_mean: float, factor: float = 10.0, floor: int = 50_000) -> int:
    """A trial's sequences before it counts as failed: ``factor`` times the paper's mean (docs/classic_tasks.md §0:
    about 10x; the paper's own runs spread widely, e.g. 370,000-2,020,000 for adding, T = 1000)."""
    return int(max(floor, factor * paper_mean))


# ---------------------------------------------------------------- Exp. 1: embedded Reber grammar
def _top_k_correct(y: np.ndarray, legal: np.ndarray) -> np.ndarray:
    import torch
    return top_k_correct(torch.from_numpy(y), torch.from_numpy(legal)).numpy()


@lru_cache(maxsize=8)
def _erg_pair(pair: int) -> tuple[tuple[str, ...], Flat]:
    """Training strings and the train + test set of one of the paper's 3 train/test pairs."""
    train, test = embedded_reber_strings(256, 256, seed=1000 + pair)
    return tuple(train), reber_flat(train + test)


def _erg_draw(trial: int, rng: np.random.Generator, n: int) -> Flat:
    train, _ = _erg_pair(trial // 10)                                       # 3 pairs x 10 initialisations
    return reber_flat([train[i] for i in rng.integers(len(train), size=n)])


def _erg_criterion(trial: int) -> Criterion:
    _, everything = _erg_pair(trial // 10)

    def evaluate(weights, rng):
        ok = bool(_top_k_correct(weights.run(everything), everything.target)[everything.mask].all())
        return ok, ok
    return TestSet(evaluate=evaluate, check_every=256)


def _erg() -> Experiment:
    rows = []
    for N, S, lr, success, after in ((4, 1, 0.1, 100, 39_740), (3, 2, 0.1, 100, 21_730), (3, 2, 0.2, 97, 14_060),
                                     (4, 1, 0.5, 97, 9_500), (3, 2, 0.5, 100, 8_440)):
        net = PaperNet(7, N, S, 7, cell_bias=False, init_range=0.2,
                       output_gate_bias=tuple(-float(k) for k in range(1, N + 1)))
        rows.append(Row(f"1-{N}x{S}-lr{lr}", f"{N}×{S}, lr {lr}", net, lr, _erg_draw, _erg_criterion,
                        {"weights": {"4": 264, "3": 276}[str(N)], "success": success, "after": after},
                        trials=30, budget=200_000))
    return Experiment("1", "Exp. 1: embedded Reber grammar (all train and test strings predicted)", True, tuple(rows))


# ---------------------------------------------------------------- Exp. 2: long time lags
def _exp2(noisy: bool) -> Experiment:
    name = "2b" if noisy else "2a"
    p = 100
    net = PaperNet(p + 1, 1, 1, p + 1, recurrent=False, cell_bias=False, gate_bias=False, output_gate=False,
                   output_sees_inputs=True, g="logistic", h="identity", init_range=0.2)
    after = 5_680 if noisy else 5_040
    row = Row(f"{name}-p{p}", f"p={p}", net, 1.0, _steady(lambda rng, n: long_lag_flat(rng, n, p, noisy)),
              lambda trial: Streak(0.25, last_only=noisy),
              {"weights": 10_504, "success": 100, "after": after}, trials=18, budget=200_000)
    what = "random middle symbols, the last one predicted" if noisy else "two sequences, every step predicted"
    return Experiment(name, f"Exp. {name}: long time lag, p = 100, {what}", True, (row,))


def _exp2c() -> Experiment:
    rows = []
    for q, p, after in ((50, 50, 30_000), (100, 100, 31_000), (200, 200, 33_000), (500, 500, 38_000),
                        (1000, 1000, 49_000), (1000, 500, 49_000), (1000, 200, 75_000), (1000, 100, 135_000),
                        (1000, 50, 203_000)):
        net = PaperNet(p + 4, 2, 1, 2, cell_bias=False, gate_bias=False, init_range=0.2)
        rows.append(Row(f"2c-q{q}-p{p}", f"q={q}, p={p}", net, 0.01,
                        _steady(lambda rng, n, q=q, p=p: very_long_lag_flat(rng, n, q, p)),
                        lambda trial: Streak(0.2, last_only=True),
                        {"weights": 6 * (p + 10) + 4, "after": after, "success": 100}, trials=20,
                        budget=_budget(after), long=q > 200))
    return Experiment("2c", "Exp. 2c: very long time lags, no local regularities", False, tuple(rows))


# ---------------------------------------------------------------- Exp. 3: two-sequence problem
def _two_seq_test(variant: str):
    def figures(data: Flat, y: np.ndarray) -> dict:
        ends = data.ends
        if variant == "c":
            diff = np.abs(y[ends, 0] - data.clean[ends, 0])
            return {"misclassified": float((diff > 0.1).mean()), "mean_abs_diff": float(diff.mean())}
        return {"misclassified": float((np.abs(y[ends, 0] - data.target[ends, 0]) >= 0.2).mean())}
    return figures


def _two_seq_criterion(T: int, N: int, variant: str):
    max_wrong, max_mae = {"a": (0, 0.01), "b": (5, 0.04), "c": (0, 0.015)}[variant]

    def make(trial: int) -> Criterion:
        def evaluate(weights, rng):
            data = two_sequence_flat(rng, 256, T, N, variant)               # fresh test sequences
            y = weights.run(data)[data.ends, 0]
            if variant == "c":
                diff = np.abs(y - data.clean[data.ends, 0])
                st = (diff > 0.1).sum() <= max_wrong and diff.mean() < max_mae
                return st, st
            err = np.abs(y - data.target[data.ends, 0])
            st1 = (err >= 0.2).sum() <= max_wrong
            return st1, st1 and err.mean() < max_mae
        return TestSet(evaluate=evaluate, check_every=250)
    return make


def _exp3() -> Experiment:
    rows = []
    for variant, T, N, st1, st2, wrong in (("a", 100, 3, 27_380, 39_850, 0.000195), ("a", 100, 1, 58_370, 64_330, 0.000117),
                                           ("a", 1000, 3, 446_850, 452_460, 0.000078),
                                           ("b", 100, 3, 41_740, 43_250, 0.00828), ("b", 100, 1, 74_950, 78_430, 0.01500),
                                           ("b", 1000, 1, 481_060, 485_080, 0.01207),
                                           ("c", 100, 3, None, 269_650, 0.00558), ("c", 100, 1, None, 565_640, 0.00441)):
        net = PaperNet(1, 3, 1, 1, init_range=0.1, input_gate_bias=(-1.0, -3.0, -5.0),
                       output_gate_bias=(-2.0, -4.0, -6.0))
        paper = {"weights": 102, "st1": st1, "after": st2, "misclassified": wrong, "success": 100}
        if variant == "c":
            paper["mean_abs_diff"] = {3: 0.014, 1: 0.012}[N]
        rows.append(Row(f"3{variant}-T{T}-N{N}", f"3{variant}, T={T}, N={N}", net, 0.1 if variant == "c" else 1.0,
                        _steady(lambda rng, n, T=T, N=N, v=variant: two_sequence_flat(rng, n, T, N, v)),
                        _two_seq_criterion(T, N, variant), paper, trials=10, budget=_budget(st2),
                        test=_two_seq_test(variant), long=T > 100))
    return Experiment("3", "Exp. 3: two-sequence problem (noise and signal on one line)", False, tuple(rows))


# ---------------------------------------------------------------- Exps. 4 and 5: adding, multiplication
def _regression_test(threshold: float):
    def figures(data: Flat, y: np.ndarray) -> dict:
        err = y[data.ends, 0] - data.target[data.ends, 0]
        return {"wrong": int((np.abs(err) >= threshold).sum()), "mse": float((err ** 2).mean())}
    return figures


def _exp4() -> Experiment:
    rows = []
    for T, wrong, after in ((100, 1, 74_000), (500, 0, 209_000), (1000, 1, 853_000)):
        net = PaperNet(2, 2, 2, 1, output_bias=True, init_range=0.1, input_gate_bias=(-3.0, -6.0))
        rows.append(Row(f"4-T{T}", f"T={T}", net, 0.5, _steady(lambda rng, n, T=T: arithmetic_flat(rng, n, T, multiply=False)),
                        lambda trial: Window(0.04, max_mean_sse=0.01),
                        {"weights": 93, "wrong": wrong, "after": after, "success": 100}, trials=10,
                        budget=_budget(after), test=_regression_test(0.04), long=T > 100))
    return Experiment("4", "Exp. 4: adding problem", False, tuple(rows))


def _exp5() -> Experiment:
    rows = []
    for n_seq, wrong, mse, after in ((140, 139, 0.0223, 482_000), (13, 14, 0.0139, 1_273_000)):
        net = PaperNet(2, 2, 2, 1, output_bias=True, init_range=0.1)
        rows.append(Row(f"5-T100-n{n_seq}", f"T=100, n_seq={n_seq}", net, 0.1,
                        _steady(lambda rng, n: arithmetic_flat(rng, n, 100, multiply=True)),
                        lambda trial, n_seq=n_seq: Window(0.04, max_wrong=n_seq - 1),
                        {"weights": 93, "wrong": wrong, "mse": mse, "after": after, "success": 100}, trials=10,
                        budget=_budget(after), test=_regression_test(0.04), long=n_seq < 100))
    return Experiment("5", "Exp. 5: multiplication problem", False, tuple(rows))


# ---------------------------------------------------------------- Exp. 6: temporal order
def _order_test(data: Flat, y: np.ndarray) -> dict:
    ends = data.ends
    return {"wrong": int((np.abs(y[ends] - data.target[ends]).max(1) >= 0.3).sum())}


def _exp6() -> Experiment:
    rows = []
    for variant, N, lr, wrong, after, trials, gates in (("a", 2, 0.5, 1, 31_390, 20, (-2.0, -4.0)),
                                                        ("b", 3, 0.1, 2, 571_100, 10, (-2.0, -4.0, -6.0))):
        classes = 2 ** N if variant == "b" else 4
        net = PaperNet(8, N, 2, classes, output_bias=True, init_range=0.1, input_gate_bias=gates)
        rows.append(Row(f"6{variant}", f"6{variant}", net, lr, _steady(lambda rng, n, v=variant: temporal_order_flat(rng, n, v)),
                        lambda trial: Window(0.3, max_mean_sse=0.1),
                        {"weights": {"a": 156, "b": 308}[variant], "wrong": wrong, "after": after, "success": 100},
                        trials=trials, budget=_budget(after), test=_order_test, long=variant == "b"))
    return Experiment("6", "Exp. 6: temporal order", False, tuple(rows))


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (_erg(), _exp2(False), _exp2(True), _exp2c(), _exp3(),
                                                           _exp4(), _exp5(), _exp6())}
