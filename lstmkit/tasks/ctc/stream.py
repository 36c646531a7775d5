"""Sessions of a forward-only recogniser: audio or feature frames chunk by chunk, the partial
transcript after each chunk, and at the end the transcript ``lstmkit predict`` gives for the
whole utterance (see :mod:`lstmkit.runs.stream`).

Each chunk's frames become log-mel frames as they arrive (:class:`~lstmkit.data.speech.LogMelStream`:
the frames of the whole audio, piece by piece), are stacked ``stack`` at a time, standardised,
and read one recurrent step each from the carried state (batched across sessions); the prefix
beam search takes the new log-probabilities (:class:`~lstmkit.models.ctc_decoding.BeamStream`,
which gives what the whole search gives). The last chunk says ``"end": true``: the frames held
back (the end of the audio, a partial stack) are read then, and the output is final.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from ...data.speech import SAMPLE_RATE
from ...models import CTCRecognizer
from ...models.ctc_decoding import BeamStream, GreedyStream
from ...runs.records import Number, frames
from ...runs.stream import filled, forward_only, gather, initial_state, plain, scatter
from .fitted import stack_frames

__all__ = ["SpeechStream", "SpeechState", "SpeechChunk"]

MAX_SAMPLES = 10 * SAMPLE_RATE          # samples in one chunk (10 s)


class SpeechChunk(BaseModel):
    """A piece of one utterance: feature frames, or audio (float samples, or 16-bit PCM as
    base64) at ``sample_rate``; ``end`` after its last piece."""

    model_config = {"extra": "forbid", "allow_inf_nan": False}
    x: list[list[Number]] | None = Field(None, description="feature frames, as predict's x")
    samples: list[Number] | None = Field(None, max_length=MAX_SAMPLES, description="audio samples in [-1, 1]")
    pcm16_base64: str | None = Field(None, max_length=MAX_SAMPLES * 3, description="16-bit little-endian PCM, base64")
    sample_rate: int | None = Field(None, description=f"the audio's rate: {SAMPLE_RATE} Hz", examples=[SAMPLE_RATE])
    end: bool = Field(False, description="this is the utterance's last piece: the transcript is final")

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in ("x", "samples", "pcm16_base64") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"expected at most one of x, samples and pcm16_base64, got {given}")
        if given and given[0] != "x" and self.sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate: expected {SAMPLE_RATE} (Hz) with audio, got {self.sample_rate!r}: "
                             "resample it first")
        if (not given or given[0] == "x") and self.sample_rate is not None:
            raise ValueError("sample_rate: only with samples or pcm16_base64")
        return self


@dataclass
class SpeechState:
    """A session: the network's state, the frames not yet read (a partial stack), the
    log-probabilities so far (T', L + 1), what the session reads (``audio`` or ``features``,
    None before its first piece), the log-mel stream of its audio, and whether it has ended."""

    rnn: Any
    pending: np.ndarray
    log_probs: np.ndarray
    kind: str | None
    mel: Any
    ended: bool
    beam: BeamStream
    greedy: GreedyStream


class SpeechStream:
    """Sessions of a ``ctc`` run whose network reads forward only (``model.bidirectional:
    false``); audio only for a run trained on audio (``data.dataset: digits``)."""

    start_input = SpeechChunk
    step_input = SpeechChunk

    @staticmethod
    def supported(model) -> bool:
        return isinstance(model, CTCRecognizer) and forward_only(model.rnn)

    def __init__(self, run, lock):
        self.lock, self.fitted, self.model = lock, run.fitted, run.model
        self.decode = run.task.config.decode
        self.width = self.fitted.features // self.fitted.stack

    def binary_step(self, data: bytes) -> dict:
        """A WebSocket binary frame: 16-bit little-endian PCM at 16 kHz."""
        return {"pcm16_base64": base64.b64encode(data).decode(), "sample_rate": SAMPLE_RATE}

    def _fresh(self) -> SpeechState:
        return SpeechState(initial_state(self.model.rnn), np.zeros((0, self.width)),
                           np.zeros((0, len(self.fitted.labels) + 1)), None, None, False, self._beam(), GreedyStream())

    def _beam(self) -> BeamStream:
        return BeamStream(self.decode.beam, prune=self.decode.prune)

    @torch.no_grad()
    def advance(self, states: list, steps: list[torch.Tensor]) -> list[tuple[np.ndarray, Any]]:
        """One stacked step for each session, as one batch: ``(log-probs (upsample, L + 1), new state)``."""
        with self.lock:
            x, state, out = torch.stack(steps), gather(states), []                       # (N, F)
            for _ in range(self.model.upsample):                                         # each step read `upsample` times
                y, state = self.model.rnn.step(x, state)
                out.append(self.model.head(y).log_softmax(-1))                           # (N, L + 1)
            log_probs = torch.stack(out, 1).double().numpy()                             # (N, upsample, L + 1)
        return [(log_probs[i], scatter(state, i)) for i in range(len(steps))]

    def _frames_of(self, state: SpeechState, chunk: SpeechChunk) -> np.ndarray:
        """The chunk's frames (T, F), the session's kind checked and its log-mel stream fed."""
        kind = None if chunk.x is None and chunk.samples is None and chunk.pcm16_base64 is None else (
            "features" if chunk.x is not None else "audio")
        if kind is not None and state.kind is not None and kind != state.kind:
            raise ValueError(f"this session reads {state.kind}: expected more of them, got {kind}")
        if kind == "audio" and self.fitted.dataset != "digits":
            raise ValueError("audio: this run was not trained on audio (send x, its feature frames)")
        state.kind = state.kind or kind
        if kind == "features":
            return frames(chunk.x, "x", width=self.width)
        if kind == "audio":
            from ...data.speech import LogMelStream
            state.mel = state.mel or LogMelStream()
            samples = (np.asarray(chunk.samples, dtype=np.float32) if chunk.samples is not None
                       else _pcm16(chunk.pcm16_base64))
            out = state.mel.push(samples)
        else:
            out = np.zeros((0, self.width))
        if chunk.end and state.mel is not None:
            out = np.concatenate([out, state.mel.finish()])
        return out

    async def _read(self, state: SpeechState, chunk: SpeechChunk, submit) -> tuple[SpeechState, dict]:
        if state.ended:
            raise ValueError("this session's utterance has ended: open a new session for the next one")
        pending = np.concatenate([state.pending, self._frames_of(state, chunk)]).reshape(-1, self.width)
        k = self.fitted.stack
        ready = len(pending) - len(pending) % k if not chunk.end else len(pending)
        steps, state.pending = pending[:ready], pending[ready:]
        if len(steps):
            for step in self.fitted.scaled(stack_frames(steps, k), "x"):                  # (T', k·F)
                log_probs, state.rnn = await submit(state.rnn, step)
                state.log_probs = np.concatenate([state.log_probs, log_probs])
                state.beam.push(log_probs)
                state.greedy.push(log_probs)
        if chunk.end:
            state.ended = True
            return state, self._final(state)
        labels = [self.fitted.labels[i - 1] for i in state.greedy.labels]
        return state, {"partial": self.fitted.join.join(labels), "labels": labels, "frames": len(state.log_probs),
                       "final": False}

    def _final(self, state: SpeechState) -> dict:
        if not len(state.log_probs):
            raise ValueError("end: the utterance has no frames (send audio or x before, or with, end)")
        found = state.beam.hypotheses(self.decode.n_best)
        texts = [(self.fitted.join.join(self.fitted.labels[i - 1] for i in labels), score) for labels, score in found]
        return {"text": texts[0][0], "labels": [self.fitted.labels[i - 1] for i in found[0][0]], "score": texts[0][1],
                "n_best": [{"text": t, "score": s} for t, s in texts] if self.decode.n_best > 1 else None,
                "frames": len(state.log_probs), "final": True}

    async def start(self, record: SpeechChunk, submit) -> tuple[SpeechState, dict]:
        return await self._read(self._fresh(), record, submit)

    async def update(self, state: SpeechState, record: SpeechChunk, submit) -> tuple[SpeechState, dict]:
        return await self._read(state, record, submit)

    def export(self, state: SpeechState) -> dict:
        mel = None if state.mel is None else state.mel.export()
        return {"rnn": plain(state.rnn), "pending": state.pending.tolist(), "log_probs": state.log_probs.tolist(),
                "kind": state.kind, "mel": mel, "ended": state.ended}

    def restore(self, exported: dict) -> SpeechState:
        """A state from :meth:`export`; ``ValueError`` naming what does not fit this model."""
        state = self._fresh()
        try:
            state.rnn = filled(state.rnn, exported["rnn"])
            state.pending = np.asarray(exported["pending"], dtype=np.float64).reshape(-1, self.width)
            state.log_probs = np.asarray(exported["log_probs"], dtype=np.float64).reshape(-1, state.log_probs.shape[1])
            state.kind, state.ended = exported["kind"], bool(exported["ended"])
            if state.kind not in (None, "audio", "features"):
                raise ValueError(f"kind {state.kind!r}")
            if exported["mel"] is not None:
                from ...data.speech import LogMelStream
                state.mel = LogMelStream.restore(exported["mel"])
            if not (np.isfinite(state.pending).all() and (state.log_probs <= 0).all()):
                raise ValueError("numbers out of range")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"state: expected {{'rnn', 'pending', 'log_probs', 'kind', 'mel', 'ended'}} from GET "
                             f"/v1/sessions/ID/state that fits this model: {type(error).__name__}: {error}") from None
        if len(state.log_probs):                    # the decoders' state: a replay of the frames so far
            state.beam.push(state.log_probs)
            state.greedy.push(state.log_probs)
        return state


def _pcm16(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("pcm16_base64: expected base64 text") from None
    if len(raw) % 2:
        raise ValueError(f"pcm16_base64: expected 16-bit samples (an even number of bytes), got {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
