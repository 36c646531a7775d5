"""Plots of a run (matplotlib, written as PNG files; no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["read_epoch_metrics", "learning_curves", "confusion_matrix", "forecast_plot", "anomaly_plot",
           "ctc_posteriors", "attention_maps", "interval_forecasts"]


def read_epoch_metrics(log_files: list[Path]) -> dict[int, dict[str, float]]:
    """Per-epoch metrics from Lightning CSV logs (later files win: a resumed run overrides)."""
    epochs: dict[int, dict[str, float]] = {}
    for path in log_files:
        if not Path(path).is_file():
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if not row.get("epoch"):
                    continue
                values = {k: float(v) for k, v in row.items() if v not in ("", None) and k not in ("epoch", "step")}
                if any(k.endswith("_epoch") or k.startswith("val_") for k in values):
                    epochs.setdefault(int(float(row["epoch"])), {}).update(values)
    return dict(sorted(epochs.items()))


def learning_curves(epochs: dict[int, dict[str, float]], path: Path, *, metric: str | None = None) -> Path:
    """Training and validation loss (and ``metric``) against the epoch."""
    panels = [("loss", "train_loss_epoch", "val_loss")]
    if metric:                               # logged per epoch only, so Lightning adds no _epoch suffix
        panels.append((metric, f"train_{metric}", f"val_{metric}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, train_key, val_key) in zip(axes[0], panels):
        for key, label in ((train_key, "train"), (val_key, "validation")):
            xs = [e + 1 for e, m in epochs.items() if key in m]
            ax.plot(xs, [epochs[x - 1][key] for x in xs], marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path, *, title: str) -> Path:
    """Counts of (true class, predicted class)."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(classes), 0.8 + 0.5 * len(classes)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45 if max(map(len, classes)) > 3 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def forecast_plot(history: np.ndarray, truth: np.ndarray, forecasts: dict[str, np.ndarray], start: int,
                  path: Path, *, title: str) -> Path:
    """The end of the history, the test window's truth and each method's forecasts."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.plot(np.arange(start - len(history), start), history, color="0.6", lw=1, label="history")
    ax.plot(np.arange(start, start + len(truth)), truth, color="black", lw=1.2, label="truth")
    for name, values in forecasts.items():
        ax.plot(np.arange(start, start + len(values)), values, lw=1, label=name)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(ncol=len(forecasts) + 2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def interval_forecasts(panels: list[dict], path: Path, *, title: str) -> Path:
    """A grid of forecasts with their intervals, one panel per series: each dict has ``name``,
    ``history`` and ``truth`` (arrays), ``median`` and ``bands`` (level -> (low, high) arrays)."""
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for ax, p in zip(axes.flat, panels):
        n = len(p["history"])
        ahead = np.arange(n, n + len(p["median"]))
        ax.plot(np.arange(n), p["history"], color="0.5", lw=1)
        ax.plot(np.arange(n, n + len(p["truth"])), p["truth"], color="black", lw=1.2, label="truth")
        for level, (low, high) in sorted(p["bands"].items(), reverse=True):
            ax.fill_between(ahead, low, high, color="tab:blue", alpha=0.18, lw=0, label=f"{level}%")
        ax.plot(ahead, p["median"], color="tab:blue", lw=1.2, label="median")
        ax.set_title(p["name"], fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def anomaly_plot(values: np.ndarray, scores: np.ndarray, labels: np.ndarray | None, threshold: float,
                 path: Path, *, title: str) -> Path:
    """The series with its labelled anomaly, and the anomaly score with the threshold."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    top.plot(values, color="black", lw=0.7)
    bottom.plot(np.where(scores > 0, scores, np.nan), color="tab:red", lw=0.8, label="score")   # unscored: gap
    bottom.axhline(threshold, color="tab:blue", ls="--", lw=1, label="threshold")
    if labels is not None and labels.any():
        where = np.flatnonzero(labels)
        for ax in (top, bottom):
            ax.axvspan(where.min(), where.max() + 1, color="orange", alpha=0.35, label="labelled anomaly")
    top.set_title(title)
    bottom.set_yscale("log")
    bottom.set_xlabel("step")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ctc_posteriors(examples: list[tuple[np.ndarray, str, str]], labels: list[str], path: Path) -> Path:
    """What a CTC model hears: per example, the probability of each label (and the blank) at
    every output frame, with the reference and the decoded text in the title; CTC's peaks,
    one per label amid blank, are what a trained model shows."""
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.2 * len(examples)), squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, (log_probs, truth, decoded) in zip(axes[:, 0], examples):
        p = np.exp(log_probs)                                              # (T, L + 1)
        ax.plot(p[:, 0], color="0.75", linewidth=1, label="blank")
        for k, label in enumerate(labels, start=1):
            if p[:, k].max() > 0.2:
                ax.plot(p[:, k], color=colours(k % 20), linewidth=1.3, label=label)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("p")
        ax.set_title(f"reference {truth!r}, decoded {decoded!r}", fontsize=9)
        ax.legend(fontsize=7, ncol=6, loc="upper right")
    axes[-1, 0].set_xlabel("output frame")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def attention_maps(examples: list[tuple[np.ndarray, list[str], list[str]]], path: Path) -> Path:
    """Where a decoder looked: per example, its attention weights (target tokens × source
    tokens), the source along the bottom and the decoded target down the side."""
    fig, axes = plt.subplots(1, len(examples), figsize=(3.6 * len(examples), 3.6), squeeze=False)
    for ax, (weights, source, target) in zip(axes[0], examples):
        ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=90 if max(map(len, source), default=1) > 2 else 0,
                      fontsize=8)
        ax.set_yticks(range(len(target)), target, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
