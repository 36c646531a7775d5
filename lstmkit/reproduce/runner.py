"""Running trials: the paper's learner or a modern one on a row of a paper table, to its stopping
criterion; the final test; and the summary a report line shows."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import Recurrent, cells, valid_steps
from ..data.synthetic import Flat
from .experiments import Experiment, Row, TestSet

__all__ = ["TrialResult", "ModernSpec", "ModernLearner", "PaperLearner", "cell_drift", "run_trial", "summarize"]

TEST_SEQUENCES = 2560


@dataclass
class TrialResult:
    trial: int
    success: bool
    sequences: int                      # training sequences until the criterion was met (or the budget)
    st1: int | None = None              # Exp. 3: when the first stopping criterion was met
    test: dict = field(default_factory=dict)
    seconds: float = 0.0
    curve: list = field(default_factory=list)   # (sequences seen, mean ½·SSE per training sequence)
    drift: dict = field(default_factory=dict)   # paper mode: cell states at the sequence ends, see cell_drift


class PaperLearner:
    """The paper's network and online learner (truncated gradient, ½·SSE, plain SGD); with
    ``init_range`` its weights (all but the fixed gate biases) start in U[−init_range, init_range]
    instead of the paper's range."""

    def __init__(self, exp: Experiment, row: Row, seed: int, trial: int, *, init_range: float | None = None):
        net = row.net if init_range is None else dataclasses.replace(row.net, init_range=float(init_range))
        self.weights = net.init([seed, trial, 0])
        self.lr, self.per_step = row.lr, exp.per_step

    def train(self, data: Flat) -> np.ndarray:
        return self.weights.run(data, lr=self.lr, train=True, per_step=self.per_step)

    def run(self, data: Flat) -> np.ndarray:
        return self.weights.run(data)


@dataclass(frozen=True)
class ModernSpec:
    """Today's practice on a paper task: a cell from the registry, a linear head, minibatch Adam,
    gradient-norm clipping and full BPTT."""

    cell: str = "lstm"
    hidden: int = 16
    loss: str = "mse"                   # mse (real targets), ce (one class per target step), bce (multi-hot)
    lr: float = 1e-2
    batch: int = 32
    clip: float = 1.0
    forget_bias: float = 1.0            # lstm / peephole family
    chrono: int = 0                     # > 0: chrono initialisation for lags up to this many steps
    budget: int = 100_000               # training sequences before a trial counts as failed
    last_weight: float = 1.0            # weight of each sequence's final step in the loss (others 1);
                                        # math.inf: the final step alone


class ModernLearner:
    """A :class:`Recurrent` layer and a linear head trained by Adam; outputs as probabilities
    (softmax for ce, sigmoid for bce) or values (mse), so the paper's thresholds apply."""

    def __init__(self, spec: ModernSpec, inputs: int, outputs: int, seed: int, trial: int):
        torch.manual_seed(int(np.random.SeedSequence([seed, trial, 0]).generate_state(1)[0]))
        cell, self.init = _make_cell(spec, inputs)
        if math.isinf(spec.last_weight):
            self.init += ", last step only"
        elif spec.last_weight != 1:
            self.init += f", last step ×{spec.last_weight:g}"
        self.rnn = Recurrent(cell)
        self.head = nn.Linear(spec.hidden, outputs)
        self.params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=spec.lr)
        self.spec = spec

    def _forward(self, data: Flat):
        batch = data.batch()
        y, _ = self.rnn(batch.x, lengths=batch.lengths)                     # (B, T, H)
        return batch, self.head(y)                                          # (B, T, O)

    def _squash(self, logits):
        return {"ce": lambda z: z.softmax(-1), "bce": torch.sigmoid, "mse": lambda z: z}[self.spec.loss](logits)

    def loss(self, batch, logits) -> torch.Tensor:
        """The spec's loss over the target steps: their mean, or with ``last_weight`` a weighted
        mean in which each sequence's final step counts ``last_weight`` times (``math.inf``: the
        mean over the final steps alone)."""
        m = batch.mask
        z, t = logits[m], batch.target[m]                                   # (targets, O)
        reduction = "mean" if self.spec.last_weight == 1.0 else "none"
        if self.spec.loss == "ce":
            loss = nn.functional.cross_entropy(z, t.argmax(-1), reduction=reduction)
        elif self.spec.loss == "bce":
            loss = nn.functional.binary_cross_entropy_with_logits(z, t, reduction=reduction)
        else:
            loss = nn.functional.mse_loss(z, t, reduction=reduction)
        if reduction == "none":         # a weighted mean: each sequence's final step counts last_weight times
            last = torch.zeros_like(m)
            last[torch.arange(len(batch.lengths)), batch.lengths - 1] = True
            if math.isinf(self.spec.last_weight):                           # the final steps alone
                w = last[m].to(loss.dtype)
            else:
                w = torch.where(last[m], self.spec.last_weight, 1.0).to(loss.dtype)
            per_step = loss if loss.dim() == 1 else loss.mean(-1)
            loss = (per_step * w).sum() / w.sum()
        return loss

    def train(self, data: Flat) -> np.ndarray:
        batch, logits = self._forward(data)
        loss = self.loss(batch, logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.spec.clip)
        self.optimizer.step()
        return self._flat(batch, logits.detach())

    @torch.no_grad()
    def run(self, data: Flat) -> np.ndarray:
        out = []
        for lo in range(0, len(data.lengths), 512):                         # bounded memory on long tasks
            part = _slice(data, lo, lo + 512)
            batch, logits = self._forward(part)
            out.append(self._flat(batch, logits))
        return np.concatenate(out)

    def _flat(self, batch, logits) -> np.ndarray:
        valid = valid_steps(batch.lengths, logits.shape[1])                 # (B, T)
        return self._squash(logits)[valid].double().numpy()                 # (steps, O) in sequence order


def _make_cell(spec: ModernSpec, inputs: int) -> tuple[nn.Module, str]:
    """The spec's cell with the gate biases that set how long a unit remembers at initialisation:
    the forget gate's (GRU: the update gate's, whose z = 1 keeps the state) takes ``forget_bias``,
    or with ``chrono`` the chrono initialisation of Tallec & Ollivier (2018): log(U[1, chrono − 1])
    per unit, and the input gate its negative. Cells without such a gate are left as they are.
    Returns the cell and a label of the initialisation for the report."""
    state = torch.get_rng_state()
    cell = cells.make(spec.cell, inputs, spec.hidden)
    gates = set(getattr(cell, "gates", ()))
    memory = "f" if "f" in gates else "z" if "z" in gates else None
    if memory is None:
        return cell, "–"
    torch.set_rng_state(state)                                              # draw the same weights again
    values = torch.log(torch.empty(spec.hidden).uniform_(1.0, spec.chrono - 1.0)).tolist() if spec.chrono \
        else spec.forget_bias
    bias = {memory: values}
    if spec.chrono and "i" in gates:
        bias["i"] = [-v for v in values]
    label = f"chrono {spec.chrono}" if spec.chrono else f"{memory}-bias {spec.forget_bias:g}"
    return cells.make(spec.cell, inputs, spec.hidden, gate_bias=bias), label


def _slice(data: Flat, lo: int, hi: int) -> Flat:
    offsets = data.offsets
    a, b = offsets[lo], offsets[min(hi, len(data.lengths))]
    cut = lambda v: None if v is None else v[a:b]  # noqa: E731
    return Flat(data.size, data.target[a:b], data.mask[a:b], data.lengths[lo:hi], cut(data.symbols), cut(data.inputs),
                None if data.labels is None else data.labels[lo:hi], cut(data.clean))


DRIFT_SEQUENCES = 256
SATURATED = 0.01


def cell_drift(weights, data: Flat) -> dict:
    """Internal state drift of a paper network (H&S97 §4) on ``data``: per cell, the mean |s| at the
    sequences' last steps and the mean error gain h′(s)/h′(0) there; a cell is *saturated* when that
    gain is below ``SATURATED`` (an error reaching its output enters its state 100× weaker or less)."""
    s = weights.final_states(data)                                          # (sequences, H)
    gain = weights.error_gain(s).mean(0)
    return {"abs_s": np.abs(s).mean(0).tolist(), "gain": gain.tolist(), "saturated": float((gain < SATURATED).mean())}


def run_trial(exp: Experiment, row: Row, trial: int, *, seed: int = 0, learner=None, chunk: int = 256,
              budget: int | None = None, on_progress: Callable[[int], None] | None = None) -> TrialResult:
    """Train ``learner`` (default: the paper's) on ``row``'s sequences until its criterion is met or
    ``budget`` training sequences are spent, then test it on 2,560 fresh sequences."""
    learner = learner or PaperLearner(exp, row, seed, trial)
    budget = budget or row.budget
    rng = np.random.default_rng([seed, trial, 1])
    check_rng = np.random.default_rng([seed, trial, 2])
    criterion = row.criterion(trial)
    if isinstance(criterion, TestSet):
        chunk = min(chunk, criterion.check_every)
    result = TrialResult(trial, False, budget)
    probe = None
    if isinstance(learner, PaperLearner):                                   # paper mode: watch the drift
        probe = row.draw(trial, np.random.default_rng([seed, trial, 4]), DRIFT_SEQUENCES)
        result.drift["init"] = cell_drift(learner.weights, probe)
    start, seen, since_check = time.perf_counter(), 0, 0
    while seen < budget:
        data = row.draw(trial, rng, min(chunk, budget - seen))
        y = learner.train(data)
        n = len(data.lengths)
        sse = 0.5 * (((y - data.target) ** 2).sum(1) * data.mask).sum() / n
        since_check += n
        done = None
        if not isinstance(criterion, TestSet):
            done = criterion.observe(data, y, seen, learner, check_rng)
        elif since_check >= criterion.check_every or seen + n >= budget:
            since_check = 0
            done = criterion.observe(data, y, seen, learner, check_rng)
        seen += n
        result.curve.append((seen, float(sse)))
        if on_progress:
            on_progress(n)
        if done is not None:
            result.success, result.sequences = True, int(done)
            break
    result.st1 = getattr(criterion, "st1_at", None)
    if probe is not None:
        result.drift["end"] = cell_drift(learner.weights, probe)
    if row.test is not None:
        test = row.draw(trial, np.random.default_rng([seed, trial, 3]), TEST_SEQUENCES)
        result.test = row.test(test, learner.run(test))
    result.seconds = time.perf_counter() - start
    return result


def summarize(results: list[TrialResult]) -> dict:
    """Success rate, sequences to success (mean, min, max over the successful trials), the mean
    of each test figure and of ST1, and the time."""
    done = [r for r in results if r.success]
    seqs = [r.sequences for r in done]
    out = {"trials": len(results), "success": 100.0 * len(done) / max(1, len(results)),
           "after": float(np.mean(seqs)) if seqs else None, "after_min": min(seqs) if seqs else None,
           "after_max": max(seqs) if seqs else None, "seconds": float(sum(r.seconds for r in results))}
    st1 = [r.st1 for r in done if r.st1 is not None]
    if st1:
        out["st1"] = float(np.mean(st1))
    if any(r.drift for r in results):   # init and end over all trials; end also per outcome
        groups = {"init": (results, "init"), "end": (results, "end"), "end_solved": (done, "end"),
                  "end_failed": ([r for r in results if not r.success], "end")}
        out["drift"] = {name: {"abs_s": float(np.mean([r.drift[when]["abs_s"] for r in rs])),
                               "saturated": float(np.mean([r.drift[when]["saturated"] for r in rs]))}
                        for name, (rs, when) in groups.items() if rs}
    keys = sorted({k for r in done for k in r.test})
    for k in keys:
        out[k] = float(np.mean([r.test[k] for r in done]))
    return out
