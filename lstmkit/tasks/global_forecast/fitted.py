"""What the global forecaster fits on its training data, and the one mapping between a series'
window and the model's inputs and outputs, which training, ``predict`` and the estimator share.

What the model reads (``context``): the last ``window`` steps of a history, scaled within them (as
DeepAR's windows), or the ``whole`` history, scaled by its first ``anchor`` steps, so that a
session can carry the network's state from one observation to the next (the scale of the steps
already read never changes; MQ-RNN's forking sequences train it). Either way a model trained on
some series forecasts any other of any size:

- ``log``: ``s`` = the mean absolute value of the scaling steps (1 if all zeros), ``u = log1p(y / s)``,
  ``l`` = the mean of ``u`` over the last ``season`` of the scaling steps (the level), and the
  model sees ``z = u - l``; forecasts go back through ``y = s·expm1(z + l)``. Relative errors for
  large values, zeros allowed, negative values refused.
- ``mean``: ``z = y / s`` and ``y = s·z`` (any sign).

Per step the model reads ``z``, the sin and cos of the step's phase in its series' season, and the
covariates standardised with the training data's means and deviations; the known-future
covariates of the K forecast steps (with their phases) go to its head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...runs.fitted import Fitted

__all__ = ["GlobalFitted", "Window", "not_counts"]


def not_counts(values: np.ndarray) -> np.ndarray:
    """The positions of ``values`` that are not counts (whole numbers >= 0)."""
    return np.flatnonzero((values < 0) | (values != np.round(values)))


@dataclass
class Window:
    """One forecast's model inputs: ``x`` (T, F) the history's features, ``future`` (K, Fk) the
    forecast steps' known-future features, ``static`` (S,) category codes, and the scaling
    ``(s, l)`` that maps the model's outputs back."""

    x: np.ndarray
    future: np.ndarray
    static: np.ndarray
    s: float
    l: float


@dataclass
class GlobalFitted(Fitted):
    horizon: int                           # K: steps forecast at once (the longest of the groups')
    window: int                            # W: the most history steps the model reads
    quantiles: list[float]                 # the quantile levels of the outputs, increasing
    scaling: str                           # "log" or "mean" (module docstring)
    groups: dict[str, list[int]]           # group -> [horizon, season]
    static: dict[str, list[str]]           # static column -> its categories (code = index + 1; 0: unseen)
    hist_exog: list[str] = field(default_factory=list)     # past-only covariates
    futr_exog: list[str] = field(default_factory=list)     # known-future covariates
    exog_mean: list[float] = field(default_factory=list)   # of hist_exog + futr_exog on the training data
    exog_std: list[float] = field(default_factory=list)
    freq: str | None = None                # pandas frequency of date stamps (None: integer steps)
    context: str = "window"                # "window" or "whole" (module docstring)
    anchor: int = 0                        # whole: the first steps that fix a series' scale
    counts: bool = False                   # the values are counts (a negative binomial run)

    @property
    def input_size(self) -> int:
        return 3 + len(self.hist_exog) + len(self.futr_exog)

    @property
    def future_size(self) -> int:
        return 2 + len(self.futr_exog)

    def cardinalities(self) -> list[int]:
        return [len(values) + 1 for values in self.static.values()]

    def season(self, group: str) -> int:
        return self.groups[group][1]

    def codes(self, values: dict[str, str]) -> np.ndarray:
        """(S,) the category codes of a series' static values (0 for a category training never saw)."""
        return np.asarray([1 + known.index(values[name]) if values[name] in known else 0
                           for name, known in self.static.items()], dtype=np.int64)

    def scale(self, history: np.ndarray, season: int, where: str) -> tuple[float, float]:
        """``(s, l)`` of a history (module docstring); a ``ValueError`` naming ``where`` for values
        the scaling cannot take."""
        s = float(np.mean(np.abs(history))) if len(history) else 1.0
        s = s if s > 0 else 1.0
        if self.scaling == "mean":
            return s, 0.0
        if len(history) and history.min() < 0:
            raise ValueError(f"{where}: data.scaling 'log' needs values >= 0, got {history.min():g} "
                             "(use data.scaling: mean for series with negative values)")
        u = np.log1p(history[-season:] / s)
        return s, float(u.mean()) if len(u) else 0.0

    def to_model(self, values: np.ndarray, s: float, l: float) -> np.ndarray:
        return np.log1p(values / s) - l if self.scaling == "log" else values / s

    def from_model(self, z: np.ndarray, s, l) -> np.ndarray:
        """Values of the model's outputs ``z`` (..., K, Q) with ``s`` and ``l`` broadcast over them
        (whole numbers for counts: the model's are counts divided by ``s``, in float32)."""
        values = s * np.expm1(z + l) if self.scaling == "log" else s * z
        return np.round(values) if self.counts else values

    def _phase(self, steps: np.ndarray, season: int) -> np.ndarray:
        angle = 2 * np.pi * (steps % season) / season
        return np.stack([np.sin(angle), np.cos(angle)], -1)

    def _exog(self, columns: np.ndarray, first: int) -> np.ndarray:
        mean = np.asarray(self.exog_mean[first:first + columns.shape[1]])
        std = np.asarray(self.exog_std[first:first + columns.shape[1]])
        return (columns - mean) / std

    def read(self, n: int) -> slice:
        """The steps of an ``n``-step history that the model reads."""
        return slice(0, n) if self.context == "whole" else slice(max(0, n - self.window), n)

    def scaling_of(self, values: np.ndarray, group: str, where: str) -> tuple[float, float]:
        """``(s, l)`` of a history: from its first ``anchor`` steps (whole) or its last ``window``."""
        chosen = values[:self.anchor] if self.context == "whole" else values[-self.window:]
        return self.scale(chosen, self.season(group), where)

    def inputs(self, values: np.ndarray, steps: np.ndarray, hist: np.ndarray, futr: np.ndarray, group: str,
               s: float, l: float, where: str) -> np.ndarray:
        """(T, F) the per-step features of steps the model reads, scaled by ``(s, l)``."""
        if self.scaling == "log" and len(values) and values.min() < 0:
            raise ValueError(f"{where}: data.scaling 'log' needs values >= 0, got {values.min():g} "
                             "(use data.scaling: mean for series with negative values)")
        bad = not_counts(values) if self.counts else []
        if len(bad):
            raise ValueError(f"{where}: a negative_binomial run reads counts (whole numbers >= 0), got "
                             f"{values[bad[0]]:g} at position {bad[0]}")
        return np.concatenate([self.to_model(values, s, l)[:, None], self._phase(steps, self.season(group)),
                               self._exog(hist, 0), self._exog(futr, len(self.hist_exog))], 1)

    def ahead(self, future_steps: np.ndarray, future_futr: np.ndarray, group: str) -> np.ndarray:
        """(K, Fk) the head's features of the forecast steps: their phases and known-future covariates."""
        return np.concatenate([self._phase(future_steps, self.season(group)),
                               self._exog(future_futr, len(self.hist_exog))], 1)

    def features(self, values: np.ndarray, steps: np.ndarray, hist: np.ndarray, futr: np.ndarray,
                 future_steps: np.ndarray, future_futr: np.ndarray, group: str, static: np.ndarray,
                 where: str) -> Window:
        """The model's inputs for a forecast after the history ``values`` (the steps :meth:`read`
        picks are read) at ``steps``, with its covariates ``hist`` (T, P) and ``futr`` (T, F), and
        the known-future covariates ``future_futr`` (K, F) at ``future_steps`` (K,)."""
        s, l = self.scaling_of(values, group, where)
        r = self.read(len(values))
        x = self.inputs(values[r], steps[r], hist[r], futr[r], group, s, l, where)
        return Window(x, self.ahead(future_steps, future_futr, group), static, s, l)
