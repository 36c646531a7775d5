"""Sessions of a language model: text read token by token from the carried state, tokens
generated one recurrent step at a time (see :mod:`lstmkit.runs.stream`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import torch
from pydantic import BaseModel, Field, model_validator
from torch import Tensor

from ..._checks import SEED_MAX
from ...data import text
from ...models.generation import sample
from ...runs.stream import gather, scatter

__all__ = ["TokenStream", "TokenState", "TokenStart", "TokenStep"]


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
    text: str | None = Field(None, min_length=1, max_length=10_000,
                             description="text to read (at most 10,000 characters a step): each token's "
                                         "log-probability is returned")
    generate: int | None = Field(None, ge=1, le=1000, description="tokens to generate, each appended to the session")
    temperature: float = Field(1.0, ge=0.0, le=100.0, description="generate: sampling temperature (0: the most "
                                                                  "probable token)")
    top_k: int | None = Field(None, ge=1, description="generate: sample among the k most probable tokens")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="generate: nucleus sampling")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="generate: seed of this step's sampling "
                                                                 "(0 to 2**64 - 1)")
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

    def __init__(self, run, lock):
        self.lock = lock
        self.fitted, self.model = run.fitted, run.model
        self.vocab, self.index = self.fitted.vocab, self.fitted.index
        self.eos = self.index[text.EOS]

    def _ids(self, value: str) -> tuple[list[str], list[int]]:
        tokens = self.fitted.tokenize(value)
        return tokens, self.fitted.ids(tokens).tolist()

    async def start(self, record: TokenStart, submit) -> tuple[TokenState, dict]:
        """A new session, having read the prefix in one pass (not step by step)."""
        return await asyncio.to_thread(self._read_prefix, record)

    @torch.no_grad()
    def _read_prefix(self, record: TokenStart) -> tuple[TokenState, dict]:
        tokens, ids = self._ids(record.prefix)
        with self.lock:
            logits, layers, _ = self.model(torch.tensor([[self.eos, *ids]]))                # (1, P, V)
        return TokenState(layers, logits[0, -1]), {"tokens": tokens,
                                                   "unknown": [t for t in tokens if t not in self.index]}

    @torch.no_grad()
    def advance(self, states: list[TokenState], tokens: list[int]) -> list[tuple[Tensor, TokenState]]:
        """One token for each session, as one batch: ``(next logits, new state)`` per session."""
        with self.lock:
            logits, new = self.model.step(torch.tensor(tokens), gather([s.layers for s in states]))   # (N, V)
        rows = [logits[i].clone() for i in range(len(states))]
        return [(row, TokenState(scatter(new, i), row)) for i, row in enumerate(rows)]

    async def update(self, state: TokenState, record: TokenStep, submit) -> tuple[TokenState, dict]:
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
        separator = self.fitted.separator
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
