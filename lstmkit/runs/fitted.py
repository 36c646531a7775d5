"""What a task's data set-up fits on the training split (scalers, classes, windows, thresholds), as
a typed object: the one contract between a task's batch, streaming and exported forms, written into
every checkpoint as a plain dict (the checkpoint's ``meta``) and read back from it."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

__all__ = ["Fitted"]


@dataclass
class Fitted:
    """Base of a task's fitted state: a dataclass whose fields are JSON values. A task names its
    subclass as ``Task.fitted_class``; a task without one keeps a plain dict."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fitted:
        """The state a checkpoint stored; a ``ValueError`` names the fields it lacks. Keys this
        version does not know are left out (a newer checkpoint's additions)."""
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"{cls.__name__}: the checkpoint's fitted set-up lacks {missing} (it has {sorted(data)})")
        return cls(**{name: data[name] for name in names if name in data})

    def to_dict(self) -> dict[str, Any]:
        """The state as the checkpoint stores it."""
        return asdict(self)

