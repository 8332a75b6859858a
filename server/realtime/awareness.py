"""The server's copy of a room's awareness (presence, carets), and what is waiting to go out.

Relaying every awareness message to every peer costs N sends per message: 100 people moving
their carets 5 times a second would be 50,000 frames a second. The table applies each update
with the Yjs rules and says what really changed apart from what was only renewed (a newer
clock, the same state). Changes wait in an ``AwarenessBatch`` for the room's next tick, which
keeps each client's latest entry only and goes to every peer as one frame; renewals are
batched into one message every few seconds so that peers' 30-second timeout never drops a
client who is still there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.realtime import protocol
from server.realtime.protocol import AwarenessEntry


@dataclass(slots=True)
class AwarenessChanges:
    changed: list[AwarenessEntry] = field(default_factory=list)
    renewed: list[AwarenessEntry] = field(default_factory=list)


def supersedes(entry: AwarenessEntry, current: AwarenessEntry) -> bool:
    """Whether ``entry`` replaces ``current`` (the same client) under the Yjs rule: a newer
    clock, or a removal with the same clock (the server's removal of a client that left)."""
    return current.clock < entry.clock or (
        current.clock == entry.clock and entry.is_removal and not current.is_removal
    )


class AwarenessTable:
    """client id → latest (clock, JSON state); removals are kept as "null" with their clock."""

    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}
        # The awareness message of everyone present, as each newcomer is sent it: a crowd
        # joining at once is sent one encoding until the table changes, not one each.
        self._present_frame: bytes | None = None

    def apply(self, entries: list[AwarenessEntry]) -> AwarenessChanges:
        changes = AwarenessChanges()
        for entry in entries:
            current = self._entries.get(entry.client_id)
            if current is None:
                if entry.is_removal:
                    continue
                accept = True
            else:
                accept = supersedes(entry, current)
            if not accept:
                continue
            self._entries[entry.client_id] = entry
            self._present_frame = None
            if current is not None and current.state_json == entry.state_json:
                changes.renewed.append(entry)
            else:
                changes.changed.append(entry)
        return changes

    def remove(self, client_ids: set[int]) -> list[AwarenessEntry]:
        """Mark these clients gone; return the removal entries to announce."""
        removed = []
        for client_id in client_ids:
            current = self._entries.get(client_id)
            if current is None or current.is_removal:
                continue
            entry = AwarenessEntry(client_id, current.clock + 1, "null")
            self._entries[client_id] = entry
            self._present_frame = None
            removed.append(entry)
        return removed

    def present(self) -> list[AwarenessEntry]:
        return [entry for entry in self._entries.values() if not entry.is_removal]

    def present_frame(self) -> bytes:
        """The awareness message of every present client; empty bytes when nobody is."""
        frame = self._present_frame
        if frame is None:
            present = self.present()
            frame = self._present_frame = (
                protocol.awareness(protocol.encode_awareness(present)) if present else b""
            )
        return frame

    def forget_removed(self) -> None:
        self._entries = {k: v for k, v in self._entries.items() if not v.is_removal}


class AwarenessBatch:
    """Awareness entries waiting for the next tick: one per client, the newest by its clock.

    A client's later entry replaces its earlier one in place, so a removal is never sent
    before, nor overtaken by, an older state of the same client, and a state that a removal
    superseded within the tick is not sent at all (peers would drop it anyway).
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __contains__(self, client_id: int) -> bool:
        return client_id in self._entries

    def add(self, entries: list[AwarenessEntry]) -> None:
        for entry in entries:
            current = self._entries.get(entry.client_id)
            if current is None or supersedes(entry, current):
                self._entries[entry.client_id] = entry

    def take(self) -> list[AwarenessEntry]:
        """Everything waiting, emptied."""
        entries = list(self._entries.values())
        self._entries.clear()
        return entries
