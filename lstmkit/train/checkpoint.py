"""Deprecated: lstmkit.train.checkpoint is now lstmkit.runs.checkpoint, and its Lightning plug-in
lstmkit.train.checkpoint_io (this name goes in lstmkit 0.3)."""

import warnings

from ..runs.checkpoint import *  # noqa: F401,F403
from ..runs.checkpoint import __all__ as _checkpoint
from .checkpoint_io import SafetensorsCheckpointIO  # noqa: F401

__all__ = [*_checkpoint, "SafetensorsCheckpointIO"]

warnings.warn("lstmkit.train.checkpoint is now lstmkit.runs.checkpoint (SafetensorsCheckpointIO: "
              "lstmkit.train.checkpoint_io); the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
