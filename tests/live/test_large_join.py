"""Many clients joining a large document at once (issue 18, target 4).

A crowd of fresh pages (each asking with an empty state vector) joins a document of a few
MB, while it is open and after a restart. Every client must get the whole document, the
same bytes for all, and the server must encode the whole state once for all of them, not
once per client. The large answer must not be copied into a frame per client either: it
goes out as a header and the room's one bytes object (``server.web.wsprotocol``), so no
frame of its size is ever built by ``Frame.serialize``.
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

import pytest
from pycrdt import Array, Decoder, Doc, Map, XmlElement, XmlFragment, XmlText

from server.domain.access import Role
from tests.support.live import WAIT_SECONDS, LiveServer, issue_token, upgrade_request
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

JOINERS = 40
UPDATES = 30
PARAGRAPHS_PER_UPDATE = 100  # about 3 MB in all
FIELDS = ("field:need.aims", "field:need.benefits", "field:risks.notes")
_WORDS = ("data", "subject", "controller", "retention", "consent", "risk", "measure", "council")


def _write_large_document(doc: Doc[Any]) -> None:
    """Rich text with marks, headings and lists, and a table, in ``UPDATES`` transactions."""
    rng = random.Random(4)
    for number in range(UPDATES):
        with doc.transaction():
            if number % 6 == 5:
                table = doc.get("table:risks.register", type=Array)
                for row in range(40):
                    words = " ".join(rng.choice(_WORDS) for _ in range(60))
                    table.append(Map({"id": f"{number}-{row}", "ref": f"R{row}", "title": words}))
                continue
            fragment = doc.get(FIELDS[number % len(FIELDS)], type=XmlFragment)
            heading = XmlText(f"Part {number}")
            fragment.children.append(XmlElement("heading", {"level": "2"}, [heading]))
            for _ in range(PARAGRAPHS_PER_UPDATE):
                text = XmlText()
                fragment.children.append(XmlElement("paragraph", None, [text]))
                text.insert(0, " ".join(rng.choice(_WORDS) for _ in range(90)) + " ")
                text.insert(len(text), "marked words", {"bold": {}})
                text.insert(len(text), " and a link", {"link": {"href": "https://example.org"}})


def _content(doc: Doc[Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {
        name: [str(child) for child in doc.get(name, type=XmlFragment).children] for name in FIELDS
    }
    rows = doc.get("table:risks.register", type=Array).to_py() or []
    seen["rows"] = sorted((row["id"], row["title"]) for row in rows)
    return seen


class Joiner:
    """A fresh page: asks with an empty state vector, keeps the sync step 2 it gets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, server: LiveServer, document_id: str) -> Joiner:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        token = issue_token(server.settings, document_id, Role.VIEWER)
        writer.write(upgrade_request(f"/ws/dpia/{document_id}?token={token}"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        # Sync step 1 with an empty state vector, masked with the zero key (RFC 6455 5.3).
        writer.write(b"\x82\x84\x00\x00\x00\x00" + b"\x00\x00\x01\x00")
        return cls(reader, writer)

    async def step2(self) -> bytes:
        """The payload of the first sync step 2 frame (the server sends one frame)."""
        while True:
            header = await self._reader.readexactly(2)
            length = header[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            payload = await self._reader.readexactly(length)
            if header[0] & 0x0F == 0x2 and payload[:2] == b"\x00\x01":
                assert header[0] & 0x80, "one final frame"
                return payload

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def _written(server: LiveServer, document_id: str) -> tuple[YClient, dict[str, Any]]:
    writer = await YClient.connect(server.url(document_id, saved=True))
    _write_large_document(writer.doc)
    await writer.wait_saved(timeout=4 * WAIT_SECONDS)
    return writer, _content(writer.doc)


def _encodings(server: LiveServer, document_id: str) -> int:
    room = server.runtime.rooms.rooms.get(document_id)
    return 0 if room is None else room.full_encodings


async def _crowd(server: LiveServer, document_id: str) -> tuple[list[bytes], int]:
    """What each of ``JOINERS`` clients joining at once got, and how many times the room
    encoded the whole state meanwhile (read while they are connected: the room is loaded)."""
    before = _encodings(server, document_id)
    joiners = await asyncio.gather(*(Joiner.connect(server, document_id) for _ in range(JOINERS)))
    try:
        async with asyncio.timeout(4 * WAIT_SECONDS):
            answers = await asyncio.gather(*(joiner.step2() for joiner in joiners))
        return answers, _encodings(server, document_id) - before
    finally:
        await asyncio.gather(*(joiner.close() for joiner in joiners))


def _decoded(step2: bytes) -> dict[str, Any]:
    decoder = Decoder(step2[2:])
    doc: Doc[Any] = Doc()
    doc.apply_update(decoder.read_message() or b"")
    return _content(doc)


async def test_a_crowd_joining_a_large_open_document_is_answered_from_one_encoding(
    live_server: LiveServer, framings: list[bytes]
) -> None:
    writer, expected = await _written(live_server, "large-open")
    try:
        answers, encodings = await _crowd(live_server, "large-open")
    finally:
        await writer.close()
    assert len(answers) == JOINERS
    assert len(set(answers)) == 1, "every client got the same bytes"
    assert len(answers[0]) > 2_000_000, "the document is large"
    assert _decoded(answers[0]) == expected, "and it is the document written"
    assert encodings == 1, f"the whole state was encoded {encodings} times for {JOINERS}"
    assert max(map(len, framings)) < 256 * 1024, "the large answer was never copied into a frame"


async def test_a_crowd_joining_a_large_document_after_a_restart_is_answered_once(
    live_server: LiveServer, framings: list[bytes]
) -> None:
    writer, expected = await _written(live_server, "large-cold")
    await writer.close()
    live_server.restart()
    answers, encodings = await _crowd(live_server, "large-cold")
    assert len(answers) == JOINERS
    assert len(set(answers)) == 1, "every client got the same bytes"
    assert _decoded(answers[0]) == expected, "the document as it was stored"
    assert encodings == 1, f"the whole state was encoded {encodings} times for {JOINERS}"
    assert max(map(len, framings)) < 256 * 1024, "the large answer was never copied into a frame"
