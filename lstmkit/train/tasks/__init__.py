"""The built-in tasks, each one module behind :mod:`lstmkit.train.registry`, and what every task
shares (:mod:`._common`)."""

from ..registry import register
from ._common import BucketBatchSampler, ListDataset, Prepared, Record, Task, WindowTask
from .anomaly import AnomalyTask
from .classify import ClassifyTask
from .ctc import CTCTask
from .forecast import ForecastTask
from .language_model import LanguageModelTask
from .sentiment import SentimentTask
from .seq2seq import Seq2SeqTask
from .tagging import TaggingTask

__all__ = ["make_task", "Task", "WindowTask", "Record", "Prepared", "ListDataset", "BucketBatchSampler",
           "ClassifyTask", "SentimentTask", "ForecastTask", "AnomalyTask", "TaggingTask",
           "LanguageModelTask", "CTCTask", "Seq2SeqTask"]

# the order `lstmkit config` lists
for _task in (ClassifyTask, SentimentTask, ForecastTask, AnomalyTask, TaggingTask, LanguageModelTask, Seq2SeqTask,
              CTCTask):
    register(_task)


def make_task(config) -> Task:
    """The task object for a validated run config."""
    from ..registry import get
    return get(config.task)(config)
