"""What the process's long-running loops (committer, change recorder, bus, mail worker,
bridge, digests) have in common."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise CancelledError if the current task was cancelled and something swallowed it.

    On Python 3.11 ``asyncio.wait_for``, which libraries such as aiosmtplib use for their
    timeouts, can swallow a cancellation that arrives just as what it waits for completes.
    The task stays "cancelling" and a ``while True`` loop would go on for ever, holding up
    shutdown (seen once: a test server that did not stop). Call this at the head of every
    such loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
