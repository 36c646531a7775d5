"""Driving a task's stream (``Task.stream``) the way the server does, without a server: each
step handed to ``advance`` alone, so a test compares a session's outputs with ``predict``."""

import asyncio
import threading

from lstmkit.runs.stream import opens


def run_session(run, start: dict, steps: list[dict]) -> list[dict]:
    """The outputs of a session of ``run`` that starts with ``start`` and reads ``steps``."""
    stream = opens(run, threading.Lock())
    assert stream is not None, f"the {run.task.name} run's model has no sessions"

    async def submit(state, step):
        return stream.advance([state], [step])[0]

    async def session():
        state, output = await stream.start(stream.start_input.model_validate(start), submit)
        outputs = [output]
        for step in steps:
            state, output = await stream.update(state, stream.step_input.model_validate(step), submit)
            outputs.append(output)
        exported = stream.export(state)
        assert stream.export(stream.restore(exported)) == exported
        return outputs

    return asyncio.run(session())
