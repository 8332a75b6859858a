"""A database with people and one DPIA, and the services of review and sign-off around it;
documents are changed by appending real updates to the log (no room needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pycrdt import Array, Doc, Map, XmlFragment
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from server.domain.changes import ChangeEvent
from server.domain.content import WHOLE, target_hash
from server.domain.documents import UpdateRecord
from server.domain.templates import append_paragraphs
from server.domain.workflow import SignOffState
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.exports import ExportService
from server.services.history import HistoryService
from server.services.notifications import NotificationService
from server.services.signoffs import SignOffService
from server.services.workflow import WorkflowService
from server.storage.database import create_engine, migrate
from server.storage.models import SignOffRow
from server.storage.updates import SqlUpdateStore

PASSWORD = "correct horse battery"
FAST = password_hasher("fast-for-tests")
ASSESSMENT = ("screening", "need", "processing", "consultation", "necessity", "risks", "measures")


class MovedClock:
    """The server's "now" for scheduled work, moved by the test (never by sleeping)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, day: date | str) -> None:
        """Nine in the morning of ``day`` (a date or an ISO date)."""
        day = date.fromisoformat(day) if isinstance(day, str) else day
        self.now = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


@dataclass
class World:
    exports: ExportService
    engine: AsyncEngine
    store: SqlUpdateStore
    dpias: DpiaService
    signoffs: SignOffService
    workflow: WorkflowService
    history: HistoryService
    audit: AuditTrail
    sessions: async_sessionmaker[Any]
    owner: CurrentUser  # Camden, the author
    dpo: CurrentUser  # Camden's DPO
    editor: CurrentUser  # Camden
    dpia_id: str


def record_services(
    sessions: async_sessionmaker[Any], store: SqlUpdateStore, dpias: DpiaService
) -> tuple[AuditTrail, HistoryService, SignOffService, WorkflowService, ExportService]:
    """The record's services around ``dpias``, wired as the app wires them."""
    audit = AuditTrail(sessions)
    history = HistoryService(sessions, store, audit)
    notifications = NotificationService(
        sessions,
        base_url="https://opendpia.example",
        mail_from="OpenDPIA <n@opendpia.example>",
        secret_key="k" * 40,
    )
    signoffs = SignOffService(sessions, dpias, history, audit, notifications)
    workflow = WorkflowService(sessions, dpias, history, signoffs, audit, notifications)
    exports = ExportService(sessions, dpias, history, signoffs, audit)
    return audit, history, signoffs, workflow, exports


@asynccontextmanager
async def review_world(database_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, FAST)
    cam = await accounts.create_organisation("CAM", "London Borough of Camden")
    people = {}
    for key, name in (("owner", "Olive Owner"), ("dpo", "Dee Pio"), ("editor", "Ed Itor")):
        user_id = await accounts.create_user(f"{key}@camden.example", name, PASSWORD, "CAM")
        people[key] = CurrentUser(user_id, f"{key}@camden.example", name, (cam,))
    store = SqlUpdateStore(engine)
    dpias = DpiaService(sessions, store)
    dpia_id = await dpias.create(people["owner"], "Rough sleeping outreach", cam)
    await dpias.invite(people["owner"], dpia_id, "dpo@camden.example", "dpo")
    await dpias.invite(people["owner"], dpia_id, "editor@camden.example", "editor")
    audit, history, signoffs, workflow, exports = record_services(sessions, store, dpias)
    try:
        yield World(
            exports,
            engine,
            store,
            dpias,
            signoffs,
            workflow,
            history,
            audit,
            sessions,
            people["owner"],
            people["dpo"],
            people["editor"],
            dpia_id,
        )
    finally:
        await engine.dispose()


async def edit(w: World, change: Callable[[Doc[Any]], None], actor: str = "user:1") -> int:
    """Append one real update made by ``change`` to the DPIA's log; its seq."""
    return await append_change(w.store, w.dpia_id, change, actor)


async def append_change(
    store: SqlUpdateStore, dpia_id: str, change: Callable[[Doc[Any]], None], actor: str
) -> int:
    """Append one real update made by ``change`` to a document's log; its seq."""
    stored = await store.load(dpia_id)
    assert stored is not None
    doc = stored.to_doc()
    before = doc.get_state()
    with doc.transaction():
        change(doc)
    seq = stored.last_seq + 1
    await store.append(
        [
            UpdateRecord(
                dpia_id, seq, doc.get_update(before), actor, "browser", "test", datetime.now(UTC)
            )
        ]
    )
    return seq


def text(path: str, *paragraphs: str) -> Callable[[Doc[Any]], None]:
    return lambda doc: append_paragraphs(
        doc.get(f"field:{path}", type=XmlFragment), list(paragraphs)
    )


def value(path: str, new: Any) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        doc.get("values", type=Map)[path] = new

    return change


def risk(ref: str, likelihood: str, severity: str, **more: str) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        row = {
            "id": f"id-{ref}",
            "ref": ref,
            "title": f"Risk {ref}",
            "likelihood": likelihood,
            "severity": severity,
            **more,
        }
        doc.get("table:risks.register", type=Array).append(Map(row))

    return change


def measure(ref: str) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        row = {"id": f"id-{ref}", "ref": ref, "title": "Role-based access", "type": "technical"}
        doc.get("table:measures.plan", type=Array).append(Map(row))

    return change


async def review_everything(w: World) -> None:
    fills = {
        "screening": value("screening.outcome", "required"),
        "need": text("need.aims", "Find people sleeping rough sooner"),
        "processing": text("processing.nature", "Outreach workers record sightings"),
        "consultation": value("consultation.individuals_consulted", True),
        "necessity": text("necessity.achieves_purpose", "Yes"),
        "risks": risk("R1", "1", "2"),
        "measures": measure("M1"),
    }
    for section in ASSESSMENT:
        await edit(w, fills[section])
        await w.workflow.section(w.editor, w.dpia_id, section, "submit")
        await w.workflow.section(w.dpo, w.dpia_id, section, "review")


async def changed(w: World, actor: str = "user:1") -> None:
    """What the change-event recorder does after the quiet period."""
    now = datetime.now(UTC)
    await w.signoffs.mark_stale(
        [ChangeEvent(w.dpia_id, actor, "browser", "x.y", None, now, now, 1, "new text")]
    )


async def party_signature(
    sessions: async_sessionmaker[Any],
    history: HistoryService,
    dpia_id: str,
    signer: CurrentUser,
    *,
    organisation: tuple[int, str],
    capacity: str,
) -> int:
    """A party's signature over the whole document as it is now, recorded as the party
    sign-off work records one (a sign-off row with the party's organisation and the
    capacity signed in, bound to the content hash, as ``SignOffService.sign`` binds)."""
    template = await history.template_of(dpia_id)
    current = await history.current(dpia_id)
    row = SignOffRow(
        dpia_id=dpia_id,
        target=WHOLE,
        kind="party_approval",
        signer_user_id=signer.id,
        signer_participant_id=0,
        signer_name=signer.name,
        signer_role="dpo",
        signer_organisation=organisation[1],
        party=organisation[1],
        party_organisation_id=organisation[0],
        capacity=capacity,
        decision="approve",
        conditions="",
        reasons="",
        seq=current.seq,
        content_hash=target_hash(template, current.content, WHOLE),
        state=SignOffState.VALID.value,
        created_at=datetime.now(UTC),
        stale_at=None,
        replaced_by=None,
    )
    async with sessions.begin() as session:
        session.add(row)
    return row.id
