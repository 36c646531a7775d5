"""Deprecated: lstmkit.train.estimators is now lstmkit.estimators (this name goes in lstmkit 0.3)."""

import sys
import warnings

from .. import estimators as _new

warnings.warn("lstmkit.train.estimators is now lstmkit.estimators; the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
