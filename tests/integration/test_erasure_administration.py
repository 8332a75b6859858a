"""Erasing a person reaches the administration's audit chain too (SQLite and PostgreSQL):
afterwards no administrative event holds their name or address, every chain verifies (the
erasure itself a new event of the administration's chain), and altering any stored
administrative event afterwards still breaks verification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from server.cli import main
from server.domain.administration import AdminChannel, Standing
from server.domain.audit import ERASURE
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.services.accounts import password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.erasure import ErasureService
from server.services.passwords import PasswordResets
from server.services.retention import RetentionService
from server.services.subject_access import SubjectAccessService
from server.storage.models import AdminAuditEvent
from server.usecases.protection import DataProtection
from tests.support.protection import database_text, traces_in
from tests.support.review import World, review_world

pytestmark = pytest.mark.asyncio
KEY = "k" * 40
IVY = ("Ivy Ingram", "ivy.ingram@camden.example")
ROOT = Actor("user:0", AdminChannel.BROWSER, Standing(True, frozenset()), "Root")
FAST = password_hasher("fast-for-tests")


@dataclass
class Setting:
    world: World
    chain: AdminAuditTrail
    protection: DataProtection
    ivy: int


@pytest_asyncio.fixture
async def setting(database_url: str) -> AsyncIterator[Setting]:
    """Ivy is invited and promoted, promotes someone herself, is suspended, and takes part
    in the DPIA: her name and address are in the administration's events as data."""
    async with review_world(database_url) as w:
        chain = AdminAuditTrail(w.sessions)
        passwords = PasswordResets(w.sessions, base_url="https://dpia.test", mail_from="a@b.ex")
        admin = Administration(w.sessions, passwords, chain, hasher=FAST)
        cam = w.owner.organisation_ids[0]
        ivy = await admin.invite(ROOT, cam, IVY[1], IVY[0])
        await admin.change_role(ROOT, cam, ivy, "admin")
        as_ivy = Actor(f"user:{ivy}", AdminChannel.BROWSER, Standing(False, frozenset({cam})))
        jo = await admin.invite(as_ivy, cam, "jo@camden.example", "Jo Joiner")
        await admin.change_role(as_ivy, cam, jo, "admin")
        await admin.set_active(ROOT, ivy, False, cam)
        await w.dpias.invite(w.owner, w.dpia_id, IVY[1], "editor", IVY[0])
        rooms = RoomManager(w.store, GroupCommitter(w.store), grace_seconds=1, compact_every=50)
        protection = DataProtection(
            w.dpias,
            RetentionService(w.sessions, w.audit, 72),
            ErasureService(w.sessions, w.store, w.audit, chain, KEY),
            SubjectAccessService(w.sessions, w.store),
            rooms,
        )
        yield Setting(w, chain, protection, ivy)


async def _admin_text(s: Setting) -> str:
    async with s.world.sessions() as session:
        rows = await session.scalars(select(AdminAuditEvent))
        return "\n".join(f"{row.actor} {row.data}" for row in rows)


async def test_after_erasure_no_admin_event_names_the_person_and_every_chain_holds(
    setting: Setting,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = setting
    assert set(traces_in(await _admin_text(s), IVY)) == set(IVY)  # the search can fail
    before = await s.chain.entries()
    report = await s.protection.erase(None, IVY[1], confirmed=True)
    assert traces_in(await _admin_text(s), IVY) == []
    assert traces_in(await database_text(s.world.sessions), IVY) == []
    entries = await s.chain.entries()
    assert len(entries) == len(before) + 1
    erasure = entries[-1]
    assert erasure.record.kind == ERASURE and erasure.record.actor == "cli"
    assert erasure.data["pseudonym"] == report.pseudonym
    named = [e.record.position for e in before if traces_in(e.record.data, IVY)]
    assert sorted(int(p) for p in erasure.data["redacted"]) == named
    assert report.records["admin_audit_events"] == len(named)
    # Ivy's own actions keep her id as their actor; her invitation reads with the pseudonym.
    assert entries[3].record.actor == f"user:{s.ivy}"
    assert report.pseudonym in entries[0].record.data
    assert await s.chain.verify() is None
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENDPIA_ENV", "development")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert f"administration: audit chain of {len(entries)} events holds" in out
    assert f"{s.world.dpia_id}: audit chain of" in out


@pytest.mark.parametrize("column", ["data", "actor", "at", "delete"])
async def test_after_erasure_altering_any_admin_event_still_breaks_the_chain(
    setting: Setting, column: str
) -> None:
    s = setting
    await s.protection.erase(None, IVY[1], confirmed=True)
    entries = await s.chain.entries()
    erasure = entries[-1]
    redacted = int(next(iter(erasure.data["redacted"])))
    untouched = next(e for e in entries if str(e.record.position) not in erasure.data["redacted"])
    for target in (entries[redacted - 1], erasure, untouched):
        async with s.world.sessions.begin() as session:
            row = await session.get_one(AdminAuditEvent, target.id)
            saved = {c.name: getattr(row, c.name) for c in AdminAuditEvent.__table__.columns}
            if column == "delete":
                await session.delete(row)
            elif column == "at":
                row.at = row.at.replace(year=2020)
            else:
                setattr(row, column, saved[column] + "x")
        assert await s.chain.verify() is not None, (column, target.record.position)
        async with s.world.sessions.begin() as session:
            if column == "delete":
                session.add(AdminAuditEvent(**saved))
            else:
                await session.execute(
                    update(AdminAuditEvent).where(AdminAuditEvent.id == target.id).values(**saved)
                )
        assert await s.chain.verify() is None
