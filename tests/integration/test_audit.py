"""The audit chain: altering, deleting or reordering any stored event is detected and the
first broken link named, by the service and by ``opendpia audit verify``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import delete, select, update

from server.cli import main
from server.storage.models import AuditEvent
from tests.support.review import World, review_world

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        for step in ("screening", "need", "processing"):
            await built.workflow.set_ig_step(built.owner, built.dpia_id, "review_concept")
            await built.audit.record(
                built.dpia_id, "note", actor="user:1", section=step, data={"summary": step}
            )
        await built.workflow.move(built.owner, built.dpia_id, "abandoned", "Not needed after all")
        yield built


async def _ids(w: World) -> list[int]:
    async with w.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEvent.id)
                .where(AuditEvent.dpia_id == w.dpia_id)
                .order_by(AuditEvent.position)
            )
        )


async def _run(w: World, statement: object) -> None:
    async with w.sessions.begin() as session:
        await session.execute(statement)  # type: ignore[call-overload]


async def test_an_untouched_chain_holds(world: World) -> None:
    assert len(await _ids(world)) == 7
    assert await world.audit.verify(world.dpia_id) is None


@pytest.mark.parametrize("position", [1, 4, 7])
async def test_altering_any_event_is_named(world: World, position: int) -> None:
    target = (await _ids(world))[position - 1]
    await _run(
        world,
        update(AuditEvent).where(AuditEvent.id == target).values(data='{"summary":"forged"}'),
    )
    broken = await world.audit.verify(world.dpia_id)
    assert broken is not None and broken.position == position and broken.record_id == target
    assert "altered" in broken.reason


@pytest.mark.parametrize("position", [1, 4, 7])
async def test_deleting_any_event_is_named(world: World, position: int) -> None:
    target = (await _ids(world))[position - 1]
    await _run(world, delete(AuditEvent).where(AuditEvent.id == target))
    broken = await world.audit.verify(world.dpia_id)
    assert broken is not None and broken.position == position


async def test_reordering_events_is_named(world: World) -> None:
    ids = await _ids(world)
    # Swap the positions of events 3 and 5 (through a free position, for the unique index).
    await _run(world, update(AuditEvent).where(AuditEvent.id == ids[2]).values(position=999))
    await _run(world, update(AuditEvent).where(AuditEvent.id == ids[4]).values(position=3))
    await _run(world, update(AuditEvent).where(AuditEvent.id == ids[2]).values(position=5))
    broken = await world.audit.verify(world.dpia_id)
    assert broken is not None and broken.position == 3 and broken.record_id == ids[4]


async def test_re_hashing_an_altered_event_still_breaks_the_next_link(world: World) -> None:
    from server.domain.audit import content_digest
    from server.services.audit import _record

    ids = await _ids(world)
    async with world.sessions.begin() as session:
        row = await session.get_one(AuditEvent, ids[1])
        row.data = '{"summary":"forged"}'
        row.content_hash = content_digest(row.actor, row.data)
        row.hash = _record(row).computed_hash()
    broken = await world.audit.verify(world.dpia_id)
    assert broken is not None and broken.position == 3


async def test_the_command_line_names_the_first_broken_link(
    world: World,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENDPIA_ENV", "development")
    assert await asyncio.to_thread(main, ["audit", "verify", world.dpia_id]) == 0
    assert "7 events holds" in capsys.readouterr().out
    target = (await _ids(world))[3]
    await _run(world, update(AuditEvent).where(AuditEvent.id == target).values(actor="user:99"))
    assert await asyncio.to_thread(main, ["audit", "verify", world.dpia_id]) == 1
    assert f"event #4 (record id {target})" in capsys.readouterr().err
