"""Deprecated: lstmkit.train.registry is now lstmkit.runs.registry (this name goes in lstmkit 0.3)."""

import sys
import warnings

from ..runs import registry as _new

warnings.warn("lstmkit.train.registry is now lstmkit.runs.registry; the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
