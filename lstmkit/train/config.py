"""Deprecated: lstmkit.train.config is now lstmkit.runs.config, with the parsing of configs by task
in lstmkit.runs.parsing (this name goes in lstmkit 0.3)."""

import warnings

from ..runs.config import *  # noqa: F401,F403
from ..runs.config import __all__ as _sections
from ..runs.parsing import default_config, load_config, parse_config  # noqa: F401

__all__ = [*_sections, "default_config", "load_config", "parse_config"]

warnings.warn("lstmkit.train.config is now lstmkit.runs.config (parse_config, load_config and default_config: "
              "lstmkit.runs.parsing); the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
