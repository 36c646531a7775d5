"""The task kinds a config can name, each a :class:`Task`."""

from ._common import BucketBatchSampler, ListDataset, Prepared, Task
from .anomaly import AnomalyTask
from .classify import ClassifyTask
from .forecast import ForecastTask
from .sentiment import SentimentTask

__all__ = ["TASK_TYPES", "make_task", "Task", "Prepared", "ListDataset", "BucketBatchSampler"]

TASK_TYPES = {"classify": ClassifyTask, "sentiment": SentimentTask, "forecast": ForecastTask,
              "anomaly": AnomalyTask}


def make_task(config) -> Task:
    """The task object for a validated run config."""
    return TASK_TYPES[config.task](config)
