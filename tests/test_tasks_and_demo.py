import pytest
import torch

from lstmkit import demo
from lstmkit.data.synthetic import brnn_surrogate


def test_brnn_surrogate_regression_targets_follow_the_formula():
    x, y, lengths = brnn_surrogate(8, 20, d_p=2, d_f=3, min_length=5, seed=1, dtype=torch.float64)
    assert x.shape == y.shape == (8, 20, 1) and lengths.min() >= 5 and lengths.max() <= 20
    for b in range(8):
        L = int(lengths[b])
        xs = x[b, :, 0]
        assert not xs[L:].any() and not y[b, L:].any()
        for t in range(L):
            past = float(xs[t - 2]) if t >= 2 else 0.0
            future = float(xs[t + 3]) if t + 3 < L else 0.0
            assert float(y[b, t, 0]) == pytest.approx((past + future) / 2, abs=1e-15)
    assert torch.equal(brnn_surrogate(8, 20, seed=1)[0], brnn_surrogate(8, 20, seed=1)[0])
    assert not torch.equal(brnn_surrogate(8, 20, seed=1)[0], brnn_surrogate(8, 20, seed=2)[0])


def test_brnn_surrogate_classification_window_sum():
    x, y, lengths = brnn_surrogate(4, 12, target="classification", w=2, seed=3, dtype=torch.float64)
    xs = torch.nn.functional.pad(x[..., 0], (2, 2))
    for t in range(12):
        assert torch.equal(y[:, t, 0], (xs[:, t:t + 5].sum(1) > 0).double())
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_brnn_surrogate_errors():
    with pytest.raises(ValueError, match="argument 'target' expected 'regression' or 'classification'"):
        brnn_surrogate(2, target="ranking")
    with pytest.raises(ValueError, match=r"argument 'min_length' expected an int in \[1, 10\]"):
        brnn_surrogate(2, 10, min_length=11)
    with pytest.raises(ValueError, match="argument 'd_f' expected a non-negative int"):
        brnn_surrogate(2, d_f=-1)


def test_demo_runs_and_is_reproducible(capsys):
    a = demo.main(["--steps", "3", "--hidden", "4", "--batch", "8"])
    b = demo.main(["--steps", "3", "--hidden", "4", "--batch", "8"])
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-9) for k in a)
    assert 0.07 < a["forward floor"] < 0.08      # Var(x[t+5]/2) = 1/12, less the padded ends
    assert "bidirectional LSTM" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_bidirectional_beats_the_forward_floor():
    results = demo.main(["--steps", "150"])
    assert results["bidirectional LSTM"] < results["forward floor"] / 5
    assert results["forward LSTM"] > results["forward floor"] * 0.95
