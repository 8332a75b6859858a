"""Running the server's long-lived services (``run(started)``) inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

Runner = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def running(*runners: Runner) -> AsyncIterator[None]:
    """Start each ``run(started)`` and wait until all have started; cancel them after."""
    started = [asyncio.Event() for _ in runners]
    tasks = [asyncio.create_task(run(event)) for run, event in zip(runners, started, strict=True)]
    try:
        await asyncio.gather(*(event.wait() for event in started))
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
