"""The JSON-lines link between ``serve`` and its bridge child (email_bridge.isolation.Link):
however the other end goes away, the link ends quietly and no request waits for ever."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from email_bridge.isolation import Link

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def writer() -> AsyncIterator[asyncio.StreamWriter]:
    ours, theirs = socket.socketpair()
    _, stream = await asyncio.open_connection(sock=ours)
    try:
        yield stream
    finally:
        stream.close()
        theirs.close()


@pytest.mark.parametrize(
    "ending",
    [ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")],
)
async def test_a_link_reset_by_the_other_end_ends_and_fails_what_waits(
    writer: asyncio.StreamWriter, ending: Exception
) -> None:
    reader = asyncio.StreamReader()
    link = Link(reader, writer, on_request=lambda op, args: asyncio.sleep(0, result=op))
    running = asyncio.create_task(link.run())
    waiting = asyncio.create_task(link.request("comment", document_id="d", comment_id="c"))
    reader.feed_data(b'{"id":7,"op":"add_comment","args":{}}\n')  # one of theirs, answered
    await asyncio.sleep(0)
    reader.set_exception(ending)  # what Linux reports when the child dies with data unread
    await asyncio.wait_for(running, 30)  # ends without raising (no ExceptionGroup escapes)
    with pytest.raises(ConnectionError, match="closed"):
        await asyncio.wait_for(waiting, 30)
    with pytest.raises(ConnectionError, match="closed"):
        await link.request("comment", document_id="d", comment_id="c")


async def test_a_line_that_is_not_json_ends_the_link_quietly(
    writer: asyncio.StreamWriter,
) -> None:
    reader = asyncio.StreamReader()
    link = Link(reader, writer)
    reader.feed_data(b"not json\n")
    await asyncio.wait_for(link.run(), 30)
    with pytest.raises(ConnectionError):
        await link.request("comment", document_id="d", comment_id="c")
