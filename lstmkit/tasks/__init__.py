"""The built-in tasks, one folder each: the task (``task.py``) and the parts it has, beside it:
its streaming session (``stream.py``), its ONNX graph (``export.py``), its scikit-learn estimators
(``estimator.py``) and its baselines. Importing this package registers them (it is lstmkit's entry
point of the ``lstmkit.tasks`` group, see :mod:`lstmkit.runs.registry`), in the order
``lstmkit config`` lists them.

This name was once an alias of :mod:`lstmkit.data.synthetic` (the seeded generators of the
classic tasks): ``from lstmkit.tasks import adding_hs97`` keeps working with a
``DeprecationWarning`` until lstmkit 0.3.
"""

import warnings

from ..data import synthetic as _synthetic
from ..runs.registry import register
from .anomaly import AnomalyTask
from .classify import ClassifyTask
from .ctc import CTCTask
from .forecast import ForecastTask
from .global_forecast import GlobalForecastTask
from .language_model import LanguageModelTask
from .sentiment import SentimentTask
from .seq2seq import Seq2SeqTask
from .tagging import TaggingTask

__all__ = ["ClassifyTask", "SentimentTask", "ForecastTask", "GlobalForecastTask", "AnomalyTask", "TaggingTask", "LanguageModelTask",
           "Seq2SeqTask", "CTCTask"]

for _task in (ClassifyTask, SentimentTask, ForecastTask, GlobalForecastTask, AnomalyTask, TaggingTask, LanguageModelTask, Seq2SeqTask,
              CTCTask):
    register(_task)


def __getattr__(name: str):
    if name in _synthetic.__all__:
        warnings.warn(f"lstmkit.tasks.{name}: the classic tasks' generators are now in lstmkit.data.synthetic; the "
                      "old name goes in lstmkit 0.3", DeprecationWarning, stacklevel=2)
        return getattr(_synthetic, name)
    raise AttributeError(f"module 'lstmkit.tasks' has no attribute {name!r}")
