"""Start a coroutine at once; finish it in a task only if it has to wait.

An ASGI ``send`` on a writable WebSocket runs to completion without suspending, so waking
a writer task for every frame (1.3 to 4.4 µs per message, shared/peers.md) is waste. Python
3.12's eager tasks do this for whole tasks; on 3.11 we step the coroutine once ourselves
and, when it does suspend (the transport's buffer is full), hand what remains to a task
through ``Continuation``, which resumes it exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


class Continuation:
    """Awaitable finishing a coroutine that was stepped once and suspended on ``pending``."""

    __slots__ = ("_coroutine", "_pending")

    def __init__(self, coroutine: Coroutine[Any, Any, None], pending: Any) -> None:
        self._coroutine = coroutine
        self._pending = pending

    def __await__(self) -> Generator[Any, None, None]:
        coroutine, pending = self._coroutine, self._pending
        while True:
            try:
                yield pending  # the future it was waiting on, to the task that runs us
            except BaseException as error:  # cancellation or an error, delivered inside
                try:
                    pending = coroutine.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    pending = coroutine.send(None)
                except StopIteration:
                    return


def start(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run a coroutine until it finishes (None) or suspends (what remains to await).

    Errors it raises before suspending propagate to the caller. Any other awaitable is
    returned as it is, to be awaited later.
    """
    if not isinstance(awaitable, Coroutine):
        return awaitable
    coroutine = awaitable
    try:
        pending = coroutine.send(None)
    except StopIteration:
        return None
    return Continuation(coroutine, pending)
