"""Training, evaluation and prediction of task models: the task registry, configs, the Lightning
runner, checkpoints, estimators (needs the ``[train]`` extra)."""
