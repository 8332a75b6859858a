"""The use cases tell the rooms what changed, after it is committed, on SQLite and PostgreSQL:
who may do what (access_changed), a lock (set_read_only); and what is gated or signed waits
for the room's pending commits first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from server.domain.access import Role
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, InvalidInput
from server.services.notifications import NotificationService
from server.usecases.participants import Member, Participants
from server.usecases.signoffs import SignOffs
from server.usecases.workflow import Workflow
from tests.support.review import World, review_everything, review_world

pytestmark = pytest.mark.asyncio


class Room:
    def __init__(self, log: list[Any]) -> None:
        self._log = log

    async def all_saved(self) -> None:
        self._log.append("pending commits waited for")


class Rooms:
    """Records what the use cases tell the rooms, and what was committed at that moment."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.log: list[Any] = []
        self.rooms: dict[str, Room] = {}

    async def access_changed(self, dpia_id: str) -> None:
        people = await self._world.dpias.participants(self._world.owner, dpia_id)
        parties = await self._world.dpias.parties(self._world.owner, dpia_id)
        self.log.append(
            ("access changed", {p.email: p.role.value for p in people}, [p.name for p in parties])
        )

    def set_read_only(self, dpia_id: str, reason: str | None) -> None:
        self.log.append(("read-only", reason))


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        yield built


def _participants(world: World, rooms: Rooms) -> Participants:
    notifications = NotificationService(
        world.sessions,
        base_url="https://opendpia.example",
        mail_from="OpenDPIA <n@opendpia.example>",
        secret_key="k" * 40,
    )
    return Participants(world.dpias, notifications, rooms)  # type: ignore[arg-type]


async def test_each_change_of_who_takes_part_tells_the_rooms_once_committed(
    world: World,
) -> None:
    rooms = Rooms(world)
    participants = _participants(world, rooms)
    owner = await participants.member(world.owner, world.dpia_id)

    bob = await participants.invite(owner, "bob@partner.example", "editor", "Bob")
    assert rooms.log.pop() == ("access changed", _roles(world, bob="editor"), _lead())
    await participants.change_role(owner, bob, "viewer")
    assert rooms.log.pop() == ("access changed", _roles(world, bob="viewer"), _lead())
    party = await participants.add_party(owner, "processor", name="Data Processor Ltd")
    assert rooms.log.pop()[2] == [*_lead(), "Data Processor Ltd"]
    await participants.remove_party(owner, party)
    assert rooms.log.pop()[2] == _lead()
    await participants.set_reviewer(owner, "need", bob, True)  # not an access change
    assert rooms.log == []
    await participants.remove(owner, bob)
    assert rooms.log.pop() == ("access changed", _roles(world), _lead())


async def test_a_refused_change_tells_no_room(world: World) -> None:
    rooms = Rooms(world)
    participants = _participants(world, rooms)
    editor = await participants.member(world.editor, world.dpia_id)
    with pytest.raises(AccessDenied, match="owners"):
        await participants.invite(editor, "eve@evil.example", "owner")
    with pytest.raises(AccessDenied, match="owners"):
        await participants.change_role(editor, editor.access.participant_id, "owner")
    assert rooms.log == []


async def test_a_status_change_waits_for_pending_commits_then_locks_the_room(
    world: World,
) -> None:
    rooms = Rooms(world)
    rooms.rooms[world.dpia_id] = Room(rooms.log)
    workflow = Workflow(world.workflow, world.dpias, rooms)  # type: ignore[arg-type]
    owner = Member(world.owner, await world.dpias.access(world.owner, world.dpia_id))

    moved = await workflow.move(owner, "abandoned", "the project stopped")

    assert moved is DpiaStatus.ABANDONED
    assert rooms.log == [
        "pending commits waited for",
        ("read-only", locked_message(DpiaStatus.ABANDONED)),
        ("access changed", _roles(world), _lead()),
    ]


async def test_an_approval_also_tells_the_room_of_the_version_it_supersedes(world: World) -> None:
    w = world
    await _ready_for_approval(w)
    await w.workflow.move(w.owner, w.dpia_id, "approved")
    await w.workflow.move(w.owner, w.dpia_id, "in_force")
    original = w.dpia_id
    w.dpia_id = await w.dpias.clone(w.owner, original, "Version 2", w.owner.organisation_ids[0])
    # A new version takes the project's people in their roles (decision 98).
    people = {p.email: p.role for p in await w.dpias.participants(w.owner, w.dpia_id)}
    assert people[w.dpo.email] is Role.DPO and people[w.editor.email] is Role.EDITOR
    await _ready_for_approval(w)
    rooms = Rooms(w)
    workflow = Workflow(w.workflow, w.dpias, rooms)  # type: ignore[arg-type]

    await workflow.move(Member(w.owner, await w.dpias.access(w.owner, w.dpia_id)), "approved")

    told = [entry[:2] if entry[0] == "read-only" else entry[0] for entry in rooms.log]
    assert told == [
        ("read-only", locked_message(DpiaStatus.APPROVED)),
        "access changed",
        ("read-only", locked_message(DpiaStatus.SUPERSEDED)),
        "access changed",
    ]


async def _ready_for_approval(w: World) -> None:
    await review_everything(w)
    await w.workflow.move(w.editor, w.dpia_id, "in_review")
    await w.workflow.move(w.owner, w.dpia_id, "dpo_review")
    await w.signoffs.sign(w.dpo, w.dpia_id, kind="dpo_advice", decision="advise")
    await w.workflow.move(w.dpo, w.dpia_id, "awaiting_approval")
    await w.signoffs.sign(w.owner, w.dpia_id, kind="party_approval", decision="approve")


async def test_signing_and_section_steps_wait_for_pending_commits_first(world: World) -> None:
    rooms = Rooms(world)
    rooms.rooms[world.dpia_id] = Room(rooms.log)
    workflow = Workflow(world.workflow, world.dpias, rooms)  # type: ignore[arg-type]
    signoffs = SignOffs(world.signoffs, rooms)  # type: ignore[arg-type]
    owner = Member(world.owner, await world.dpias.access(world.owner, world.dpia_id))

    with pytest.raises(InvalidInput, match="is empty"):  # nothing written: refused, but after
        await workflow.section_step(owner, "need", "submit")
    await signoffs.sign(owner, kind="measures_approved", decision="approve")

    assert rooms.log == ["pending commits waited for"] * 2


def _roles(world: World, **more: str) -> dict[str, str]:
    roles = {
        world.owner.email: "owner",
        world.dpo.email: "dpo",
        world.editor.email: "editor",
    }
    return {**roles, **{f"{name}@partner.example": role for name, role in more.items()}}


def _lead() -> list[str]:
    return ["London Borough of Camden"]
