"""Training: the Lightning trainer of a task's model, its callbacks, and the run directory it
writes (see :mod:`lstmkit.runs.run` for what a run directory holds). Resuming, refitting,
distributed training and interruptions that keep a usable checkpoint all live here."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException

from .. import runs
from ..runs import json_output, plots, registry
from ..runs.checkpoint import CheckpointError, load_checkpoint
from ..runs.config import config_yaml
from ..runs.parsing import parse_config
from ..runs.run import CKPT, load_weights
from ..runs.task import Prepared, Ratio, Task
from .averaging import TriggeredAverage
from .checkpoint_io import SafetensorsCheckpointIO
from .progress import progress_callback
from .tracking import loggers as tracking_loggers
from .tracking import record as record_tracking

__all__ = ["Interrupted", "NonFiniteLoss", "RankFailed", "TaskModule", "train", "default_run_dir"]

_SHARED_RUN_DIR = "LSTMKIT_RUN_DIR"


class _Checkpoint(ModelCheckpoint):
    FILE_EXTENSION = CKPT


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal (SIGINT: Ctrl-C, or SIGTERM) after writing ``checkpoint``.

    ``exit_status`` is what a shell reports for a process the signal ended (130, 143), so a job
    scheduler never records an interrupted run as a success.
    """

    def __init__(self, signum: int, checkpoint: Path, run_dir: Path):
        self.signum, self.checkpoint, self.run_dir = signum, checkpoint, run_dir
        self.exit_status = 128 + signum
        written = f"checkpoint {checkpoint} written" if checkpoint.is_file() else "no checkpoint could be written"
        super().__init__(f"training interrupted by {signal.Signals(signum).name}: {written}; continue with "
                         f"`lstmkit train --resume {run_dir}` (from the end of the last whole epoch, so that "
                         "the result is the uninterrupted run's)")


class _SaveOnInterrupt(Callback):
    """Write ``path`` when Ctrl-C or an error stops training, so the work done is never lost.

    (Lightning's OnExceptionCheckpoint would also make ``fit(ckpt_path=None)`` resume from any
    checkpoint found in the directory; runs here resume only when asked to.) A non-finite loss
    writes nothing: the checkpoints before it are the last good ones.
    """

    def __init__(self, path: Path):
        self.path = path

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, NonFiniteLoss):
            return
        try:
            trainer.save_checkpoint(self.path)
        except (CheckpointError, RuntimeError) as error:   # a full disk, a lost rank: what stopped training matters more
            warnings.warn(f"no interrupted checkpoint: {error}", RuntimeWarning, stacklevel=2)


class RankFailed(RuntimeError):
    """Another process of a distributed run stopped; this one stops too instead of waiting for it."""


class NonFiniteLoss(ValueError):
    """The training loss became NaN or infinite; the run stops, keeping its last good checkpoints."""


class TaskModule(L.LightningModule):
    """The Lightning wrapper of a task's model: logging, optimiser and schedule from the config,
    and the config, the fitted data set-up and the RNG states stored in every checkpoint."""

    def __init__(self, task: Task, prepared: Prepared, clock=None):
        super().__init__()
        self.task, self.prepared = task, prepared
        self.model = task.make_model(prepared.fitted)
        self.clock = clock or (lambda: 0.0)          # the run's training seconds so far, over every attempt
        nonmono = task.config.optim.nt_average
        self.averaging = TriggeredAverage(nonmono) if nonmono else None
        self._val_sums: dict[str, list] = {}         # this validation's summed loss and metrics, and examples

    def _log_step(self, stage: str, batch) -> torch.Tensor:
        batch = self.trainer.precision_plugin.convert_input(batch)     # float64 inputs with trainer.precision 64
        loss, metrics = self.task.batch_loss(self.model, batch)
        B = self.task.batch_size(batch)
        if stage == "val":                           # logged at the epoch's end, over every process's examples
            for name, value in {"loss": loss, **metrics}.items():
                part, weight = (value.numerator, value.denominator) if isinstance(value, Ratio) else (float(value) * B, B)
                total = self._val_sums.setdefault(name, [0.0, 0])
                total[0] += part
                total[1] += weight
            return loss
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=B)
        for name, value in metrics.items():
            if isinstance(value, Ratio):             # Lightning's weighted mean of the ratios is the ratio of sums
                if value.denominator:
                    self.log(f"train_{name}", float(value), on_step=False, on_epoch=True, prog_bar=True,
                             batch_size=int(value.denominator))
                continue
            self.log(f"train_{name}", value, on_step=False, on_epoch=True, prog_bar=True, batch_size=B)
        return loss

    def training_step(self, batch, batch_index):
        loss = self._log_step("train", batch)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"the loss became {float(loss.detach())} at epoch {self.current_epoch + 1}, "
                                f"batch {batch_index + 1}")
        processes = self.trainer.world_size
        if processes > 1:
            # DDP averages the processes' gradients; a loss that is a mean over this process's
            # examples (or tokens) is rescaled so that the average is the gradient of the mean over
            # all processes' examples, also when their counts differ
            count = torch.tensor([float(self.task.batch_size(batch))], dtype=torch.float64)
            total = count.clone()
            torch.distributed.all_reduce(total)
            loss = loss * float(count * processes / total)
        return loss

    def validation_step(self, batch, batch_index):
        self._log_step("val", batch)

    # the triggered average (optim.nt_average): validation, and the checkpoints written after it,
    # see the averaged weights; they stay in place until training goes on
    def on_train_batch_end(self, outputs, batch, batch_index) -> None:
        if self.averaging is not None:
            self.averaging.update(self.model.parameters())

    def on_train_epoch_start(self) -> None:
        if self.averaging is not None and self.averaging.swapped:
            self.averaging.swap(self.model.parameters())

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}
        if self.averaging is not None and self.averaging.active and not self.averaging.swapped:
            self.averaging.swap(self.model.parameters())

    def on_validation_epoch_end(self) -> None:
        sums = self._val_sums
        if self.trainer.world_size > 1:             # each example counted once: the sums of every process
            parts = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(parts, sums)
            sums = {}
            for part in parts:
                for name, (total, n) in part.items():
                    merged = sums.setdefault(name, [0.0, 0])
                    merged[0] += total
                    merged[1] += n
        for name, (total, n) in sums.items():
            self.log(f"val_{name}", total / n if n else float("nan"), prog_bar=True, sync_dist=False)
        self.task.calibrate(self.model, self.prepared)
        total, n = sums.get("loss", (0.0, 0))
        if self.averaging is not None and n:
            self.averaging.observe(total / n, self.model.parameters())

    def configure_optimizers(self):
        o = self.task.config.optim
        params = self.model.parameters()
        if o.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        else:
            optimizer = torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        if o.schedule == "none":
            return optimizer
        if o.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=o.epochs)
        elif o.schedule == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=o.step_size, gamma=o.gamma)
        elif o.schedule == "decay":
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda epoch: o.gamma ** max(0, epoch + 1 - o.decay_after))
        else:
            patience = o.plateau_patience if o.plateau_patience is not None else max(1, (o.patience or 6) // 3)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=self.task.mode, factor=o.gamma,
                                                                   patience=patience)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.task.monitor}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        np_state = np.random.get_state()
        checkpoint["lstmkit"] = {
            "config": config_yaml(self.task.config, comments=False), "meta": self.task.store_fitted(self.prepared.fitted),
            "train_seconds": round(self.clock(), 1),
            "averaging": self.averaging.state_dict() if self.averaging is not None else None,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                    "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.averaging is not None and checkpoint["lstmkit"].get("averaging"):
            self.averaging.load_state_dict(checkpoint["lstmkit"]["averaging"])
        rng = checkpoint["lstmkit"]["rng"]
        torch.set_rng_state(rng["torch"])
        version, state, gauss = rng["python"]
        random.setstate((version, tuple(state), gauss))
        name, keys, *rest = rng["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def default_run_dir(config, root: str | Path = "runs") -> Path:
    """A new run directory ``root/TASK-DATASET-TIME``, created here: two runs started in the same
    second get two directories (the second with ``-2``), never one between them."""
    shared = os.environ.get(_SHARED_RUN_DIR)
    if shared and _rank() > 0:                 # a rank that DDP relaunched: rank 0's directory
        return Path(shared)
    if not shared and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(f"--run-dir: a run of {os.environ['WORLD_SIZE']} processes started by a launcher "
                         "(torchrun) needs --run-dir, one directory that every process can reach, so that they "
                         "all write one run")
    dataset = getattr(config.data, "dataset", "data")
    base = Path(root) / f"{config.task}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()                       # atomic: exactly one process creates a given name
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run directory beside {str(base)!r}")


class _RunLock:
    """An exclusive lock on a run directory for as long as a run writes into it, so that a second
    ``train`` into the same directory fails at once instead of mixing two runs' files. The
    operating system releases it when the process ends, even by ``kill -9``."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self.file = None

    def __enter__(self):
        import fcntl
        self.file = open(self.path, "a")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise FileExistsError(f"run directory {str(self.path.parent)!r} is in use by another lstmkit train; "
                                  "wait for it, or train into another directory") from None
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def _last_checkpoint(run_dir: Path, phase: str = "") -> tuple[Path, dict] | None:
    """The newest checkpoint of a run's phase at the end of an epoch, path and contents: last, or
    interrupted where that went further. A checkpoint from the middle of an epoch is not resumed
    from: the batches of a partial epoch cannot be replayed in their order, so resuming there
    would not give the uninterrupted run's model (it still predicts, as any checkpoint does).

    A corrupt checkpoint is passed over, said on stderr, for the newest intact one, ``best``
    included (it holds the whole training state of its epoch: the epochs after it are trained
    again, as they were); with none intact, a :class:`CheckpointError` names every one."""
    found, corrupt = [], []
    for name in ("last", "interrupted", "best"):
        path = run_dir / "checkpoints" / phase / f"{name}{CKPT}"
        if not path.is_file() or (name == "best" and not corrupt):    # best stands in for a corrupt newer one only
            continue
        try:
            checkpoint = load_checkpoint(path)
        except CheckpointError as error:
            corrupt.append(f"{path} ({error})")
            continue
        if name != "interrupted" or _at_epoch_end(checkpoint):
            found.append((checkpoint.get("global_step", 0), name == "last", path, checkpoint))
    if corrupt and not found:
        raise CheckpointError(f"--resume: no intact checkpoint to resume from in {str(run_dir)!r}: "
                              f"{'; '.join(corrupt)}. Train again into a new directory")
    chosen = max(found, key=lambda f: f[:2])[2:] if found else None
    if corrupt:
        print(f"lstmkit train: warning: {'; '.join(corrupt)}: resuming from {chosen[0]}, the newest intact checkpoint",
              file=sys.stderr, flush=True)
    return chosen


def _at_epoch_end(checkpoint: dict) -> bool:
    """Whether a training checkpoint was written between epochs (none of an epoch's batches pending)."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress", {})
    return bool(progress.get("is_last_batch")) or progress.get("current", {}).get("ready", 0) == 0


def _trainer(config, run_dir: Path, *, phase: str, monitor: str | None, mode: str, max_epochs: int, n_train: int,
             callbacks: list, quiet: bool) -> tuple[L.Trainer, ModelCheckpoint | None]:
    """A Lightning trainer for one training phase, and its best-checkpoint callback: phase "" (the
    main run) or "refit" (checkpoints and logs in their own ``refit`` folders, no validation, so
    no best checkpoint). With ``optim.select: last`` there is no best checkpoint either: the run's
    model is ``last``."""
    t = config.trainer
    ckpt_dir = run_dir / "checkpoints" / phase
    logs = run_dir / "logs" / phase if phase else run_dir / "logs"
    attempt = 1 + len(list(logs.glob("attempt-*")))
    # "last" is its own callback: Lightning's save_last=True writes last only when best improves
    latest = _Checkpoint(dirpath=ckpt_dir, filename="last", every_n_epochs=t.checkpoint_every,
                         enable_version_counter=False)
    extra = [latest, _SaveOnInterrupt(ckpt_dir / f"interrupted{CKPT}")]
    best = None
    if monitor and config.optim.select == "best":
        best = _Checkpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode, save_top_k=1,
                           every_n_epochs=t.checkpoint_every, enable_version_counter=False)
        extra.append(best)
    if monitor and config.optim.patience:
        extra.append(EarlyStopping(monitor=monitor, mode=mode, patience=config.optim.patience))
    if t.progress_bar and not quiet:
        extra.append(progress_callback())
    trainer = L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, precision=f"{t.precision}-true",
        strategy="ddp" if t.devices * t.num_nodes > 1 else "auto", max_epochs=max_epochs,
        gradient_clip_val=config.optim.clip_grad_norm, deterministic=t.deterministic,
        callbacks=[*extra, *callbacks], plugins=[SafetensorsCheckpointIO()], use_distributed_sampler=False,
        logger=tracking_loggers(config, run_dir, logs, f"attempt-{attempt}"),
        log_every_n_steps=max(1, min(10, n_train // config.data.batch_size)), limit_val_batches=None if monitor else 0,
        num_sanity_val_steps=0, enable_progress_bar=any(isinstance(c, ProgressBar) for c in extra),
        enable_model_summary=False)
    return trainer, best


def _resume_hint(run_dir: Path, phase: str) -> str:
    last = _last_checkpoint(run_dir, phase)
    return f"continue from {last[0]} with `lstmkit train --resume {run_dir}`" if last else "no checkpoint was written yet"


@contextlib.contextmanager
def _rank_deaths_reported(run_dir: Path, phase: str):
    """When another rank dies, Lightning's observer of the ranks (a thread polling every 5 s)
    SIGKILLs this process, racing the error the collective raises here, which says how to resume.
    Its ending is made the same: the other ranks killed, the message on stderr, status 1."""
    from lightning.fabric.strategies.launchers import subprocess_script as launcher
    original = launcher._ChildProcessObserver._terminate_all

    def report_and_exit(observer) -> None:
        for child in observer._child_processes:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGKILL)
        codes = [child.poll() for child in observer._child_processes]
        print(f"lstmkit train: error: another training process stopped (exit status {codes}); "
              f"{_resume_hint(run_dir, phase)}", file=sys.stderr, flush=True)
        os._exit(1)

    launcher._ChildProcessObserver._terminate_all = report_and_exit
    yield
    # restored only when training ended normally: after a rank's death the observer may still
    # wake while this process reports the error, and Lightning's own ending would SIGKILL it
    launcher._ChildProcessObserver._terminate_all = original


def _fit(config, task: Task, prepared: Prepared, train_set, run_dir: Path, *, phase: str, max_epochs: int,
         ckpt_path: Path | None, callbacks: list, quiet: bool,
         clock) -> tuple[TaskModule, L.Trainer, ModelCheckpoint | None]:
    """Seed, build the model (the same initial weights in every phase) and train it on ``train_set``
    (validating on ``prepared.valid`` in the main phase)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = TaskModule(task, prepared, clock)
    monitor = None if phase else task.monitor
    trainer, checkpoint = _trainer(config, run_dir, phase=phase, monitor=monitor, mode=task.mode,
                                   max_epochs=max_epochs, n_train=len(train_set), callbacks=callbacks, quiet=quiet)
    bs = config.data.batch_size
    valid = [task.loader(prepared.valid, shuffle=False, batch_size=bs, seed=config.seed)] if monitor else []
    handler = signal.getsignal(signal.SIGINT)
    interrupted = run_dir / "checkpoints" / phase / f"interrupted{CKPT}"
    try:
        with _rank_deaths_reported(run_dir, phase):
            trainer.fit(module, task.loader(train_set, shuffle=True, batch_size=bs, seed=config.seed), *valid,
                        ckpt_path=str(ckpt_path) if ckpt_path else None)
    except NonFiniteLoss as error:
        last = run_dir / "checkpoints" / phase / f"last{CKPT}"
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written before it"
        raise NonFiniteLoss(f"training stopped: {error}; {kept}. Check the data for NaN or huge values, or try a "
                            "lower optim.lr or an optim.clip_grad_norm") from None
    except RuntimeError as error:
        if trainer.world_size > 1 and (isinstance(error, torch.distributed.DistError) or "peer" in str(error)):
            raise RankFailed(f"another training process stopped ({str(error).splitlines()[0][:200]}); "
                             f"{_resume_hint(run_dir, phase)}") from None
        raise
    except SIGTERMException:
        raise Interrupted(signal.SIGTERM, interrupted, run_dir) from None
    except SystemExit:                                 # Lightning's answer to a KeyboardInterrupt: exit(1)
        if trainer.interrupted:
            raise Interrupted(signal.SIGINT, interrupted, run_dir) from None
        raise
    finally:
        signal.signal(signal.SIGINT, handler)          # Lightning leaves Ctrl-C ignored after one
    return module, trainer, checkpoint


def train(config, run_dir: str | Path | None = None, *, resume: bool = False, callbacks: list = (),
          quiet: bool = False) -> dict[str, Any]:
    """Train ``config`` (a validated run config) in ``run_dir``; returns the final metrics.

    ``resume=True`` continues the run in ``run_dir`` from its last checkpoint (the config saved
    there is used; the result equals an uninterrupted run with the same seed). With
    ``optim.refit`` a second phase follows (see :class:`~lstmkit.runs.config.OptimConfig`): its
    model is written to ``checkpoints/final.safetensors`` and scored on the test split; the
    validation figures and ``without_refit`` are the first phase's selected checkpoint's (the best
    epoch, or the last with ``optim.select: last``).
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if resume and not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} is not a run directory (no config.yaml)")
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ[_SHARED_RUN_DIR] = str(run_dir.resolve())     # where DDP's relaunched ranks train too
    with _RunLock(run_dir) if _rank() == 0 else contextlib.nullcontext():
        return _train(config, run_dir, resume=resume, callbacks=callbacks, quiet=quiet)


def _threads_per_process(processes: int) -> int | None:
    """The cores this process may use shared among the machine's ``processes`` (None for one):
    each rank running torch's default thread count would put processes x cores threads on the
    cores, and they would wait on each other at every parallel region."""
    if processes == 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // processes)


def _rank() -> int:
    """This process's rank in a distributed run (0 alone), as the launchers export it."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def _train(config, run_dir: Path, *, resume: bool, callbacks: list, quiet: bool) -> dict[str, Any]:
    start, seconds_before = time.perf_counter(), 0.0
    ckpt_path = refit_path = fitted = last_epoch = None
    refit_begun = False
    if resume:
        config = parse_config(yaml.safe_load((run_dir / "config.yaml").read_text()))
        last = _last_checkpoint(run_dir)
        if last is None and not (run_dir / "checkpoints" / f"interrupted{CKPT}").is_file():
            raise CheckpointError(f"--resume: {str(run_dir)!r} has no checkpoint to resume from")
        if last is not None:              # else stopped within the first epoch: start again from the beginning
            ckpt_path, last_epoch = last[0], last[1]["epoch"]
            fitted = last[1]["lstmkit"]["meta"]
            seconds_before = last[1]["lstmkit"].get("train_seconds", 0.0)
        refit_begun = any((run_dir / "checkpoints" / "refit").glob(f"*{CKPT}"))
        refit_last = _last_checkpoint(run_dir, "refit")
        refit_path = refit_last[0] if refit_last else None
    else:
        if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
            raise FileExistsError(f"run directory {str(run_dir)!r} already has checkpoints: continue it with "
                                  "--resume, or train into another directory")
        (run_dir / "config.yaml").write_text(config_yaml(config) + "\n")
    clock = lambda: seconds_before + time.perf_counter() - start    # noqa: E731 - the run's seconds so far
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)   # no tips or banners
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")               # Lightning internals
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`")  # refit phase
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")   # resume
    # with several processes the training figures shown are rank 0's own (syncing them would cost a
    # collective every step); validation is summed over every process in TaskModule
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting")
    threads = config.trainer.threads or _threads_per_process(config.trainer.devices)
    if threads:
        torch.set_num_threads(threads)
    task = registry.make_task(config)
    prepared = task.prepare(None if fitted is None else task.restore_fitted(fitted))
    chosen = run_dir / "checkpoints" / f"best{CKPT}"     # the run's model (last where there is no best)
    if not refit_begun:                       # the main phase (done already when the refit phase began)
        module, trainer, checkpoint = _fit(config, task, prepared, prepared.train, run_dir, phase="",
                                           max_epochs=config.optim.epochs, ckpt_path=ckpt_path,
                                           callbacks=callbacks, quiet=quiet, clock=clock)
        chosen = Path(checkpoint.best_model_path) if checkpoint and checkpoint.best_model_path else chosen
        epochs_trained = trainer.current_epoch
        used = list(trainer.loggers)
    else:
        module = TaskModule(task, prepared, clock)
        epochs_trained = last_epoch + 1
        used = []
    chosen = chosen if chosen.is_file() else run_dir / "checkpoints" / f"last{CKPT}"
    chosen_checkpoint = load_checkpoint(chosen)
    refit = None
    if config.optim.refit:                    # every process of a distributed run takes part
        refit_set = task.refit_data(prepared)
        refit = {"epochs": chosen_checkpoint["epoch"] + 1, "examples": len(refit_set)}
        final, trainer, _ = _fit(config, task, prepared, refit_set, run_dir, phase="refit",
                                 max_epochs=refit["epochs"], ckpt_path=refit_path, callbacks=callbacks, quiet=quiet,
                                 clock=clock)
        trainer.save_checkpoint(run_dir / "checkpoints" / f"final{CKPT}", weights_only=False)
        used += trainer.loggers
    if not trainer.is_global_zero:
        return {}
    tracked = record_tracking(config, run_dir, used)
    module.model.float()                               # evaluated as predict runs it (trained in float64 too)
    load_weights(module.model, chosen_checkpoint)
    task.calibrate(module.model, prepared)
    epochs = plots.read_epoch_metrics(sorted((run_dir / "logs").glob("attempt-*/metrics.csv")))
    plots.learning_curves(epochs, run_dir / "learning_curves.png", metric=task.metric)
    results = {"task": config.task, "dataset": getattr(config.data, "dataset", None), "checkpoint": chosen.name,
               "epochs_trained": epochs_trained, "train_seconds": round(clock(), 1),
               "parameters": sum(p.numel() for p in module.model.parameters()),
               "valid": task.evaluate(module.model, prepared, "valid", run_dir)}
    if module.averaging is not None:
        started = module.averaging.started
        results["nt_average"] = {"started_after_epoch": None if started is None else started + 1,
                                 "steps_averaged": module.averaging.count}
    has_test = len(prepared.test) > 0                  # data files may come without a test split
    if refit is not None:
        results.update(checkpoint=f"final{CKPT}", refit=refit)
        if has_test:
            (run_dir / "without_refit").mkdir(exist_ok=True)
            results["without_refit"] = {"test": task.evaluate(module.model, prepared, "test",
                                                              run_dir / "without_refit")}
        module = final
        module.model.float()
    if has_test:
        results["test"] = task.evaluate(module.model, prepared, "test", run_dir)
    if tracked is not None:
        results["tracking"] = tracked
    (run_dir / "metrics.json").write_text(json_output.dumps(results, indent=2) + "\n")
    return results


# what moved to lstmkit.runs, by its old name here; load_run gave a 4-tuple
_MOVED = {"evaluate": "evaluate", "predict": "predict", "resolve_checkpoint": "resolve_checkpoint"}


def _load_run_tuple(path, *, decode=()):
    """The old ``load_run``: ``(task, meta, model, checkpoint_path)``."""
    run = runs.load_run(path, decode=decode)
    return run.task, run.task.store_fitted(run.fitted), run.model, run.checkpoint


def __getattr__(name: str):
    if name == "load_run":
        warnings.warn("lstmkit.train.runner.load_run is now lstmkit.runs.load_run, which returns a Run (task, config, "
                      "fitted, model, checkpoint); the old name, returning (task, meta, model, checkpoint), goes in "
                      "lstmkit 0.3", DeprecationWarning, stacklevel=2)
        return _load_run_tuple
    if name in _MOVED:
        warnings.warn(f"lstmkit.train.runner.{name} is now lstmkit.runs.{_MOVED[name]}; the old name goes in "
                      "lstmkit 0.3", DeprecationWarning, stacklevel=2)
        return getattr(runs, _MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
