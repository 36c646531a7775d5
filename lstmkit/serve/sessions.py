"""Stateful sessions of ``lstmkit serve``: their store (unguessable ids bound to the token that
made them, idle expiry, a cap) and the batcher that runs the steps of concurrent sessions as one
batch through the model."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Session", "SessionStore", "StoreFull", "StepBatcher"]


def owner_of(token: str) -> str:
    """What a session keeps of the token that made it: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    """One client's stream: ``state`` is the model's (its meaning belongs to the task's stream)."""

    id: str
    model: str
    owner: str
    state: Any
    last_used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)    # one request of a session at a time
    steps: int = 0


class StoreFull(RuntimeError):
    """The server holds ``max_sessions`` sessions already."""


class SessionStore:
    """Sessions by id. A session unused for ``idle_timeout`` seconds is dropped at the next
    request (:meth:`expire`); a session belongs to the token that made it, and to any other token
    it does not exist. A ``replica`` name starts every id (``NAME-...``), so that a proxy in front
    of several servers routes a session's requests to the one that holds it by the path alone."""

    def __init__(self, *, max_sessions: int, idle_timeout: float, clock: Callable[[], float] = time.monotonic,
                 replica: str | None = None):
        self.max_sessions, self.idle_timeout, self.clock = max_sessions, idle_timeout, clock
        self.prefix = f"{replica}-" if replica else ""
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def expire(self) -> int:
        """Drop the idle sessions; how many were dropped."""
        now = self.clock()
        idle = [sid for sid, s in self._sessions.items() if now - s.last_used > self.idle_timeout and not s.lock.locked()]
        for sid in idle:
            del self._sessions[sid]
        return len(idle)

    def add(self, model: str, token: str, state: Any) -> Session:
        self.expire()
        if len(self._sessions) >= self.max_sessions:
            raise StoreFull(f"this server holds its maximum of {self.max_sessions} sessions; close one, or retry "
                            f"after {self.idle_timeout:g} s, when idle sessions expire")
        session = Session(self.prefix + secrets.token_urlsafe(24), model, owner_of(token), state, self.clock())
        self._sessions[session.id] = session
        return session

    def get(self, sid: str, token: str) -> Session:
        """The session ``sid`` of ``token``'s owner (``KeyError`` otherwise), marked as used now."""
        self.expire()
        session = self._sessions.get(sid)
        if session is None or not secrets.compare_digest(session.owner, owner_of(token)):
            raise KeyError(sid)
        session.last_used = self.clock()
        return session

    def remove(self, sid: str, token: str) -> None:
        self.get(sid, token)
        del self._sessions[sid]


class StepBatcher:
    """Runs ``advance(states, inputs) -> [(output, state), ...]`` for steps submitted together,
    as one batch of up to ``max_batch``: a step that finds no batch running starts one at once
    (after ``max_wait`` seconds, when that is above 0, to let others join), and the steps that
    arrive while a batch runs form the next one, so batches grow with the load and a lone
    session never waits. Each session's result is what ``advance`` gives for its row."""

    def __init__(self, advance: Callable[[list, list], list], *, max_batch: int = 64, max_wait: float = 0.0):
        self.advance, self.max_batch, self.max_wait = advance, max_batch, max_wait
        self._pending: list[tuple[Any, Any, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None
        self.on_batch: Callable[[int], None] | None = None

    async def submit(self, state: Any, step: Any) -> tuple[Any, Any]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((state, step, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._pending:
            if len(self._pending) < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                results = await asyncio.to_thread(self.advance, [b[0] for b in batch], [b[1] for b in batch])
            except Exception as error:                                 # every waiting step learns of it
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (*_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
