"""Erasure, deletion and subject access against a real database (SQLite and PostgreSQL):
after erasure no table, stored mail or export holds the partner's name or address while the
audit chain still verifies; a deleted DPIA leaves only its tombstone; a subject access
export holds the partner's own entries and nobody else's."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from pycrdt import Map
from sqlalchemy import select, update

from server.cli import main
from server.domain.audit import ERASURE
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, Conflict
from server.domain.protection import add_months
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.services.admin_audit import AdminAuditTrail
from server.services.erasure import ErasureService
from server.services.retention import RetentionService
from server.services.subject_access import SubjectAccessService
from server.storage.models import (
    AuditEvent,
    Base,
    DeletedDpia,
    DocumentUpdate,
    Dpia,
    OutboxMessage,
)
from server.usecases.protection import ConfirmationNeeded, DataProtection
from tests.support.exports import pdf_text, word_text
from tests.support.protection import (
    ATTACHMENT,
    OWNER_WORDS,
    PARTNER_EMAIL,
    PARTNER_NAME,
    PARTNER_WORDS,
    Traces,
    database_text,
    leave_traces,
    traces_in,
)
from tests.support.review import World, edit, review_world, text

pytestmark = pytest.mark.asyncio
KEY = "k" * 40


@dataclass
class Setting:
    world: World
    traces: Traces
    protection: DataProtection


@pytest_asyncio.fixture
async def setting(database_url: str) -> AsyncIterator[Setting]:
    async with review_world(database_url) as w:
        traces = await leave_traces(w.sessions, w.store, w.dpias, w.audit, w.owner, w.dpia_id)
        rooms = RoomManager(w.store, GroupCommitter(w.store), grace_seconds=1, compact_every=50)
        protection = DataProtection(
            w.dpias,
            RetentionService(w.sessions, w.audit, 72),
            ErasureService(w.sessions, w.store, w.audit, AdminAuditTrail(w.sessions), KEY),
            SubjectAccessService(w.sessions, w.store),
            rooms,
        )
        yield Setting(w, traces, protection)


async def _exports(s: Setting) -> dict[str, str]:
    texts = {}
    for kind in ("json", "csv", "pdf", "docx"):
        data, _, _ = await s.world.exports.export(s.world.owner, s.world.dpia_id, kind)
        if kind == "pdf":
            texts[kind] = pdf_text(data)[0]
        elif kind == "docx":
            texts[kind] = word_text(data)[0]
        else:
            texts[kind] = data.decode()
    return texts


async def test_the_seeded_partner_is_found_before_erasure(setting: Setting) -> None:
    """The search can fail: before erasure it finds the partner in the tables."""
    assert set(traces_in(await database_text(setting.world.sessions))) == {
        PARTNER_NAME,
        PARTNER_EMAIL,
        "Pärtner",
    }


async def test_erasure_without_confirmation_changes_nothing(setting: Setting) -> None:
    before = await database_text(setting.world.sessions)
    with pytest.raises(ConfirmationNeeded):
        await setting.protection.erase(None, PARTNER_EMAIL, confirmed=False)
    assert await database_text(setting.world.sessions) == before


async def test_after_erasure_no_table_mail_or_export_holds_the_partner_and_the_chain_holds(
    setting: Setting,
) -> None:
    w = setting.world
    versions = len(await w.store.updates(w.dpia_id))
    report = await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    assert report.pseudonym.startswith("Former participant ")
    # The chain still verifies, and ends with the erasure naming what it redacted.
    assert await w.audit.verify(w.dpia_id) is None
    last = (await w.audit.entries(w.dpia_id))[-1]
    assert last.record.kind == ERASURE and last.data["redacted"]
    assert last.data["pseudonym"] == report.pseudonym
    # History keeps every version; the comments read with the pseudonym at every version.
    assert len(await w.store.updates(w.dpia_id)) == versions
    first_comment = await w.history.version(w.dpia_id, versions - 1)
    comments = first_comment.doc.get("comments", type=Map).to_py()
    assert comments["c-partner"]["author_name"] == report.pseudonym
    assert comments["c-partner"]["text"].startswith(PARTNER_WORDS)
    assert comments["c-owner"]["text"] == OWNER_WORDS
    timeline = await w.history.timeline(w.dpia_id)
    assert any(item.actor == report.pseudonym for item in timeline)
    # Exports made now (each one audited), and then the whole database, hold no trace.
    for kind, exported in (await _exports(setting)).items():
        assert traces_in(exported) == [], kind
    assert traces_in(await database_text(w.sessions)) == []
    assert await w.audit.verify(w.dpia_id) is None


async def test_erasing_a_member_who_signed_takes_their_name_out_of_every_export(
    setting: Setting,
) -> None:
    w = setting.world
    dpo = ("Dee Pio", "dpo@camden.example")
    await edit(w, text("need.aims", "Find people sleeping rough sooner"))
    await w.workflow.section(w.editor, w.dpia_id, "need", "submit")
    await w.workflow.section(w.dpo, w.dpia_id, "need", "review")
    await w.signoffs.sign(w.dpo, w.dpia_id, kind="section", target="need", decision="approve")
    before = await _exports(setting)
    # The PDF and the Word file print each sign-off's signer (JSON and CSV are the content).
    assert {k for k, t in before.items() if traces_in(t, dpo)} == {"pdf", "docx"}
    report = await setting.protection.erase(None, dpo[1], confirmed=True)
    for kind, exported in (await _exports(setting)).items():
        assert traces_in(exported, dpo) == [], kind
        if kind in ("pdf", "docx"):
            assert report.pseudonym in exported, kind
    assert traces_in(await database_text(w.sessions), dpo) == []
    assert await w.audit.verify(w.dpia_id) is None
    assert report.records["users"] == 1 and report.records["memberships"] == 1
    signed = await w.signoffs.of_dpia(w.dpia_id)
    assert signed[0].signer_name == report.pseudonym


async def test_the_pseudonym_is_stable_for_the_same_address(setting: Setting) -> None:
    person = await setting.protection.person(PARTNER_EMAIL)
    again = await setting.protection.person(PARTNER_EMAIL.upper())
    assert person.pseudonym == again.pseudonym
    report = await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    assert report.pseudonym == person.pseudonym


@pytest.mark.parametrize("column", ["data", "actor", "at", "position", "kind", "delete"])
async def test_after_erasure_altering_any_stored_event_still_breaks_the_chain(
    setting: Setting, column: str
) -> None:
    w = setting.world
    await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    entries = await w.audit.entries(w.dpia_id)
    erasure = entries[-1]
    redacted = int(next(iter(erasure.data["redacted"])))
    for target in (entries[redacted - 1], erasure, entries[0]):
        async with w.sessions.begin() as session:
            row = await session.get_one(AuditEvent, target.id)
            saved = {c: getattr(row, c) for c in ("data", "actor", "at", "position", "kind")}
            if column == "delete":
                await session.delete(row)
            elif column == "position":
                row.position = 999
            elif column == "at":
                row.at = row.at.replace(year=2020)
            else:
                setattr(row, column, saved[column] + "x")
        assert await w.audit.verify(w.dpia_id) is not None, (column, target.record.position)
        async with w.sessions.begin() as session:
            if column == "delete":
                session.add(AuditEvent(id=target.id, dpia_id=w.dpia_id, **_fields(target)))
            else:
                await session.execute(
                    update(AuditEvent).where(AuditEvent.id == target.id).values(**saved)
                )
        assert await w.audit.verify(w.dpia_id) is None


def _fields(entry: object) -> dict[str, object]:
    record = entry.record  # type: ignore[attr-defined]
    names = "position kind actor channel section seq at data prev_hash hash content_hash"
    return {name: getattr(record, name) for name in names.split()}


async def test_an_owner_of_only_some_dpias_cannot_erase_a_partner(setting: Setting) -> None:
    w = setting.world
    other = await w.dpias.create(w.editor, "Another DPIA", w.editor.organisation_ids[0])
    await w.dpias.invite(w.editor, other, PARTNER_EMAIL, "commenter", PARTNER_NAME)
    with pytest.raises(AccessDenied):
        await setting.protection.erasable(w.owner, PARTNER_EMAIL)
    assert (await setting.protection.erasable(None, PARTNER_EMAIL)).facts.dpias == {
        w.dpia_id,
        other,
    }


async def test_the_owner_of_every_dpia_of_a_partner_may_erase_them(setting: Setting) -> None:
    person = await setting.protection.erasable(setting.world.owner, PARTNER_EMAIL)
    assert person.facts.has_account is False


async def test_subject_access_holds_the_partner_s_entries_and_nobody_else_s(
    setting: Setting,
) -> None:
    export = await setting.protection.export_person(PARTNER_EMAIL)
    data = json.loads(export.to_json())
    texts = [c["text"] for c in data["comments"]]
    assert any(t.startswith(PARTNER_WORDS) for t in texts)
    assert "Only two fields." in texts
    assert OWNER_WORDS not in json.dumps(data["comments"])
    assert f"Thanks {PARTNER_NAME}." not in texts  # the owner's reply is theirs
    assert [p["email"] for p in data["participations"]] == [PARTNER_EMAIL]
    assert data["account"] is None
    assert len(data["versions"]) == 2 and len(data["audit_events"]) == 1
    assert data["mail_sent"][0]["subject"] == "New comment on Step 1"
    assert data["mail_received"][0]["text"] == PARTNER_WORDS
    assert data["notifications"] == []  # notifications went to the owner, not to them
    assert "owner@camden.example" not in export.to_json().decode()
    archive = zipfile.ZipFile(io.BytesIO(export.to_zip()))
    attached = data["mail_received"][0]["attachments"][0]["file"]
    assert archive.read(attached) == ATTACHMENT
    assert json.loads(archive.read("person.json"))["email"] == PARTNER_EMAIL


async def test_subject_access_for_a_member_lists_their_account(setting: Setting) -> None:
    data = json.loads((await setting.protection.export_person("dpo@camden.example")).to_json())
    assert data["account"]["name"] == "Dee Pio"
    assert data["account"]["memberships"][0]["organisation"] == "CAM"
    assert data["comments"] == [] and data["mail_received"] == []


async def test_deleting_a_draft_leaves_only_its_tombstone(setting: Setting) -> None:
    w = setting.world
    with pytest.raises(ConfirmationNeeded):
        await setting.protection.delete(w.owner, w.dpia_id, confirmed=False)
    with pytest.raises(AccessDenied):
        await setting.protection.delete(w.editor, w.dpia_id, confirmed=True)
    tombstone = await setting.protection.delete(w.owner, w.dpia_id, confirmed=True)
    assert tombstone.records["participants"] == 4
    assert tombstone.records["audit_events"] >= 1
    async with w.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "deleted_dpias":
                continue
            for row in (await session.execute(select(table))).all():
                assert w.dpia_id not in " ".join(map(str, row)), table.name
        stones = (await session.scalars(select(DeletedDpia))).all()
    assert [(s.reference, s.rule, s.deleted_by) for s in stones] == [
        (w.dpia_id, "draft deleted by an owner", f"user:{w.owner.id}")
    ]


async def test_a_dpia_in_review_cannot_be_deleted(setting: Setting) -> None:
    w = setting.world
    await w.workflow.move(w.owner, w.dpia_id, "abandoned", "Not needed")
    with pytest.raises(Conflict, match="retention"):
        await setting.protection.delete(w.owner, w.dpia_id, confirmed=True)


async def _close_long_ago(s: Setting, months_ago: int) -> None:
    w = s.world
    await w.workflow.move(w.owner, w.dpia_id, "abandoned", "Not needed")
    async with w.sessions.begin() as session:
        await session.execute(
            update(Dpia)
            .where(Dpia.id == w.dpia_id)
            .values(closed_at=add_months(datetime.now(UTC), -months_ago))
        )


async def test_an_expired_closed_dpia_is_archived_listed_and_then_deletable(
    setting: Setting,
) -> None:
    w = setting.world
    await _close_long_ago(setting, 71)
    assert await setting.protection.archive_expired() == []  # 71 of 72 months: kept
    await setting.protection.retention.set_months("CAM", 70)
    [waiting] = await setting.protection.archive_expired()
    assert (waiting.dpia_id, waiting.status) == (w.dpia_id, DpiaStatus.ARCHIVED)
    entries = await w.audit.entries(w.dpia_id)
    assert entries[-1].data["to"] == "archived" and entries[-1].record.actor == "system:retention"
    assert await w.audit.verify(w.dpia_id) is None
    # Archiving keeps the day it closed: the DPIA stays listed, once.
    assert [v.dpia_id for v in await setting.protection.archive_expired()] == [w.dpia_id]
    with pytest.raises(AccessDenied):
        await setting.protection.delete(w.editor, w.dpia_id, confirmed=True)
    gone = await setting.protection.delete(w.owner, w.dpia_id, confirmed=True)
    assert gone.rule == "retention period ended" and gone.status == "archived"
    assert await setting.protection.archive_expired() == []


async def test_the_command_line_runs_retention_erases_and_exports(
    setting: Setting,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    w = setting.world
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENDPIA_ENV", "development")
    monkeypatch.setenv("OPENDPIA_SECRET_KEY", KEY)
    await _close_long_ago(setting, 80)

    def run(*args: str) -> int:
        return main(list(args))

    assert await asyncio.to_thread(run, "retention", "run") == 0
    assert f"{w.dpia_id}\t" in capsys.readouterr().out
    assert await asyncio.to_thread(run, "retention", "set", "--org", "cam", "--months", "x") == 2
    assert "whole number" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "retention", "set", "--org", "CAM", "--months", "90") == 0
    assert "90 months" in capsys.readouterr().out
    assert await asyncio.to_thread(run, "subject-access", PARTNER_EMAIL) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["participations"][0]["email"] == PARTNER_EMAIL
    archive = tmp_path / "sar.zip"
    assert await asyncio.to_thread(run, "subject-access", PARTNER_EMAIL, "--zip", str(archive)) == 0
    assert zipfile.is_zipfile(archive)
    capsys.readouterr()
    assert await asyncio.to_thread(run, "erase-person", PARTNER_EMAIL) == 1
    assert "nothing changed" in capsys.readouterr().err
    assert traces_in(await database_text(w.sessions))
    assert await asyncio.to_thread(run, "erase-person", PARTNER_EMAIL, "--yes") == 0
    assert "Former participant" in capsys.readouterr().out
    assert traces_in(await database_text(w.sessions)) == []
    assert await asyncio.to_thread(run, "audit", "verify", w.dpia_id) == 0
    assert await asyncio.to_thread(run, "erase-person", PARTNER_EMAIL, "--yes") == 2
    assert "Nobody" in capsys.readouterr().err


async def test_a_partner_removed_from_a_dpia_is_still_traced_there_by_their_mail(
    setting: Setting,
) -> None:
    w = setting.world
    other = await w.dpias.create(w.owner, "Another DPIA", w.owner.organisation_ids[0])
    removed = await w.dpias.invite(w.owner, other, PARTNER_EMAIL, "commenter", PARTNER_NAME)
    async with w.sessions.begin() as session:
        session.add(
            OutboxMessage(
                message_id="<invite@other>",
                dpia_id=other,
                subject="You are invited",
                sender="n@opendpia.example",
                recipient=PARTNER_EMAIL,
                message=b"Subject: You are invited\\r\\n\\r\\nHello\\r\\n",
                status="sent",
                next_attempt_at=datetime.now(UTC),
                created_at=datetime.now(UTC),
            )
        )
    await w.dpias.remove(w.owner, other, removed)
    person = await setting.protection.erasable(w.owner, PARTNER_EMAIL)
    assert person.facts.dpias == {w.dpia_id, other}
    await setting.protection.erase(w.owner, PARTNER_EMAIL, confirmed=True)
    assert traces_in(await database_text(w.sessions)) == []
    assert await w.audit.verify(other) is None
    assert (await w.audit.entries(other))[-1].record.kind == ERASURE


async def test_the_only_owner_of_a_dpia_cannot_be_erased(setting: Setting) -> None:
    w = setting.world
    with pytest.raises(Conflict, match="only owner"):
        await setting.protection.erase(None, w.owner.email, confirmed=True)
    assert (await setting.protection.person(w.owner.email)).facts.sole_owner_of == {w.dpia_id}


async def test_mail_not_yet_sent_to_an_erased_partner_is_never_sent(setting: Setting) -> None:
    w = setting.world
    async with w.sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.recipient == PARTNER_EMAIL)
            .values(status="pending")
        )
    await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    async with w.sessions() as session:
        mails = (await session.scalars(select(OutboxMessage))).all()
    assert [(m.status, m.last_error) for m in mails] == [("failed", "The recipient was erased")]


async def test_a_history_that_cannot_be_read_stops_the_erasure_before_anything_changes(
    setting: Setting,
) -> None:
    w = setting.world
    async with w.sessions.begin() as session:
        await session.execute(
            update(DocumentUpdate)
            .where(DocumentUpdate.document_id == w.dpia_id, DocumentUpdate.seq == 1)
            .values(update=b"\x05\x01")
        )
    before = await database_text(w.sessions)
    with pytest.raises(Conflict, match="could not be read"):
        await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    assert await database_text(w.sessions) == before


async def test_typed_text_that_names_the_partner_is_left_and_reported(setting: Setting) -> None:
    w = setting.world
    await edit(w, text("need.aims", f"Agreed with {PARTNER_NAME} at the meeting"))
    report = await setting.protection.erase(None, PARTNER_EMAIL, confirmed=True)
    assert report.still_named == [f"{w.dpia_id}: need.aims"]
    current = await w.history.current(w.dpia_id)
    assert PARTNER_NAME in str(current.content["need"]["aims"])  # the owners' to edit
    assert await w.audit.verify(w.dpia_id) is None
