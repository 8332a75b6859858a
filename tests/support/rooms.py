"""A stand-in peer and edits for tests of rooms without sockets (the room calls ``send``
and ``backlog``, and closes it, as it does a WebSocket peer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text

from server.domain.access import Channel, Grant, Role
from server.realtime import protocol
from tests.support import updates


@dataclass(eq=False)
class FakePeer:
    grant: Grant
    wants_saved: bool = True
    id: str = "fake"
    frames: list[bytes] = field(default_factory=list)
    closed: tuple[int, str] | None = None
    unsent: int = 0  # what backlog() says

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def backlog(self) -> int:
        return self.unsent

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    @property
    def saved(self) -> int:
        counts = [
            protocol.parse_saved(f) for f in self.frames if f[0] == protocol.MessageType.SAVED
        ]
        return max(counts, default=0)


def editor_peer(document_id: str) -> FakePeer:
    return FakePeer(Grant("alice", document_id, Role.EDITOR, Channel.API, 1e12))


def edits(count: int) -> list[bytes]:
    """Edits to the text ``t`` at both of its ends (tests.support.updates)."""
    return updates.edits(count, at_both_ends=True)


def text_of(doc: Doc[Any]) -> str:
    return str(doc.get("t", type=Text))
