"""Bad input closes that one connection with a clear code; everyone else carries on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pycrdt import Text

from server.realtime.protocol import varbytes, varuint
from tests.support.live import LiveServer, make_settings, serving
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

FRAME_LIMIT = 64 * 1024
DEEP_STATE = b"[" * 20_000 + b"]" * 20_000  # beyond Python's parser, within the frame limit


@pytest.fixture
def small_frame_server(sqlite_url: str) -> Iterator[LiveServer]:
    with serving(make_settings(sqlite_url, max_frame_bytes=FRAME_LIMIT)) as server:
        yield server


BAD_FRAMES = {
    "truncated update": (b"\x00\x02\x10abc", 1002, "truncated"),
    "truncated after a good message": (b"\x03\x00\x02", 1002, "truncated"),
    "bad varint": (b"\x00\x02" + b"\xff" * 9, 1002, "longer than 8 bytes"),
    "empty frame": (b"", 1002, "empty frame"),
    "unknown message type": (b"\x07\x00", 1003, "unknown message type 7"),
    "unknown sync step": (b"\x00\x09\x00", 1003, "unknown sync step 9"),
    "update pycrdt rejects": (b"\x00\x02\x04\xff\xff\xff\xff", 1007, "invalid update"),
    "state vector pycrdt rejects": (b"\x00\x00\x03\xff\xff\xff", 1007, "invalid state vector"),
    "awareness state not JSON": (b"\x01\x06\x01\x05\x01\x02{x", 1007, "not JSON"),
    "awareness state nested too deep": (
        b"\x01" + varbytes(varuint(1) + varuint(5) + varuint(1) + varbytes(DEEP_STATE)),
        1007,
        "nested more than",
    ),
    "text frame": ("hello", 1003, "Binary frames only"),
    "oversized frame": (b"\x00\x02" + b"\x00" * (FRAME_LIMIT + 10), 1009, None),
}


@pytest.mark.parametrize("frame,code,reason", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_bad_frame_closes_only_that_connection_and_corrupts_nothing(
    small_frame_server: LiveServer, frame: bytes | str, code: int, reason: str | None
) -> None:
    server = small_frame_server
    url = server.url("doc", saved=True)
    good = await YClient.connect(url)
    good.doc.get("t", type=Text).insert(0, "before;")
    await good.wait_saved()
    bad = await YClient.connect(url)
    await bad.send_raw(frame)
    closed_code, closed_reason = await bad.wait_closed()
    await bad.close()
    assert closed_code == code
    if reason is not None:
        assert closed_reason is not None and reason in closed_reason

    good.doc.get("t", type=Text).insert(len("before;"), "after;")
    await good.wait_saved()
    other = await YClient.connect(url)
    await other.wait_until(lambda: str(other.doc.get("t", type=Text)) == "before;after;")
    await good.close()
    await other.close()

    await asyncio.to_thread(server.restart)
    reloaded = await YClient.connect(server.url("doc"))
    try:
        assert str(reloaded.doc.get("t", type=Text)) == "before;after;"
    finally:
        await reloaded.close()
