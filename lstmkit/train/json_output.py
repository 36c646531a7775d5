"""Deprecated: lstmkit.train.json_output is now lstmkit.runs.json_output (this name goes in lstmkit 0.3)."""

import sys
import warnings

from ..runs import json_output as _new

warnings.warn("lstmkit.train.json_output is now lstmkit.runs.json_output; the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _new
