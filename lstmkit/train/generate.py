"""Deprecated: lstmkit.train.generate is now lstmkit.tasks.language_model.generate (this name goes in lstmkit 0.3)."""

import sys
import warnings

from ..tasks.language_model import generate as _new

warnings.warn("lstmkit.train.generate is now lstmkit.tasks.language_model.generate; the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
