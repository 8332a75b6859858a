"""A connection as a room sees it."""

from __future__ import annotations

from typing import Protocol

from server.domain.access import Grant


class Peer(Protocol):
    """One client connection in a room.

    Concurrency contract: ``send`` and ``close`` never block and never raise; they are
    called from the event loop by the room. A peer that cannot keep up closes itself
    (the client reconnects and resynchronises) rather than growing memory without bound.
    """

    @property
    def id(self) -> str: ...

    # What the peer may do; the room replaces it when access is decided again.
    grant: Grant

    @property
    def wants_saved(self) -> bool: ...

    def send(self, frame: bytes) -> None: ...

    def backlog(self) -> int:
        """Bytes sent to this peer that have not yet reached its socket."""
        ...

    def close(self, code: int, reason: str) -> None: ...
