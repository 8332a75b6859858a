"""The server's copy of a room's awareness (presence, carets).

Relaying every awareness message to every peer turns y-websocket's 15-second renewals into
N² sends per round in a busy room. The table applies each update with the Yjs rules and says
what really changed (sent at once) apart from what was only renewed (a newer clock, the same
state), which the room batches into one message every few seconds so that peers' 30-second
timeout never drops a client who is still there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.realtime.protocol import AwarenessEntry


@dataclass(slots=True)
class AwarenessChanges:
    changed: list[AwarenessEntry] = field(default_factory=list)
    renewed: list[AwarenessEntry] = field(default_factory=list)


class AwarenessTable:
    """client id → latest (clock, JSON state); removals are kept as "null" with their clock."""

    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}

    def apply(self, entries: list[AwarenessEntry]) -> AwarenessChanges:
        changes = AwarenessChanges()
        for entry in entries:
            current = self._entries.get(entry.client_id)
            if current is None:
                if entry.is_removal:
                    continue
                accept = True
            else:
                accept = current.clock < entry.clock or (
                    current.clock == entry.clock and entry.is_removal and not current.is_removal
                )
            if not accept:
                continue
            self._entries[entry.client_id] = entry
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
            removed.append(entry)
        return removed

    def present(self) -> list[AwarenessEntry]:
        return [entry for entry in self._entries.values() if not entry.is_removal]

    def forget_removed(self) -> None:
        self._entries = {k: v for k, v in self._entries.items() if not v.is_removal}
