"""Anomaly detection by prediction error: a one-step predictor trained on normal data only.

The model reads ``window`` past values and predicts the next one. A point's score is the moving
average (over ``smooth`` steps, ending at the point) of the squared prediction errors. The
threshold is the ``threshold_quantile`` of the scores on held-out normal data (the last
``valid_fraction`` of the normal series), so it is chosen without seeing any anomaly. The UCR
archive's criterion: the top-scoring point of the test series must lie within 100 steps of the
labelled anomaly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, field_validator

from ...data import datasets
from ...data.readers import read_labelled_series, read_series
from ...models import Forecaster
from ...runs import plots
from ...runs.config import DataConfig, ModelConfig, OptimConfig, RunConfig, rnn_options
from ...runs.batches import ListDataset
from ...runs.records import Number, Record, finite_float32
from ...runs.task import Prepared, WindowTask
from .fitted import AnomalyFitted
from .tensors import AnomalyTensors
from .stream import PointStream

__all__ = ["AnomalyTask", "UCR_MARGIN"]

UCR_MARGIN = 100


class AnomalyModelConfig(ModelConfig):
    hidden_size: int = Field(32, gt=0, description="hidden units per direction")


class AnomalyData(DataConfig):
    needs = {"files": ("train_file",)}
    renamed = {"file": "files"}
    dataset: Literal["kdd_tsad_135", "files"] = Field(
        "kdd_tsad_135", description="aeon's UCR anomaly series 135, or 'files' (your own)")
    train_file: Path | None = Field(None, description="dataset 'files': CSV of normal values (one column)")
    test_file: Path | None = Field(None, description="dataset 'files': CSV 'value,label' (label 1 = anomaly; "
                                      "null: no test split)")
    window: int = Field(64, gt=0, description="past steps the one-step predictor reads")
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="last share of the normal series held out")
    threshold_quantile: float = Field(0.999, gt=0.0, le=1.0,
                                      description="threshold = this quantile of scores on held-out normal data")
    smooth: int = Field(16, gt=0, description="moving average of squared errors that forms the score")


class AnomalyConfig(RunConfig):
    task: Literal["anomaly"] = Field("anomaly", description="anomaly detection by one-step prediction error")
    data: AnomalyData = Field(default_factory=AnomalyData)
    model: AnomalyModelConfig = Field(default_factory=AnomalyModelConfig)

    @field_validator("optim")
    @classmethod
    def _no_refit(cls, optim: OptimConfig) -> OptimConfig:
        if optim.refit:
            raise ValueError("refit: expected false for anomaly (its held-out normal data set the threshold), "
                             "got true")
        return optim


class AnomalyInput(Record):
    EXAMPLE = '{"values": [numbers...]}'
    values: list[Number] = Field(description="the series to score (more values than the model's window)")


class AnomalyOutput(BaseModel):
    scores: list[float] = Field(description="every point's anomaly score (0 for the first window points)")
    threshold: float = Field(description="the score above which a point is an anomaly")
    anomalies: list[int] = Field(description="indices of the points above the threshold")


class AnomalyTask(WindowTask):
    """Windows (B, W, 1) of a normal series -> the next value (B, 1)."""

    name = "anomaly"
    config_class = AnomalyConfig
    predict_input = AnomalyInput
    predict_output = AnomalyOutput
    fitted_class = AnomalyFitted
    tensors = AnomalyTensors
    stream = PointStream
    estimators = ("lstmkit.tasks.anomaly.estimator:AnomalyDetector",)
    formats = ("data files: train CSV of normal values (one column), test CSV 'value,label'; evaluate --data: "
               "'value,label'; predict: JSON lines " + AnomalyInput.EXAMPLE)

    def _load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        data = self.config.data
        if data.dataset == "files":
            test, labels = (read_labelled_series(data.test_file) if data.test_file is not None
                            else (np.zeros(0), np.zeros(0, dtype=np.int64)))
            return read_series(data.train_file), test, labels
        return datasets.load_kdd_tsad_135()

    @staticmethod
    def _windows(scaled: np.ndarray, W: int, start: int, stop: int) -> ListDataset:
        x = torch.tensor(scaled, dtype=torch.float32)
        return ListDataset([(x[t - W:t, None], x[t:t + 1]) for t in range(max(W, start), stop)])

    def prepare(self, fitted: AnomalyFitted | None = None) -> Prepared:
        data = self.config.data
        normal, test, labels = self._load()
        W = data.window
        fit_end = len(normal) - max(W + data.smooth, int(round(data.valid_fraction * len(normal))))
        if fit_end < 2 * W:
            raise ValueError(f"anomaly: the normal series has {len(normal)} steps, too few for window {W} "
                             f"and valid_fraction {data.valid_fraction}")
        if fitted is None:
            fitted = AnomalyFitted(mean=float(normal[:fit_end].mean()), std=float(max(normal[:fit_end].std(), 1e-8)),
                                   window=W, smooth=data.smooth, quantile=data.threshold_quantile)
        scale = fitted.scaled
        held = scale(normal[fit_end - W:])
        return Prepared(train=self._windows(scale(normal), W, W, fit_end),
                        valid=self._windows(held, W, W, len(held)),
                        test=self._windows(scale(test), W, W, len(test)), fitted=fitted,
                        extra={"normal": normal, "held": held, "test": test, "labels": labels})

    def build_model(self, fitted: AnomalyFitted):
        m = self.config.model
        return Forecaster(m.cell, 1, m.hidden_size, horizon=1, **rnn_options(m))

    @torch.no_grad()
    def scores(self, model, scaled: np.ndarray, fitted: AnomalyFitted) -> np.ndarray:
        """Score of every point of a scaled series (0 for the first ``window`` points)."""
        model.eval()
        W, x = fitted.window, torch.tensor(scaled, dtype=torch.float32)
        windows = x.unfold(0, W, 1)[:-1].unsqueeze(-1)                 # (N - W, W, 1)
        pred = torch.cat([model(windows[i:i + 4096])[0][:, 0] for i in range(0, len(windows), 4096)])
        errors = np.zeros(len(scaled))
        errors[W:] = (pred.double().numpy() - scaled[W:]) ** 2
        return fitted.smoothed(errors)

    def calibrate(self, model, prepared: Prepared) -> None:
        """Set the threshold from the held-out normal data's scores (called after each validation)."""
        fitted = prepared.fitted
        held = self.scores(model, prepared.extra["held"], fitted)[fitted.window + fitted.smooth:]
        fitted.threshold = float(np.quantile(held, fitted.quantile))

    def _report(self, values: np.ndarray, labels: np.ndarray | None, score: np.ndarray, fitted: AnomalyFitted,
                path: Path, title: str) -> dict[str, Any]:
        top = int(score.argmax())
        flagged = score > fitted.threshold
        out = {"top_point": top, "top_score": float(score[top]), "threshold": fitted.threshold,
               "flagged_points": int(flagged.sum())}
        if labels is not None and labels.any():
            where = np.flatnonzero(labels)
            lo, hi = int(where.min()) - UCR_MARGIN, int(where.max()) + UCR_MARGIN
            inside = np.zeros(len(score), dtype=bool)
            inside[max(lo, 0):hi + 1] = True
            out.update({"anomaly": [int(where.min()), int(where.max())], "top_point_in_anomaly": lo <= top <= hi,
                        "flagged_in_anomaly": int((flagged & inside).sum()),
                        "flagged_outside": int((flagged & ~inside).sum()),
                        "detected": bool((flagged & inside).any())})
            title += f"top point {top} ({'inside' if out['top_point_in_anomaly'] else 'outside'} the anomaly ±{UCR_MARGIN})"
        plots.anomaly_plot(values, score, labels, fitted.threshold, path, title=title)
        return out

    def evaluate(self, model, prepared: Prepared, split: str, out_dir: Path) -> dict[str, Any]:
        fitted, e = prepared.fitted, prepared.extra
        if fitted.threshold is None:
            self.calibrate(model, prepared)
        if split == "test":
            values, labels = e["test"], e["labels"]
        elif split == "valid":
            values, labels = e["held"] * fitted.std + fitted.mean, None
        else:
            values, labels = e["normal"], None
        score = self.scores(model, fitted.scaled(values), fitted)
        loss = float(np.mean(score[fitted.window:])) if len(score) > fitted.window else float("nan")
        return {"split": split, "n": len(values), "mean_score": loss,
                **self._report(values, labels, score, fitted, out_dir / f"anomaly_scores_{split}.png", f"{split}: ")}

    def evaluate_file(self, model, fitted: AnomalyFitted, path: Path, out_dir: Path) -> dict[str, Any]:
        """Scores of a CSV series 'value,label' (label 1 marks the anomaly; the column may be left out)."""
        values, labels = read_labelled_series(path)
        if len(values) <= fitted.window:
            raise ValueError(f"evaluate: {str(path)!r} has {len(values)} values, expected more than the "
                             f"window {fitted.window}")
        score = self.scores(model, fitted.scaled(values), fitted)
        return {"file": str(path), "n": len(values),
                **self._report(values, labels, score, fitted, out_dir / "anomaly_scores_file.png", f"{path.name}: ")}

    def export_graph(self, g, model, fitted: AnomalyFitted) -> dict[str, str]:
        from .export import anomaly_graph
        return anomaly_graph(g, model, fitted)

    @classmethod
    def summary(cls, split: str, results: dict[str, Any], *, refit: bool = False) -> str:
        r = results
        where = f", anomaly at {r['anomaly']}, inside: {r['top_point_in_anomaly']}" if "anomaly" in r else ""
        return (f"  {split:5s} top-scoring point {r['top_point']}{where}; {r['flagged_points']} points "
                f"above the threshold {r['threshold']:.4g}")

    def predict(self, model, fitted: AnomalyFitted, records: list[dict]) -> list[dict]:
        """``{"values": [numbers...]}`` -> ``{"scores": [...], "anomalies": [indices above the threshold]}``."""
        out = []
        for i, r in enumerate(self.records(records)):
            values = np.asarray(r.values, dtype=np.float64)
            if len(values) <= fitted.window:
                self.record_error(i, f'"values" with more than {fitted.window} numbers', f"shape {values.shape}")
            scaled = fitted.scaled(values)
            finite_float32(scaled, f"predict: input record {i} values")
            score = self.scores(model, scaled, fitted)
            out.append({"scores": score.tolist(), "threshold": fitted.threshold,
                        "anomalies": fitted.flagged(score)})
        return out
