"""Deprecated: lstmkit.train.plots is now lstmkit.runs.plots (this name goes in lstmkit 0.3)."""

import sys
import warnings

from ..runs import plots as _new

warnings.warn("lstmkit.train.plots is now lstmkit.runs.plots; the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
