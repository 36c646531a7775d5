"""How training reports progress: a live bar on a terminal, one line per epoch elsewhere.

A redrawn bar is right for a person at a terminal and wrong for a CI log, a pipe or
``make train > log``, where every redraw becomes a line of carriage returns. Where standard
output is not a terminal, :class:`EpochLines` prints one line per finished epoch instead::

    epoch 3/80  train_loss 0.5120  val_loss 0.4310  val_acc 0.9167  1.9 s
"""

from __future__ import annotations

import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

__all__ = ["LiveBar", "EpochLines", "progress_callback"]


class LiveBar(TQDMProgressBar):
    """Lightning's tqdm bar (loss, metrics, speed, ETA) without the logger's version number."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class EpochLines(Callback):
    """One line per epoch on ``stream``: the epoch, its epoch-level losses and metrics, its time."""

    def __init__(self, stream=None):
        self.stream = stream
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        values = {}                                  # a step-logged metric has a plain and an _epoch copy
        for key, value in trainer.callback_metrics.items():
            name = key.removesuffix("_epoch")
            if not key.endswith("_step") and (key.endswith("_epoch") or name not in values):
                values[name] = float(value)
        names = sorted(values, key=lambda k: (not k.startswith("train"), not k.endswith("_loss"), k))
        shown = "  ".join(f"{name} {values[name]:.4f}" for name in names)
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  "
              f"{time.perf_counter() - self._start:.1f} s", file=self.stream or sys.stdout, flush=True)


def progress_callback(stream=None) -> Callback:
    """The live bar when ``stream`` (standard output by default) is a terminal, else epoch lines."""
    return LiveBar(leave=True) if (stream or sys.stdout).isatty() else EpochLines(stream)
