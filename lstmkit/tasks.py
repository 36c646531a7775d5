"""Deprecated alias of :mod:`lstmkit.data.synthetic` (the seeded generators of the classic tasks).

``from lstmkit.tasks import adding_hs97`` keeps working with a ``DeprecationWarning``; import from
``lstmkit.data.synthetic`` instead. The alias goes in lstmkit 0.3 (see CHANGELOG.md).
"""

import warnings

from .data.synthetic import *  # noqa: F401,F403
from .data.synthetic import __all__  # noqa: F401

warnings.warn("lstmkit.tasks is now lstmkit.data.synthetic; the old name goes in lstmkit 0.3",
              DeprecationWarning, stacklevel=2)
