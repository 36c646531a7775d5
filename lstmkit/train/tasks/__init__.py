"""Deprecated: the tasks are now one folder each in :mod:`lstmkit.tasks`, and what every task
shares is in :mod:`lstmkit.runs` (this package goes in lstmkit 0.3). Its old modules stay
importable by their old names (``lstmkit.train.tasks.forecast`` is ``lstmkit.tasks.forecast.task``)."""

import sys
import warnings
from importlib import import_module

from ... import tasks as _tasks
from ...runs.registry import make_task  # noqa: F401
from ...runs.batches import BucketBatchSampler, ListDataset, pad_sequences, stratified_split, world  # noqa: F401
from ...runs.config import rnn_options  # noqa: F401
from ...runs.records import Record, excerpt, finite_float32, problems  # noqa: F401
from ...runs.task import Prepared, Task, WindowTask  # noqa: F401
from ...tasks import *  # noqa: F401,F403

__all__ = ["make_task", "Task", "WindowTask", "Record", "Prepared", "ListDataset", "BucketBatchSampler",
           *_tasks.__all__]

_OLD = {"classify": "classify.task", "sentiment": "sentiment.task", "forecast": "forecast.task",
        "anomaly": "anomaly.task", "tagging": "tagging.task", "language_model": "language_model.task",
        "seq2seq": "seq2seq.task", "ctc": "ctc.task", "_ngram": "language_model.ngram",
        "_pocketsphinx": "ctc.pocketsphinx", "_seq2seq_baselines": "seq2seq.baselines",
        "_sequence_metrics": "sequence_metrics"}
for _old, _new in _OLD.items():
    sys.modules[f"{__name__}.{_old}"] = import_module(f"lstmkit.tasks.{_new}")
sys.modules[f"{__name__}._common"] = sys.modules[__name__]

warnings.warn("lstmkit.train.tasks is now lstmkit.tasks (one folder per task) and lstmkit.runs (Task, Prepared, "
              "Record...); the old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
