"""Lightning's checkpoint plug-in for lstmkit's checkpoint files (:mod:`lstmkit.runs.checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

from ..runs.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["SafetensorsCheckpointIO"]


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning ``CheckpointIO`` that reads and writes :func:`~lstmkit.runs.checkpoint.save_checkpoint` files."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        save_checkpoint(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path)

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)
