"""What use cases need from a DPIA's live document before they act."""

from __future__ import annotations

from server.realtime.rooms import RoomManager


async def committed(rooms: RoomManager, dpia_id: str) -> None:
    """Wait until every change the DPIA's room holds (if loaded here) is committed.

    What is signed, reviewed or gated is the committed document: the last edits the actor
    saw on screen (acknowledged, or still in the group-commit window) land first.
    """
    room = rooms.rooms.get(dpia_id)
    if room is not None:
        await room.all_saved()
