"""What a run is, below the trainer, the server and the exporter (none of them needed here):
config sections and their parsing, the task registry, the ``Task`` protocol and its optional
parts, checkpoints, and ``load_run(path) -> Run``. Needs pydantic, PyYAML and safetensors (the
``[train]`` or ``[serve]`` extra), never Lightning or FastAPI."""

from . import registry
from .batches import BucketBatchSampler, ListDataset, pad_sequences
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, DataConfig, DecodeConfig, ModelConfig, OptimConfig, RunConfig, TrainerConfig
from .fitted import Fitted
from .parsing import default_config, load_config, parse_config
from .records import Record
from .registry import make_task
from .run import Run, evaluate, load_run, predict, resolve_checkpoint
from .stream import Stream
from .task import Prepared, Ratio, Task, WindowTask

__all__ = ["registry", "make_task", "Task", "WindowTask", "Prepared", "Ratio", "Fitted", "Record", "Stream", "Run", "load_run", "resolve_checkpoint",
           "evaluate", "predict", "load_config", "parse_config", "default_config", "ConfigError", "RunConfig",
           "DataConfig", "ModelConfig", "OptimConfig", "TrainerConfig", "DecodeConfig", "CheckpointError",
           "load_checkpoint", "save_checkpoint", "ListDataset", "BucketBatchSampler", "pad_sequences"]
