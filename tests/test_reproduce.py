"""`lstmkit reproduce`: the paper's networks, its learner against autograd, the criteria, the report."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from lstmkit import Recurrent  # noqa: E402
from lstmkit.data.synthetic.arithmetic import arithmetic_flat  # noqa: E402
from lstmkit.data.synthetic.long_lag import long_lag_flat  # noqa: E402
from lstmkit.data.synthetic.reber import embedded_reber_string, reber_flat  # noqa: E402
from lstmkit.data.synthetic.temporal_order import temporal_order_flat  # noqa: E402
from lstmkit.reproduce import EXPERIMENTS, PaperNet, run_trial  # noqa: E402
from lstmkit.reproduce.experiments import Streak, Window  # noqa: E402
from lstmkit.reproduce.gradient_flow import MODELS, gradient_flow  # noqa: E402
from lstmkit.reproduce.modern import MODERN_ROWS  # noqa: E402
from lstmkit.reproduce.runner import ModernLearner, ModernSpec  # noqa: E402

ROWS = {r.key: (e, r) for e in EXPERIMENTS.values() for r in e.rows}


def test_every_paper_network_has_the_papers_weight_count():
    expected = {"1-4x1-lr0.1": 264, "1-3x2-lr0.1": 276, "2a-p100": 10_504, "3a-T100-N3": 102, "4-T100": 93,
                "5-T100-n140": 93, "6a": 156, "6b": 308}
    for key, n in expected.items():
        assert ROWS[key][1].net.weight_count() == n, key
    for e, r in ROWS.values():
        assert r.net.weight_count() == r.paper["weights"], r.key
        if r.key.startswith("2c"):
            p = r.net.inputs - 4
            assert r.net.weight_count() == 6 * (p + 10) + 4


NETS = {
    "erg": (PaperNet(7, 3, 2, 7, cell_bias=False, init_range=0.2, output_gate_bias=(-1.0, -2.0, -3.0)),
            lambda: reber_flat([embedded_reber_string(3), embedded_reber_string(4)])),
    "2b": (PaperNet(11, 1, 1, 11, recurrent=False, cell_bias=False, gate_bias=False, output_gate=False,
                    output_sees_inputs=True, g="logistic", h="identity", init_range=0.2),
           lambda: long_lag_flat(np.random.default_rng(0), 2, 10, True)),
    "adding": (PaperNet(2, 2, 2, 1, output_bias=True, input_gate_bias=(-3.0, -6.0)),
               lambda: arithmetic_flat(np.random.default_rng(1), 2, 30, multiply=False)),
    "6a": (PaperNet(8, 2, 2, 4, output_bias=True, input_gate_bias=(-2.0, -4.0)),
           lambda: temporal_order_flat(np.random.default_rng(2), 1, "a")),
}


def _autograd_step(cell, Wo, Wom, x, target, mask):
    """½·SSE of one sequence through the truncated lstm1997 cell and a logistic output layer."""
    y, _ = Recurrent(cell, engine="reference")(x[None])
    zo = torch.cat([y[0], x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    out = torch.sigmoid(zo @ (Wo * Wom).T)
    return 0.5 * (((out - target) ** 2).sum(1) * mask).sum()


@pytest.mark.parametrize("name", list(NETS))
def test_paper_learner_equals_autograd_through_the_truncated_lstm1997_cell(name):
    net, make = NETS[name]
    weights, data = net.init(0), make()
    cell, Wo, Wom = weights.to_torch()
    Wo.requires_grad_(True)
    batch = data.batch(torch.float64)
    for i, L in enumerate(batch.lengths.tolist()):                          # per-sequence updates: the
        loss = _autograd_step(cell, Wo, Wom, batch.x[i, :L], batch.target[i, :L], batch.mask[i, :L])
        loss.backward()                                                     # gradients of each sequence
        with torch.no_grad():                                               # are applied at its end
            for p in cell.parameters():
                p -= 0.7 * p.grad
                p.grad = None
            Wo -= 0.7 * Wo.grad * Wom
            Wo.grad = None
    weights.run(data, lr=0.7, train=True)
    after, Wo_after, _ = weights.to_torch()
    for a, b in zip(cell.parameters(), after.parameters()):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    assert torch.allclose(Wo, Wo_after, atol=1e-12, rtol=0)


def test_per_step_updates_are_rtrl_with_the_paper_truncation():
    """Per-step mode: after each target step the weights change; later steps run on the new
    weights while the traces keep what earlier steps computed with the old ones."""
    net, _ = NETS["erg"]
    weights, data = net.init(1), reber_flat([embedded_reber_string(5)])
    ref = net.init(1)
    lr = 0.5
    cell, Wo, Wom = ref.to_torch()
    batch = data.batch(torch.float64)
    L = int(batch.lengths[0])
    x, target = batch.x[0, :L], batch.target[0, :L]
    params = {k: v.detach().clone() for k, v in cell.named_parameters()}
    Wo = Wo.clone()
    snapshots = []                                                          # weights used at each step
    for t in range(L):
        snapshots.append(({k: v.clone().requires_grad_(True) for k, v in params.items()},
                          Wo.clone().requires_grad_(True)))
        state = cell.init_state(1, dtype=torch.float64)
        for tau in range(t + 1):                                            # steps up to t, each with its
            h, state = torch.func.functional_call(cell, snapshots[tau][0], (x[tau:tau + 1], state))
        zo = torch.cat([h[0], x[t], torch.ones(1, dtype=torch.float64)])
        out = torch.sigmoid((snapshots[t][1] * Wom) @ zo)
        loss = 0.5 * ((out - target[t]) ** 2).sum()
        leaves = [p for snap, _ in snapshots for p in snap.values()] + [snapshots[t][1]]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        names = list(params)
        with torch.no_grad():
            for i, g in enumerate(grads[:-1]):
                if g is not None:
                    params[names[i % len(names)]] -= lr * g
            Wo -= lr * grads[-1] * Wom
    weights.run(data, lr=lr, train=True, per_step=True)
    after, Wo_after, _ = weights.to_torch()
    for k, p in after.named_parameters():
        assert torch.allclose(p, params[k], atol=1e-12, rtol=0), k
    assert torch.allclose(Wo_after, Wo, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", list(NETS))
def test_final_states_are_each_sequences_cell_state_at_its_last_step(name):
    net, make = NETS[name]
    weights, data = net.init(2), make()
    cell, _, _ = weights.to_torch()
    batch = data.batch(torch.float64)
    s = weights.final_states(data)                                          # (sequences, H)
    assert s.shape == (len(batch.lengths), net.hidden)
    for i, L in enumerate(batch.lengths.tolist()):                          # one sequence at a time,
        state = cell.init_state(1, dtype=torch.float64)                     # the cell's own step loop
        with torch.no_grad():
            for t in range(L):
                _, state = cell(batch.x[i, t:t + 1], state)
        assert np.allclose(s[i], state[1][0].numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("h", ["scaled", "tanh", "identity"])
def test_error_gain_is_h_prime_relative_to_its_maximum(h):
    from lstmkit.cells.lstm1997 import _H
    weights = dataclasses.replace(NETS["erg"][0], h=h).init(0)
    s = torch.linspace(-12, 12, 25, dtype=torch.float64, requires_grad=True)
    slope, = torch.autograd.grad(_H[h](s).sum(), s)
    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    top, = torch.autograd.grad(_H[h](zero).sum(), zero)
    assert np.allclose(weights.error_gain(s.detach().numpy()), (slope / top).numpy(), atol=1e-12, rtol=0)


def test_paper_trials_record_the_internal_state_drift(tmp_path):
    from lstmkit.reproduce.report import write_report
    from lstmkit.reproduce.runner import SATURATED, summarize
    exp, row = ROWS["2c-q100-p100"]
    results = [run_trial(exp, row, t, budget=512) for t in range(2)]
    for r in results:
        init, end = r.drift["init"], r.drift["end"]
        assert len(init["abs_s"]) == len(init["gain"]) == len(end["abs_s"]) == len(end["gain"]) == row.net.hidden
        gain = np.array(init["gain"])
        assert init["saturated"] == (gain < SATURATED).mean()
    # at initialisation, 100+ steps of gate activations around 0.5 already drive some cell far out
    assert max(max(r.drift["init"]["abs_s"]) for r in results) > 3.0
    summary = summarize(results)
    assert set(summary["drift"]) == {"init", "end", "end_failed"}            # nothing solved in 512
    write_report(tmp_path, {"paper": {row.key: {"summary": summary, "trials": []}}}, {"2c": exp}, [])
    report = (tmp_path / "report.md").read_text()
    assert "### Internal state drift" in report and f"| {row.key} | 0 |" in report


def test_init_range_redraws_the_paper_weights_but_keeps_the_fixed_gate_biases(tmp_path):
    from lstmkit.cli import main
    from lstmkit.reproduce.runner import PaperLearner
    exp, row = ROWS["3a-T100-N3"]                                           # gate biases -1/-3/-5, -2/-4/-6
    paper, small = PaperLearner(exp, row, 0, 0), PaperLearner(exp, row, 0, 0, init_range=0.02)
    fixed = np.zeros_like(paper.weights.W, dtype=bool)
    N, H = row.net.blocks, row.net.hidden
    fixed[:N, -1] = fixed[N + H:, -1] = True
    assert np.array_equal(small.weights.W[fixed], paper.weights.W[fixed])
    assert np.abs(small.weights.W[~fixed]).max() <= 0.02 < np.abs(paper.weights.W[~fixed]).max() <= 0.1
    assert np.abs(small.weights.Wo).max() <= 0.02 and small.weights.net.weight_count() == 102
    out = tmp_path / "r"
    assert main(["reproduce", "6a", "--mode", "paper", "--trials", "1", "--budget", "256", "--init-range", "0.05",
                 "--out", str(out)]) == 0
    assert "drawn from U[−0.05, 0.05] (`--init-range`)" in (out / "report.md").read_text()
    assert json.loads((out / "results.json").read_text())["init_range"] == 0.05
    for bad in ("-1", "inf", "nan"):
        with pytest.raises(SystemExit, match=f"--init-range expected a positive finite number, got {bad}"):
            main(["reproduce", "6a", "--init-range", bad])


def test_streak_counts_the_sequences_before_the_successful_streak():
    c = Streak(0.25, last_only=True, n=5)
    from lstmkit.data.synthetic import Flat
    errs = np.array([0.5, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    data = Flat(1, np.zeros((10, 1)), np.ones(10, bool), np.ones(10, np.int64), inputs=np.zeros((10, 1)))
    assert c.observe(data, errs[:, None], 0, None, None) == 4               # streak from sequence 4 on
    w = Window(0.25, max_wrong=1, n=4)
    assert w.observe(data, errs[:, None], 0, None, None) == 5               # sequences 2-5 hold 1 wrong
    w = Window(0.25, max_wrong=0, n=4)
    assert w.observe(data, errs[:, None], 0, None, None) == 8


def test_paper_mode_solves_6a_and_3a_and_reports_test_figures():
    exp, row = ROWS["6a"]
    result = run_trial(exp, row, 0, budget=40_000)
    assert result.success and result.sequences < 40_000 and result.test["wrong"] <= 5
    exp, row = ROWS["3a-T100-N3"]
    result = run_trial(exp, row, 0, budget=80_000)
    assert result.success and result.st1 <= result.sequences and result.test["misclassified"] < 0.01
    again = run_trial(exp, row, 0, budget=80_000)
    assert again.sequences == result.sequences and again.test == result.test   # seeded


def test_modern_learner_outputs_follow_the_sequences():
    exp, row = ROWS["6a"]
    learner = ModernLearner(ModernSpec(hidden=8, loss="ce"), 8, 4, seed=0, trial=0)
    data = row.draw(0, np.random.default_rng(0), 5)
    y = learner.run(data)
    batch = data.batch()
    with torch.no_grad():
        h, _ = learner.rnn(batch.x, lengths=batch.lengths)
        expected = learner.head(h).softmax(-1)
    for i, (a, b) in enumerate(zip(data.offsets[:-1], data.offsets[1:])):
        assert np.allclose(y[a:b], expected[i, :b - a].numpy(), atol=1e-6)
    result = run_trial(exp, row, 0, learner=learner, budget=320, chunk=32)
    assert not result.success and result.sequences == 320 and len(result.curve) == 10


@pytest.mark.parametrize("loss", ["ce", "bce", "mse"])
def test_modern_loss_weights_each_sequences_final_step(loss):
    exp, row = ROWS["1-3x2-lr0.5"]                                   # Reber strings: targets at every step
    data = row.draw(0, np.random.default_rng(0), 4)                  # lengths differ: the final steps do too
    plain = ModernLearner(ModernSpec(hidden=8, loss=loss), 7, 7, seed=0, trial=0)
    weighted = ModernLearner(ModernSpec(hidden=8, loss=loss, last_weight=7.0), 7, 7, seed=0, trial=0)
    batch, logits = plain._forward(data)
    z, t = logits[batch.mask], batch.target[batch.mask]
    per_step = {"ce": lambda: torch.nn.functional.cross_entropy(z, t.argmax(-1), reduction="none"),
                "bce": lambda: torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none").mean(-1),
                "mse": lambda: ((z - t) ** 2).mean(-1)}[loss]()
    ends = torch.zeros_like(batch.mask)
    ends[torch.arange(4), batch.lengths - 1] = True
    w = 1.0 + 6.0 * ends[batch.mask].double()
    assert len(set(batch.lengths.tolist())) > 1 and batch.mask.sum() > 4 * 2
    assert torch.allclose(plain.loss(batch, logits).double(), per_step.double().mean())
    assert not torch.allclose(weighted.loss(batch, logits), plain.loss(batch, logits))
    assert torch.allclose(weighted.loss(batch, logits).double(), (per_step.double() * w).sum() / w.sum())


def test_modern_loss_with_infinite_last_weight_is_the_final_steps_alone():
    exp, row = ROWS["1-3x2-lr0.5"]
    data = row.draw(0, np.random.default_rng(1), 5)
    learner = ModernLearner(ModernSpec(hidden=8, loss="ce", last_weight=math.inf), 7, 7, seed=0, trial=0)
    batch, logits = learner._forward(data)
    ends = torch.arange(5), batch.lengths - 1
    expected = torch.nn.functional.cross_entropy(logits[ends], batch.target[ends].argmax(-1))
    assert torch.allclose(learner.loss(batch, logits), expected)
    assert learner.init.endswith("last step only")
    assert MODERN_ROWS["2b-p100"].last_weight == math.inf     # 2b: only its final prediction is judged


def test_chrono_initialisation_sets_the_memory_gates():
    for cell, rows in (("lstm", lambda b, H: (b[:H], b[H:2 * H])), ("peephole", lambda b, H: (b[:H], b[H:2 * H]))):
        learner = ModernLearner(ModernSpec(cell=cell, hidden=16, chrono=100), 3, 2, seed=0, trial=0)
        i, f = rows(learner.rnn.cell.bias.detach(), 16)
        assert torch.all((f >= 0) & (f <= np.log(99) + 1e-6)) and torch.equal(i, -f) and f.std() > 0.5
    gru = ModernLearner(ModernSpec(cell="gru", hidden=16, chrono=100), 3, 2, seed=0, trial=0).rnn.cell
    z = (gru.bias_ih + gru.bias_hh).detach()[16:32]
    assert torch.all((z >= -0.5) & (z <= np.log(99) + 0.5)) and z.mean() > 2.0
    plain = ModernLearner(ModernSpec(cell="lstm", hidden=16), 3, 2, seed=0, trial=0).rnn.cell.bias.detach()
    assert torch.equal(plain[16:32], torch.ones(16))


def test_modern_lstm_solves_temporal_order_and_elman_does_not():
    exp, row = ROWS["6a"]
    spec = MODERN_ROWS["6a"]
    result = run_trial(exp, row, 0, budget=30_000, chunk=spec.batch,
                       learner=ModernLearner(spec, row.net.inputs, row.net.outputs, seed=0, trial=0))
    assert result.success and result.sequences < 30_000 and result.test["wrong"] <= 3
    elman = dataclasses.replace(spec, cell="elman")
    failed = run_trial(exp, row, 0, budget=5_000, chunk=spec.batch,
                       learner=ModernLearner(elman, row.net.inputs, row.net.outputs, seed=0, trial=0))
    assert not failed.success


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.0])
def test_elman_gradient_decays_at_the_rate_of_the_linearised_bound(rho):
    model = next(m for m in MODELS if m.name == f"elman-tanh ρ={rho}")
    r = gradient_flow(model, T=80, batch=64)
    assert abs(np.log(r["factor_h"]) - np.log(r["bound"])) <= 0.1 * abs(np.log(r["bound"]))


def test_truncated_lstm1997_carries_the_cell_state_gradient_unchanged():
    r = gradient_flow(next(m for m in MODELS if m.name == "lstm1997 truncated"), T=40, batch=16)
    g_c = np.array(r["g_c"])
    assert np.allclose(g_c[1:], g_c[1], rtol=1e-12) and r["factor_c"] == pytest.approx(1.0, abs=1e-12)
    assert all(v == 0 for v in r["g_h"][1:])                                # truncation: nothing through h
    biased = gradient_flow(next(m for m in MODELS if m.name == "lstm forget bias 3"), T=40, batch=16)
    unbiased = gradient_flow(next(m for m in MODELS if m.name == "lstm forget bias 0"), T=40, batch=16)
    assert biased["factor_c"] > unbiased["factor_c"]


def test_reproduce_cli_writes_the_report(tmp_path):
    from lstmkit.cli import main
    out = tmp_path / "r"
    assert main(["reproduce", "6a", "guess", "gradient-flow", "--mode", "paper", "--quick", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "Exp. 6: temporal order" in report and "| 6a | 156 (156) |" in report and "31,390" in report
    assert "Random weight guessing" in report and "Gradient flow" in report
    assert (out / "gradient_flow.png").stat().st_size > 0 and (out / "curves-6a-paper.png").exists()
    results = json.loads((out / "results.json").read_text())
    assert results["paper"]["6a"]["summary"]["trials"] == 1 and len(results["gradient_flow"]) == len(MODELS)
    assert main(["reproduce", "3a-T100-N3", "--mode", "modern", "--cells", "lstm", "--budget", "320",
                 "--trials", "1", "--out", str(out)]) == 0
    assert "| 3a-T100-N3 | lstm | 8, 0.01, chrono 150 | 1 | **0** |" in (out / "report.md").read_text()
    with pytest.raises(SystemExit, match="argument TASK expected one of"):
        main(["reproduce", "7"])
