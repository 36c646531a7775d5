"""Training task models with Lightning: the runner (resume, refit, distributed training, a usable
checkpoint on every interruption), its progress display, weight averaging, and the estimators'
common base (needs the ``[train]`` extra). What a run is lives below, in :mod:`lstmkit.runs`."""
