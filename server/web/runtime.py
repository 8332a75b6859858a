"""What request handlers receive from the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.services.collaboration import CollaborationAccess
from server.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    access: CollaborationAccess
    rooms: RoomManager
    committer: GroupCommitter
