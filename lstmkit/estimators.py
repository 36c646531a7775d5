"""Estimators: every task trained, scored and used from Python on in-memory data.

The scikit-learn conventions (``fit(X, y)``, ``predict(X)``, ``score(X, y)``, ``get_params`` /
``set_params``), so they work with ``cross_val_score``, ``GridSearchCV`` and ``clone``, and the same
trainer, checkpoints and run directory as ``lstmkit train``: ``fit`` writes the data into the
run directory (``data/``), a config naming those files (``config.yaml``) and trains it, so the run
can be evaluated, predicted from, resumed and served by the CLI like any other, and
``RunEstimator.load`` turns any run directory back into an estimator. Each registered task
declares its estimators (``Task.estimators``); this module offers them all by name:

    >>> import numpy as np
    >>> from lstmkit.estimators import RecurrentClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.normal(size=(int(rng.integers(5, 12)), 3)) + 2 * (i % 2) for i in range(40)]
    >>> y = [i % 2 for i in range(40)]
    >>> clf = RecurrentClassifier(cell="gru", hidden_size=8, epochs=15, lr=0.01, verbose=False).fit(X, y)
    >>> clf.predict(X[:4]).tolist(), clf.predict_proba(X[:1]).shape
    ([0, 1, 0, 1], (1, 2))

Parameters every estimator takes: the model's (``cell``, ``hidden_size``, ``num_layers``,
``bidirectional``, ``dropout``), the training's (``epochs``, ``batch_size``, ``lr``,
``optimizer``, ``seed``), ``run_dir`` (None: a new temporary directory per fit; ``run_dir_``
tells where) and ``config``: any other config keys, dotted (``{"optim.schedule": "none"}``).
Needs the ``[train]`` extra.
"""

from __future__ import annotations

from importlib import import_module

from .runs import registry
from .train.estimator import RunEstimator

__all__ = ["RunEstimator", "estimators"]


def _load(reference) -> type:
    if isinstance(reference, type):
        return reference
    module, _, name = reference.partition(":")
    return getattr(import_module(module), name)


def estimators() -> dict[str, type]:
    """Every registered task's estimators, by class name, in the order of the tasks."""
    found: dict[str, type] = {}
    for task in registry.names():
        for reference in registry.get(task).estimators:
            estimator = _load(reference)
            found[estimator.__name__] = estimator
    return found


def _references() -> dict[str, object]:
    """Class name -> reference, without importing any estimator."""
    return {(ref.__name__ if isinstance(ref, type) else ref.partition(":")[2]): ref
            for task in registry.names() for ref in registry.get(task).estimators}


def __getattr__(name: str):
    references = _references()
    if name not in references:
        raise AttributeError(f"module 'lstmkit.estimators' has no attribute {name!r} (estimators: "
                             f"{', '.join(references)})")
    return _load(references[name])


def __dir__() -> list[str]:
    return sorted([*globals(), *_references()])
