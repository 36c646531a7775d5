"""A global lstmkit forecaster against statsforecast's AutoETS, Theta, SeasonalNaive and Naive on
a competition's official split, scored by the same code (lstmkit's ``global_forecast`` metrics:
utilsforecast's losses), per group and over all series, with the published figures beside them.

    python benchmarks/bench_global_forecast.py m3 --run runs/m3_global [--threads 2]

The lstmkit rows are read from a run made with ``lstmkit train`` (its ``forecasts_test.csv``);
statsforecast (PyPI ``statsforecast``, the ``[bench]`` extra) is fitted here, its time printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from lstmkit.data.competitions import load_competition
from lstmkit.tasks.global_forecast.metrics import score
from lstmkit.tasks.global_forecast.task import LEVELS

# as published: M3 sMAPE (Makridakis & Hibon 2000; N-BEATS: Oreshkin et al. 2020, Table 2);
# Tourism MAPE (Athanasopoulos et al. 2011, Table 5; N-BEATS, Table 3)
PUBLISHED = {
    "m3": {"metric": "smape", "Theta (M3 winner)": {"all": 13.01, "yearly": 16.90, "quarterly": 8.96,
                                                     "monthly": 13.85, "other": 4.41},
           "N-BEATS (180 models)": {"all": 12.37, "yearly": 15.93, "quarterly": 8.84, "monthly": 13.11,
                                    "other": 4.24}},
    "tourism": {"metric": "mape", "ETS (published)": {"yearly": 27.68, "quarterly": 16.05, "monthly": 21.15},
                "N-BEATS": {"yearly": 21.44, "quarterly": 14.78, "monthly": 19.29}},
}


def statsforecast_forecasts(comp, threads: int) -> tuple[pd.DataFrame, float]:
    """Forecasts with 80% and 95% intervals of the four statsforecast models, per group."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Naive, SeasonalNaive, Theta
    frames, start = [], time.perf_counter()
    for group, info in comp.info.groupby("group"):
        h, season = int(info["horizon"].iloc[0]), int(info["season"].iloc[0])
        ids = set(info["unique_id"])
        train = comp.train[comp.train["unique_id"].isin(ids)]
        models = [AutoETS(season_length=season), Theta(season_length=season), SeasonalNaive(season_length=season),
                  Naive()]
        sf = StatsForecast(models=models, freq=1, n_jobs=threads)
        out = sf.forecast(df=train, h=h, level=list(LEVELS)).reset_index(drop=True)
        cutoffs = train.groupby("unique_id")["ds"].max()
        frames.append(out.assign(cutoff=out["unique_id"].map(cutoffs), group=group))
    return pd.concat(frames, ignore_index=True), time.perf_counter() - start


def neuralforecast_forecasts(comp, steps: int) -> tuple[pd.DataFrame, float]:
    """neuralforecast's LSTM (quantile loss) and DeepAR (Student-t), one of each per group (its
    models forecast one horizon), trained ``steps`` batches each, with 80% and 95% intervals."""
    import logging
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss, DistributionLoss
    from neuralforecast.models import LSTM, DeepAR
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    frames, start = [], time.perf_counter()
    quiet = dict(enable_progress_bar=False, enable_model_summary=False, logger=False, accelerator="cpu")
    for group, info in comp.info.groupby("group"):
        h = int(info["horizon"].iloc[0])
        train = comp.train[comp.train["unique_id"].isin(set(info["unique_id"]))]
        shortest = int(train.groupby("unique_id").size().min())
        size = max(2, min(2 * h, shortest - 1))
        models = [LSTM(h=h, input_size=size, loss=MQLoss(level=list(LEVELS)), max_steps=steps, scaler_type="robust",
                       start_padding_enabled=True, **quiet),
                  DeepAR(h=h, input_size=size, loss=DistributionLoss("StudentT", level=list(LEVELS)),
                         max_steps=steps, scaler_type="robust", start_padding_enabled=True, **quiet)]
        nf = NeuralForecast(models=models, freq=1)
        nf.fit(df=train)
        out = nf.predict().reset_index()
        out = out.drop(columns=["index", "DeepAR"])           # DeepAR's mean: its median is the point forecast
        frames.append(out.rename(columns={"LSTM-median": "LSTM", "DeepAR-median": "DeepAR"}))
    return pd.concat(frames, ignore_index=True), time.perf_counter() - start


def table(comp, run: Path | None, threads: int, nf_steps: int | None) -> tuple[pd.DataFrame, dict]:
    sf, seconds = statsforecast_forecasts(comp, threads)
    seconds = {"statsforecast": seconds}
    sf = sf.merge(comp.test, on=["unique_id", "ds"])
    extra = []
    if nf_steps:
        nf, seconds["neuralforecast"] = neuralforecast_forecasts(comp, nf_steps)
        sf = sf.merge(nf, on=["unique_id", "ds"], how="left")
        extra = ["LSTM", "DeepAR"]
    if run is not None:
        ours = pd.read_csv(run / "forecasts_test.csv", dtype={"unique_id": str})
        ours = ours[[c for c in ours.columns if c.startswith("lstmkit")] + ["unique_id", "ds"]]
        sf = sf.merge(ours, on=["unique_id", "ds"], how="left")
    methods = ["AutoETS", "Theta", "SeasonalNaive", "Naive"] + extra + (["lstmkit"] if run is not None else [])
    history = pd.concat([comp.train, comp.test])
    rows = []
    for group, df in sf.groupby("group"):
        season = int(comp.info.loc[comp.info["group"] == group, "season"].iloc[0])
        for method in methods:
            per = score(df.drop(columns="group"), history, season, [method], levels=LEVELS, probabilistic=method
                        if method not in ("SeasonalNaive", "Naive") else None)
            rows.append(per.assign(group=group, method=method).rename(columns=lambda c: c.removesuffix(f"_{method}")))
    return pd.concat(rows, ignore_index=True), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["m1", "m3", "tourism"])
    parser.add_argument("--run", type=Path, help="an lstmkit global_forecast run of the same dataset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nf-steps", type=int, help="also train neuralforecast's LSTM and DeepAR this many steps "
                        "per group")
    args = parser.parse_args(argv)
    comp = load_competition(args.dataset)
    torch_threads(args.threads)
    per_series, seconds = table(comp, args.run, args.threads, args.nf_steps)
    metrics = [c for c in ("smape", "mape", "mase", "coverage80", "coverage95", "msis") if c in per_series]
    by_group = per_series.groupby(["method", "group"])[metrics].mean()
    overall = per_series.groupby("method")[metrics].mean().assign(group="all").set_index("group", append=True)
    print(f"{args.dataset}: {per_series['unique_id'].nunique()} series; fitted on {args.threads} threads in "
          + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()) + "\n")
    print(pd.concat([by_group, overall]).round(3).unstack("group").to_string())
    if args.dataset in PUBLISHED:
        published = dict(PUBLISHED[args.dataset])
        print(f"\npublished {published.pop('metric')}:")
        for name, figures in published.items():
            print(f"  {name}: " + ", ".join(f"{g} {v}" for g, v in figures.items()))
    if args.run is not None:
        print(f"\nlstmkit run: {args.run} (trained in {_train_seconds(args.run)})")
    return 0


def torch_threads(n: int) -> None:
    import torch
    torch.set_num_threads(n)


def _train_seconds(run: Path) -> str:
    import json
    metrics = json.loads((run / "metrics.json").read_text())
    return f"{metrics.get('train_seconds', float('nan')):.0f} s, {metrics.get('parameters')} parameters"


if __name__ == "__main__":
    raise SystemExit(main())
