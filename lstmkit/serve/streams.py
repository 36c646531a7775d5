"""What a session of each task's model does with its steps (:data:`STREAMS`, by task name).

A stream has the schemas of a session's start and of its step records (``start_input``,
``step_input``); ``start`` and ``step`` (coroutines) turn them into the model's calls, each one
step of one session submitted to the :class:`~lstmkit.serve.sessions.StepBatcher`, which runs
the steps of concurrent sessions together through ``advance(states, inputs)``. States export to JSON and
back, so another replica can resume a session.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator
from torch import Tensor

from ..data import text
from ..models.generation import sample
from ..train.tasks._common import finite_float32
from .models import ServedModel

__all__ = ["STREAMS", "TokenStream", "TokenState", "TokenStep", "stream_for"]


@dataclass
class TokenState:
    """A language model session: the layers' states after the text so far (batch 1) and the
    logits of the token that comes next (V,)."""

    layers: list
    logits: Tensor


class TokenStart(BaseModel):
    model_config = {"extra": "forbid"}
    prefix: str = Field("", description="text the session starts with (read once), after a sentence start")


class TokenStep(BaseModel):
    """Read text, or generate tokens: one of ``text`` and ``generate``."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}
    text: str | None = Field(None, min_length=1, description="text to read: each token's log-probability is returned")
    generate: int | None = Field(None, ge=1, le=1000, description="tokens to generate, each appended to the session")
    temperature: float = Field(1.0, ge=0.0, le=100.0, description="generate: sampling temperature (0: the most "
                                                                  "probable token)")
    top_k: int | None = Field(None, ge=1, description="generate: sample among the k most probable tokens")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="generate: nucleus sampling")
    seed: int | None = Field(None, ge=0, description="generate: seed of this step's sampling")
    stop_at_eos: bool = Field(False, description="generate: stop after <eos>")

    @model_validator(mode="after")
    def _one(self):
        if (self.text is None) == (self.generate is None):
            raise ValueError("expected exactly one of 'text' (tokens to read) and 'generate' (tokens to produce)")
        return self


class TokenStream:
    """Sessions of a ``language_model`` run: text read token by token from the carried state,
    tokens generated one recurrent step at a time."""

    start_input = TokenStart
    step_input = TokenStep

    def __init__(self, served: ServedModel):
        self.served = served
        self.task, self.meta, self.model = served.task, served.meta, served.model
        self.vocab = self.meta["vocab"]
        self.index = self.task._index(self.meta)
        self.eos = self.index[text.EOS]

    def _ids(self, value: str) -> tuple[list[str], list[int]]:
        tokens = self.task.tokenize(value, self.meta)
        return tokens, self.task.ids(tokens, self.meta, self.index).tolist()

    async def start(self, record: TokenStart, submit) -> tuple[TokenState, dict]:
        """A new session, having read the prefix in one pass (not step by step)."""
        return await asyncio.to_thread(self._read_prefix, record)

    @torch.no_grad()
    def _read_prefix(self, record: TokenStart) -> tuple[TokenState, dict]:
        tokens, ids = self._ids(record.prefix)
        with self.served.lock:
            logits, layers, _ = self.model(torch.tensor([[self.eos, *ids]]))                # (1, P, V)
        return TokenState(layers, logits[0, -1]), {"tokens": tokens,
                                                   "unknown": [t for t in tokens if t not in self.index]}

    @torch.no_grad()
    def advance(self, states: list[TokenState], tokens: list[int]) -> list[tuple[Tensor, TokenState]]:
        """One token for each session, as one batch: ``(next logits, new state)`` per session."""
        with self.served.lock:
            logits, new = self.model.step(torch.tensor(tokens), _gather([s.layers for s in states]))   # (N, V)
        rows = [logits[i].clone() for i in range(len(states))]
        return [(row, TokenState(_scatter(new, i), row)) for i, row in enumerate(rows)]

    async def step(self, state: TokenState, record: TokenStep, submit) -> tuple[TokenState, dict]:
        """Run one step record of a session; ``submit(state, token)`` is the batcher's."""
        if record.text is not None:
            tokens, ids = self._ids(record.text)
            log_probs = []
            for token in ids:
                log_probs.append(float(state.logits.double().log_softmax(-1)[token]))
                _, state = await submit(state, token)
            return state, {"tokens": [t if t in self.index else text.UNK for t in tokens],
                           "log_probs": [round(p, 6) for p in log_probs],
                           "unknown": sum(t not in self.index for t in tokens)}
        generator = torch.Generator().manual_seed(record.seed) if record.seed is not None else None
        out: list[str] = []
        for _ in range(record.generate):
            token = int(sample(state.logits[None], temperature=record.temperature, top_k=record.top_k,
                               top_p=record.top_p, generator=generator))
            out.append(self.vocab[token])
            _, state = await submit(state, token)
            if record.stop_at_eos and token == self.eos:
                break
        separator = "" if self.meta["level"] == "char" else " "
        return state, {"tokens": out, "text": separator.join("\n" if t == text.EOS else t for t in out)}

    def export(self, state: TokenState) -> dict:
        return {"layers": [[t.tolist() for t in layer] for layer in state.layers], "logits": state.logits.tolist()}

    @torch.no_grad()
    def restore(self, exported: dict) -> TokenState:
        """A state from :meth:`export`; ``ValueError`` naming what does not fit this model."""
        like = self.model.decoder.weight
        try:
            layers = [tuple(torch.tensor(t, dtype=like.dtype) for t in layer) for layer in exported["layers"]]
            logits = torch.tensor(exported["logits"], dtype=like.dtype)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'layers': [[numbers...]...], 'logits': [numbers...]}} from "
                             f"GET /v1/sessions/ID/state, got {type(error).__name__}: {error}") from None
        expected = [tuple(t.shape) for layer in self.model.step(torch.tensor([self.eos]))[1] for t in layer]
        got = [tuple(t.shape) for layer in layers for t in layer]
        if got != expected or tuple(logits.shape) != (len(self.vocab),):
            raise ValueError(f"state: expected layer states shaped {expected} and {len(self.vocab)} logits, got "
                             f"{got} and {tuple(logits.shape)}")
        if not all(torch.isfinite(t).all() for layer in layers for t in layer) or not torch.isfinite(logits).all():
            raise ValueError("state: expected finite numbers, got NaN or infinity")
        return TokenState(layers, logits)


@dataclass
class PointState:
    """An anomaly session: the last ``window`` scaled values, the last ``smooth`` squared
    prediction errors (the score is their mean), and how many points it has read."""

    window: list[float]
    errors: list[float]
    seen: int


class PointStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[float] = Field(default_factory=list, description="points the session starts with (scored too)")


class PointStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[float] = Field(min_length=1, description="new points, in order")


class PointStream:
    """Sessions of an ``anomaly`` run: each new point is scored as ``lstmkit predict`` scores it
    inside the whole series (the squared error of the model's one-step prediction from the
    ``window`` points before it, averaged over the last ``smooth`` points; 0 for the first
    ``window``). The model reads fixed windows from a zero state, as it was trained, so a
    session keeps the last window, not a recurrent state; windows of concurrent sessions run
    as one batch."""

    start_input = PointStart
    step_input = PointStep

    def __init__(self, served: ServedModel):
        self.served, self.meta, self.model = served, served.meta, served.model
        self.W, self.smooth = self.meta["window"], self.meta["smooth"]

    @torch.no_grad()
    def advance(self, states: list, windows: list[list[float]]) -> list[tuple[float, None]]:
        """The one-step prediction after each window, as one batch."""
        x = torch.tensor(windows, dtype=torch.float32)[..., None]                        # (N, W, 1)
        with self.served.lock:
            pred = self.model(x)[0][:, 0]
        return [(float(p), None) for p in pred.double()]

    def _scaled(self, values: list[float]) -> list[float]:
        scaled = (np.asarray(values, dtype=np.float64) - self.meta["mean"]) / self.meta["std"]
        finite_float32(scaled, "values")
        return scaled.tolist()

    async def _read(self, state: PointState, values: list[float], submit) -> tuple[PointState, dict]:
        scores, first = [], state.seen
        for x in self._scaled(values):
            error = 0.0
            if state.seen >= self.W:
                prediction, _ = await submit(None, state.window)
                error = (prediction - x) ** 2
            state.errors = (state.errors + [error])[-self.smooth:]
            scores.append(sum(state.errors) / self.smooth if state.seen >= self.W else 0.0)
            state.window = (state.window + [x])[-self.W:]
            state.seen += 1
        threshold = self.meta["threshold"]
        return state, {"scores": scores, "threshold": threshold,
                       "anomalies": [first + i for i, score in enumerate(scores) if score > threshold]}

    async def start(self, record: PointStart, submit) -> tuple[PointState, dict]:
        """A new session, having read the start's points (their scores are the output)."""
        return await self._read(PointState([], [], 0), record.values, submit)

    async def step(self, state: PointState, record: PointStep, submit) -> tuple[PointState, dict]:
        return await self._read(state, record.values, submit)

    def export(self, state: PointState) -> dict:
        return {"window": state.window, "errors": state.errors, "seen": state.seen}

    def restore(self, exported: dict) -> PointState:
        try:
            state = PointState([float(v) for v in exported["window"]], [float(v) for v in exported["errors"]],
                               int(exported["seen"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'window': [...], 'errors': [...], 'seen': n}} from "
                             f"GET /v1/sessions/ID/state, got {type(error).__name__}: {error}") from None
        if (len(state.window) != min(state.seen, self.W) or len(state.errors) > self.smooth
                or not all(math.isfinite(v) for v in state.window + state.errors)):
            raise ValueError(f"state: expected a window of min(seen, {self.W}) finite values and at most "
                             f"{self.smooth} errors, got {len(state.window)} values, {len(state.errors)} errors, "
                             f"seen {state.seen}")
        return state


@dataclass
class SeriesState:
    """A forecast session: the last ``window`` values (as sent) and the step index after them."""

    history: list[float]
    step: int


class SeriesStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[float] = Field(default_factory=list, description="the latest values, oldest first")
    start: int = Field(0, description="the step index of values[0], for the phase features")


class SeriesStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    values: list[float] = Field(min_length=1, description="new values, in order")


class SeriesStream:
    """Sessions of a ``forecast`` run: after the values sent so far, the next ``horizon`` values,
    as ``lstmkit predict`` forecasts them from the same history (None until ``window`` values
    arrived). The model reads its window from a zero state, as it was trained, so a session
    keeps the last window; forecasts of concurrent sessions run as one batch."""

    start_input = SeriesStart
    step_input = SeriesStep

    def __init__(self, served: ServedModel):
        self.served, self.task, self.meta, self.model = served, served.task, served.meta, served.model
        self.W = self.meta["window"]

    @torch.no_grad()
    def advance(self, states: list, windows: list[Tensor]) -> list[tuple[list[float], None]]:
        with self.served.lock:
            scaled = self.model(torch.stack(windows))[0].double().numpy()                 # (N, K)
        return [(row.tolist(), None) for row in self.task.from_model(scaled, self.meta)]

    async def _read(self, state: SeriesState, values: list[float], submit) -> tuple[SeriesState, dict]:
        history = (state.history + values)[-self.W:]
        if len(history) < self.W:
            return SeriesState(history, state.step + len(values)), {"forecast": None}
        scaled = self.task.to_model(np.asarray(history), self.meta, "values")       # refused before any change
        finite_float32(scaled, "values")
        first = state.step + len(values) - self.W
        forecast, _ = await submit(None, self.task.features(scaled, first, self.meta["periods"]))
        return SeriesState(history, state.step + len(values)), {"forecast": forecast}

    async def start(self, record: SeriesStart, submit) -> tuple[SeriesState, dict]:
        return await self._read(SeriesState([], record.start), record.values, submit)

    async def step(self, state: SeriesState, record: SeriesStep, submit) -> tuple[SeriesState, dict]:
        return await self._read(state, record.values, submit)

    def export(self, state: SeriesState) -> dict:
        return {"history": state.history, "step": state.step}

    def restore(self, exported: dict) -> SeriesState:
        try:
            state = SeriesState([float(v) for v in exported["history"]], int(exported["step"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'history': [...], 'step': n}} from GET /v1/sessions/ID/state, got "
                             f"{type(error).__name__}: {error}") from None
        if len(state.history) > self.W or not all(math.isfinite(v) for v in state.history):
            raise ValueError(f"state: expected at most {self.W} finite values, got {len(state.history)}")
        return state


@dataclass
class SequenceState:
    """A classifier session: the network's state, the pooled outputs so far (the last, their
    sum, or their maximum) and how many steps it has read."""

    rnn: Any
    pooled: Tensor | None
    seen: int


class SequenceStart(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    x: list[list[float]] = Field(default_factory=list, description="steps the session starts with, features each")


class SequenceStep(BaseModel):
    model_config = {"extra": "forbid", "allow_inf_nan": False}
    x: list[list[float]] = Field(min_length=1, description="new steps, one list of features each")


def _gather(states: list) -> Any:
    """Per-session states (batch 1) -> one batched state of the same structure."""
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(states)
    return type(first)(_gather(list(parts)) for parts in zip(*states))


def _scatter(state: Any, i: int) -> Any:
    """Session ``i``'s part of a batched state, as its own copy: a view would keep the whole
    batch's tensors alive for as long as any one of its sessions lives."""
    if isinstance(state, Tensor):
        return state[i:i + 1].clone()
    return type(state)(_scatter(part, i) for part in state)


class SequenceStream:
    """Sessions of a ``classify`` run whose network reads forward only and pools ``last``,
    ``mean`` or ``max``: the class probabilities of the sequence so far after each step record,
    as ``lstmkit predict`` gives them for the whole prefix, from one recurrent step per new step
    (batched across sessions). ``supported`` says why another model has no sessions."""

    start_input = SequenceStart
    step_input = SequenceStep

    @staticmethod
    def supported(model) -> bool:
        from ..layers import Recurrent, Stack
        from ..models import SequenceClassifier
        if not isinstance(model, SequenceClassifier) or model.embedding is not None or model.pooling == "attention":
            return False
        layers = model.rnn.layers if isinstance(model.rnn, Stack) else [model.rnn]
        return all(isinstance(layer, Recurrent) and not layer.reverse for layer in layers)

    def __init__(self, served: ServedModel):
        self.served, self.meta, self.model = served, served.meta, served.model
        self.mean, self.std = np.asarray(self.meta["mean"]), np.asarray(self.meta["std"])

    def _zero(self) -> Any:
        """The network's initial state for one sequence (a layer's tuple, or a stack's list of them)."""
        rnn = self.model.rnn
        if hasattr(rnn, "init_state"):
            return rnn.init_state(1)
        return [layer.init_state(1) for layer in rnn.layers]

    @torch.no_grad()
    def advance(self, states: list, steps: list[Tensor]) -> list[tuple[Tensor, Any]]:
        """One step for each session, as one batch: ``(output (O,), new network state)``."""
        with self.served.lock:
            y, new = self.model.rnn.step(torch.stack(steps), _gather(states))               # (N, O)
        return [(y[i].clone(), _scatter(new, i)) for i in range(len(steps))]

    async def _read(self, state: SequenceState, x: list[list[float]], submit) -> tuple[SequenceState, dict]:
        F = self.meta["features"]
        if any(len(step) != F for step in x):
            raise ValueError(f"x: expected steps of {F} features, got {sorted({len(step) for step in x})}")
        scaled = finite_float32((np.asarray(x, dtype=np.float64).reshape(-1, F) - self.mean) / self.std, "x")
        rnn, pooled, seen = state.rnn, state.pooled, state.seen
        for step in scaled:
            y, rnn = await submit(rnn, step)
            how = self.model.pooling
            pooled = y if pooled is None or how == "last" else pooled + y if how == "mean" else torch.maximum(pooled, y)
            seen += 1
        state = SequenceState(rnn, pooled, seen)
        if pooled is None:
            return state, {"label": None, "probabilities": None}
        vector = pooled / seen if self.model.pooling == "mean" else pooled
        with torch.no_grad():
            probabilities = torch.softmax(self.model.head(vector[None]), -1)[0]
        classes = self.meta["classes"]
        return state, {"label": classes[int(probabilities.argmax())],
                       "probabilities": dict(zip(classes, map(float, probabilities)))}

    async def start(self, record: SequenceStart, submit) -> tuple[SequenceState, dict]:
        return await self._read(SequenceState(self._zero(), None, 0), record.x, submit)

    async def step(self, state: SequenceState, record: SequenceStep, submit) -> tuple[SequenceState, dict]:
        return await self._read(state, record.x, submit)

    def export(self, state: SequenceState) -> dict:
        def plain(part):
            return part.tolist() if isinstance(part, Tensor) else [plain(p) for p in part]
        return {"rnn": plain(state.rnn), "pooled": None if state.pooled is None else state.pooled.tolist(),
                "seen": state.seen}

    def restore(self, exported: dict) -> SequenceState:
        """A state from :meth:`export`; ``ValueError`` naming what does not fit this model."""
        def fill(template, data):
            if isinstance(template, Tensor):
                t = torch.tensor(data, dtype=template.dtype)
                if t.shape != template.shape or not torch.isfinite(t).all():
                    raise ValueError(f"expected finite numbers shaped {tuple(template.shape)}, got {tuple(t.shape)}")
                return t
            if not isinstance(data, list) or len(data) != len(template):
                raise ValueError(f"expected a list of {len(template)}")
            return type(template)(fill(a, b) for a, b in zip(template, data))
        try:
            rnn = fill(self._zero(), exported["rnn"])
            seen = int(exported["seen"])
            pooled = None if exported["pooled"] is None else torch.tensor(exported["pooled"], dtype=torch.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'rnn', 'pooled', 'seen'}} from GET /v1/sessions/ID/state that fits "
                             f"this model: {type(error).__name__}: {error}") from None
        if (pooled is None) != (seen == 0) or (pooled is not None and pooled.shape != (self.model.rnn.output_size,)):
            raise ValueError(f"state: expected 'pooled' of {self.model.rnn.output_size} numbers after {seen} steps")
        return SequenceState(rnn, pooled, seen)


STREAMS: dict[str, type] = {"language_model": TokenStream, "anomaly": PointStream, "forecast": SeriesStream,
                            "classify": SequenceStream}


def stream_for(served: ServedModel) -> Any | None:
    """The stream of a served model's task, or None when its task (or this model) has none."""
    stream = STREAMS.get(served.task.name)
    if stream is None or not getattr(stream, "supported", lambda model: True)(served.model):
        return None
    return stream(served)
