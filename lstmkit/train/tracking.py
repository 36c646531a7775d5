"""Where a run's metrics go besides its own CSV (which its plots and ``summary`` read):
``trainer.logger: tensorboard`` (event files in ``RUN/logs/tensorboard``) or ``mlflow`` (a local
SQLite store, by default one for the runs of a folder: ``sqlite:///FOLDER/mlflow.db``, no
server; ``trainer.tracking_uri`` names another). Lightning's own loggers write them; the run
directory's ``tracking.json`` says where they went, and the run's config goes with them as
hyper-parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger

__all__ = ["loggers", "record", "flat"]

_NEEDS = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny, sqlalchemy and alembic"}


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``section.key`` pairs (what MLflow's parameters and TensorBoard's hparams take)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return out


def tracking_uri(config, run_dir: Path) -> str:
    return config.trainer.tracking_uri or f"sqlite:///{run_dir.resolve().parent / 'mlflow.db'}"


def loggers(config, run_dir: Path, logs: Path, version: str) -> list[Logger]:
    """The CSV logger of ``logs`` and the one ``trainer.logger`` adds, with the config logged."""
    chosen = config.trainer.logger
    out: list[Logger] = [CSVLogger(logs.parent, name=logs.name, version=version)]
    try:
        if chosen == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger
            out.append(TensorBoardLogger(logs, name="tensorboard", version=version, default_hp_metric=False))
        elif chosen == "mlflow":
            from lightning.pytorch.loggers import MLFlowLogger
            phase = logs.relative_to(run_dir / "logs").as_posix() if logs != run_dir / "logs" else ""
            out.append(MLFlowLogger(experiment_name=f"lstmkit-{config.task}",
                                    run_name=f"{run_dir.name}/{phase}" if phase else run_dir.name,
                                    tracking_uri=tracking_uri(config, run_dir),
                                    tags={"run_dir": str(run_dir.resolve()), "attempt": version}))
    except ModuleNotFoundError as error:
        raise ValueError(f"trainer.logger {chosen!r} needs {_NEEDS[chosen]} (missing: {error.name}): "
                         "pip install 'lstmkit[track]'") from None
    if len(out) > 1:
        out[1].log_hyperparams(flat(config.model_dump(mode="json")))
    return out


def record(config, run_dir: Path, used: list[Logger]) -> dict[str, Any] | None:
    """Write ``RUN/tracking.json`` saying where the chosen logger's records are; None for CSV only."""
    chosen = config.trainer.logger
    if chosen == "csv":
        return None
    where: dict[str, Any] = {"logger": chosen}
    if chosen == "tensorboard":
        where |= {"logdir": str((run_dir / "logs" / "tensorboard").resolve()),
                  "view": f"tensorboard --logdir {run_dir / 'logs'}"}
    else:
        runs = [logger for logger in used if logger.__class__.__name__ == "MLFlowLogger"]
        where |= {"tracking_uri": tracking_uri(config, run_dir), "experiment": f"lstmkit-{config.task}",
                  "run_ids": [logger.run_id for logger in runs],
                  "view": f"mlflow ui --backend-store-uri {tracking_uri(config, run_dir)}"}
    (run_dir / "tracking.json").write_text(json.dumps(where, indent=2) + "\n")
    return where
