"""Eager start: a coroutine that need not wait finishes at once; one that waits resumes."""

from __future__ import annotations

import asyncio

import pytest

from server.web.eager import start

pytestmark = pytest.mark.asyncio


async def test_a_coroutine_that_does_not_wait_finishes_synchronously() -> None:
    done: list[str] = []
    ready = asyncio.Event()
    ready.set()

    async def send() -> None:
        await ready.wait()  # set: returns without suspending
        done.append("sent")

    assert start(send()) is None
    assert done == ["sent"]


async def test_a_coroutine_that_waits_is_finished_by_awaiting_the_continuation() -> None:
    order: list[str] = []
    ready = asyncio.Event()

    async def send() -> None:
        order.append("started")
        await ready.wait()
        await asyncio.sleep(0)
        order.append("finished")

    rest = start(send())
    assert rest is not None and order == ["started"]
    task = asyncio.ensure_future(_finish(rest))
    await asyncio.sleep(0.01)
    assert order == ["started"]
    ready.set()
    await asyncio.wait_for(task, 30)
    assert order == ["started", "finished"]


async def test_cancelling_the_continuation_cancels_the_coroutine_inside() -> None:
    cleaned: list[str] = []

    async def send() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("cleaned up")

    rest = start(send())
    assert rest is not None
    task = asyncio.ensure_future(_finish(rest))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["cleaned up"]


async def test_errors_before_suspending_reach_the_caller() -> None:
    async def send() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        start(send())


async def _finish(rest: object) -> None:
    await rest  # type: ignore[misc]
