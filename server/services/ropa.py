"""An organisation's record of processing activities: the entries drawn from its DPIAs, the
entries added by hand, confirmations, and the CSV and JSON exports.

Entries from DPIAs are read from each DPIA's content now (``domain.ropa``), so the record
never lags its DPIAs; what a person confirmed is stored beside it (``ropa_confirmations``:
the columns then, their fingerprint, the DPIA's version and status). An entry whose
columns no longer match what was confirmed reads "changed since confirmed" with the
difference and the DPIA's versions to compare, until someone confirms it again.

A DPIA feeds the record of its lead organisation and of each organisation that is a
controller or joint controller party of it; closed DPIAs (superseded, archived, abandoned,
rejected) and the other steps' records do not. Every change (an entry added, edited or
confirmed) is chained in the administration's audit trail.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.dpias import DpiaStatus
from server.domain.errors import DocumentNotFound, InvalidInput
from server.domain.parties import SIGNING_ROLES, Capacity, parse_capacities
from server.domain.projects import DocumentKind
from server.domain.ropa import (
    COLUMN_IDS,
    COLUMNS,
    EDITABLE,
    WHOLE_DPIA,
    activities,
    check_entry,
    fingerprint,
    keeper_policy,
    load_mapping,
)
from server.services.accounts import CurrentUser
from server.services.admin_audit import AdminAuditTrail
from server.services.administration import organisation_by_code
from server.services.history import HistoryService
from server.storage.database import writer_turn
from server.storage.models import (
    Dpia,
    DpiaParty,
    Membership,
    Organisation,
    RopaConfirmation,
    RopaEntry,
    User,
)

NOT_FOUND = "There is no such organisation, or you do not keep its record of processing"
_CLOSED = (
    DpiaStatus.SUPERSEDED.value,
    DpiaStatus.ARCHIVED.value,
    DpiaStatus.ABANDONED.value,
    DpiaStatus.REJECTED.value,
)


@dataclass(frozen=True, slots=True)
class Keeper:
    """The organisation whose record someone keeps."""

    id: int
    code: str
    name: str
    user_id: int


@dataclass(frozen=True, slots=True)
class Change:
    label: str
    before: str
    after: str


@dataclass(slots=True)
class EntryView:
    """One row of the record, whichever its origin."""

    key: str  # "dpia:<id>:<activity>" or "hand:<id>"
    values: dict[str, str]
    dpia_id: str | None = None
    activity: str = ""
    dpia_status: DpiaStatus | None = None
    seq: int = 0  # the DPIA's version now
    state: str = "hand"  # hand | unconfirmed | confirmed | changed
    confirmed_by: str = ""
    confirmed_at: datetime | None = None
    confirmed_seq: int | None = None
    confirmed_status: DpiaStatus | None = None
    updated_by: str = ""
    updated_at: datetime | None = None
    changes: list[Change] = field(default_factory=list)
    hand_id: int | None = None

    @property
    def compare_url(self) -> str | None:
        if self.dpia_id is None or self.confirmed_seq is None or self.state != "changed":
            return None
        return f"/dpias/{self.dpia_id}/versions/{self.confirmed_seq}?compare={self.seq}"

    def searchable(self) -> str:
        return "\n".join(self.values.values()).casefold()

    def record(self) -> dict[str, Any]:
        """The entry as the exports write it: every column, then its standing."""
        return {
            **{column: self.values.get(column, "") for column in COLUMN_IDS},
            "source": "dpia" if self.dpia_id else "hand",
            "state": self.state,
            "dpia_version": self.seq if self.dpia_id else None,
            "confirmed_by": self.confirmed_by or None,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "confirmed_version": self.confirmed_seq,
            "confirmed_status": self.confirmed_status.value if self.confirmed_status else None,
            "updated_by": self.updated_by or None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True, slots=True)
class Register:
    organisation: Keeper
    entries: list[EntryView]

    def filtered(self, *, q: str = "", source: str = "", state: str = "") -> list[EntryView]:
        words = q.casefold().split()
        return [
            e
            for e in self.entries
            if all(w in e.searchable() for w in words)
            and (not source or (source == "dpia") == (e.dpia_id is not None))
            and (not state or e.state == state)
        ]


class RopaService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        history: HistoryService,
        audit: AdminAuditTrail,
        base_url: str,
    ) -> None:
        self._sessions = sessions
        self._history = history
        self._audit = audit
        self._base_url = base_url.rstrip("/")

    async def kept_by(self, user: CurrentUser) -> list[Keeper]:
        """The organisations whose record ``user`` keeps."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Organisation, Membership)
                .join(Membership, Membership.organisation_id == Organisation.id)
                .where(Membership.user_id == user.id)
                .order_by(Organisation.name)
            )
            return [
                Keeper(org.id, org.code, org.name, user.id)
                for org, membership in rows
                if _keeps(membership)
            ]

    async def keeper(self, user: CurrentUser, code: str) -> Keeper:
        """The organisation of ``code`` if ``user`` keeps its record; AccessDenied if they
        do not (a member of another organisation, or a member without the role)."""
        async with self._sessions() as session:
            org = await organisation_by_code(session, code, NOT_FOUND)
            membership = await session.get(Membership, (user.id, org.id))
        keeper_policy(
            administrator=membership is not None and membership.role == "admin",
            dpo=membership is not None
            and Capacity.DPO in parse_capacities(membership.signatory_roles),
        )
        return Keeper(org.id, org.code, org.name, user.id)

    # -- reading ----------------------------------------------------------------------------

    async def register(self, user: CurrentUser, code: str) -> Register:
        keeper = await self.keeper(user, code)
        return Register(keeper, await self._entries(keeper))

    async def _entries(self, keeper: Keeper) -> list[EntryView]:
        async with self._sessions() as session:
            dpo = await self._dpo_text(session, keeper.id)
            as_party = select(DpiaParty.dpia_id).where(
                DpiaParty.organisation_id == keeper.id, DpiaParty.role.in_(SIGNING_ROLES)
            )
            dpias = list(
                await session.scalars(
                    select(Dpia)
                    .where(
                        or_(Dpia.lead_organisation_id == keeper.id, Dpia.id.in_(as_party)),
                        Dpia.kind == DocumentKind.DPIA.value,
                        Dpia.status.not_in(_CLOSED),
                    )
                    .order_by(Dpia.created_at, Dpia.id)
                )
            )
            confirmations = {
                (c.dpia_id, c.activity): c
                for c in await session.scalars(
                    select(RopaConfirmation).where(RopaConfirmation.organisation_id == keeper.id)
                )
            }
            hand = list(
                await session.scalars(
                    select(RopaEntry)
                    .where(RopaEntry.organisation_id == keeper.id)
                    .order_by(RopaEntry.id)
                )
            )
            names = await self._names(
                session,
                {c.confirmed_by for c in confirmations.values()} | {h.updated_by for h in hand},
            )
            joint = await self._joint_controllers(session, [d.id for d in dpias], keeper.id)
        entries = []
        for dpia in dpias:
            for view in await self._dpia_entries(dpia, keeper, dpo, joint.get(dpia.id, [])):
                confirmation = confirmations.get((dpia.id, view.activity))
                _standing(view, confirmation, names)
                entries.append(view)
        for row in hand:
            values = {column: "" for column in COLUMN_IDS}
            values.update({k: v for k, v in json.loads(row.entry).items() if k in EDITABLE})
            values["reference"] = f"{keeper.code}-R{row.id}"
            values["controller"] = keeper.name
            values["dpo"] = dpo
            entries.append(
                EntryView(
                    f"hand:{row.id}",
                    values,
                    updated_by=names.get(row.updated_by, ""),
                    updated_at=_utc(row.updated_at),
                    hand_id=row.id,
                )
            )
        return entries

    async def _dpia_entries(
        self, dpia: Dpia, keeper: Keeper, dpo: str, joint: list[str]
    ) -> list[EntryView]:
        template = await self._history.template_of(dpia.id)
        version = await self._history.current(dpia.id)
        found = activities(template, version.content, load_mapping(template.id))
        views = []
        for activity in found:
            values = {column: "" for column in COLUMN_IDS}
            values.update(activity.values)
            values["reference"] = f"{dpia.id} {activity.ref}".strip()
            if activity.key == WHOLE_DPIA or not values.get("activity"):
                values["activity"] = dpia.title
            values["controller"] = keeper.name
            values["joint_controllers"] = "\n".join(joint)
            values["dpo"] = dpo
            values["dpia"] = f"{dpia.title} ({dpia.id}): {self._base_url}/dpias/{dpia.id}"
            views.append(
                EntryView(
                    f"dpia:{dpia.id}:{activity.key}",
                    values,
                    dpia_id=dpia.id,
                    activity=activity.key,
                    dpia_status=DpiaStatus(dpia.status),
                    seq=version.seq,
                    state="unconfirmed",
                )
            )
        return views

    async def _dpo_text(self, session: AsyncSession, organisation_id: int) -> str:
        rows = await session.execute(
            select(User.name, User.email, Membership.signatory_roles)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == organisation_id, User.active.is_(True))
            .order_by(User.name)
        )
        return "\n".join(
            f"{name} <{email}>"
            for name, email, roles in rows
            if Capacity.DPO in parse_capacities(roles)
        )

    async def _joint_controllers(
        self, session: AsyncSession, dpia_ids: list[str], organisation_id: int
    ) -> dict[str, list[str]]:
        if not dpia_ids:
            return {}
        rows = await session.execute(
            select(DpiaParty.dpia_id, DpiaParty.name, DpiaParty.organisation_id)
            .where(DpiaParty.dpia_id.in_(dpia_ids), DpiaParty.role.in_(SIGNING_ROLES))
            .order_by(DpiaParty.id)
        )
        joint: dict[str, list[str]] = {}
        for dpia_id, name, party_org in rows:
            if party_org != organisation_id:
                joint.setdefault(dpia_id, []).append(name)
        return joint

    async def _names(self, session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
        return {user_id: name for user_id, name in rows}

    async def entry(self, user: CurrentUser, code: str, key: str) -> tuple[Keeper, EntryView]:
        keeper = await self.keeper(user, code)
        for entry in await self._entries(keeper):
            if entry.key == key:
                return keeper, entry
        raise DocumentNotFound("There is no such entry in this record of processing")

    # -- changing ---------------------------------------------------------------------------

    async def confirm(self, user: CurrentUser, code: str, key: str) -> EntryView:
        """Take the entry drawn from a DPIA as it reads now as confirmed by ``user``."""
        keeper, entry = await self.entry(user, code, key)
        if entry.dpia_id is None or entry.dpia_status is None:
            raise InvalidInput("An entry added by hand is kept by editing it, not confirmed")
        drawn = {c: entry.values.get(c, "") for c in EDITABLE}
        now = datetime.now(UTC)
        async with self._changing() as session:
            row = await session.get(RopaConfirmation, (keeper.id, entry.dpia_id, entry.activity))
            before = json.loads(row.entry) if row is not None else {}
            if row is None:
                row = RopaConfirmation(
                    organisation_id=keeper.id, dpia_id=entry.dpia_id, activity=entry.activity
                )
                session.add(row)
            row.entry = json.dumps(drawn)
            row.entry_hash = fingerprint(drawn)
            row.seq = entry.seq
            row.status = entry.dpia_status.value
            row.confirmed_by = user.id
            row.confirmed_at = now
            await self._record(
                session,
                user,
                "ropa_entry_confirmed",
                keeper.id,
                before={"reference": entry.values["reference"], **before},
                after={
                    "reference": entry.values["reference"],
                    "version": entry.seq,
                    "status": entry.dpia_status.value,
                },
            )
        return (await self.entry(user, code, key))[1]

    async def add(self, user: CurrentUser, code: str, form: dict[str, str]) -> str:
        keeper = await self.keeper(user, code)
        values = check_entry(form)
        now = datetime.now(UTC)
        async with self._changing() as session:
            row = RopaEntry(
                organisation_id=keeper.id,
                entry=json.dumps(values),
                created_by=user.id,
                created_at=now,
                updated_by=user.id,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            await self._record(session, user, "ropa_entry_added", keeper.id, after=values)
        return f"hand:{row.id}"

    async def edit(self, user: CurrentUser, code: str, key: str, form: dict[str, str]) -> None:
        keeper, entry = await self.entry(user, code, key)
        if entry.hand_id is None:
            raise InvalidInput(
                "An entry drawn from a DPIA changes with its DPIA: edit the DPIA, then confirm"
            )
        values = check_entry(form)
        async with self._changing() as session:
            row = await session.get_one(RopaEntry, entry.hand_id)
            before = json.loads(row.entry)
            row.entry = json.dumps(values)
            row.updated_by = user.id
            row.updated_at = datetime.now(UTC)
            await self._record(
                session, user, "ropa_entry_changed", keeper.id, before=before, after=values
            )

    @asynccontextmanager
    async def _changing(self) -> AsyncIterator[AsyncSession]:
        """One change's transaction, the administration's chain head locked first (as the
        administration's own changes do), this process's SQLite writers taking turns."""
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            await self._audit.lock(session)
            yield session

    async def _record(
        self,
        session: AsyncSession,
        user: CurrentUser,
        kind: str,
        organisation_id: int,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self._audit.append(
            session,
            kind,
            actor=f"user:{user.id}",
            channel="browser",
            organisation_id=organisation_id,
            data={"before": before or {}, "after": after or {}},
        )


def _keeps(membership: Membership) -> bool:
    return membership.role == "admin" or Capacity.DPO in parse_capacities(
        membership.signatory_roles
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _standing(
    view: EntryView, confirmation: RopaConfirmation | None, names: dict[int | None, str]
) -> None:
    if confirmation is None:
        return
    view.confirmed_by = names.get(confirmation.confirmed_by, "")
    view.confirmed_at = _utc(confirmation.confirmed_at)
    view.confirmed_seq = confirmation.seq
    view.confirmed_status = DpiaStatus(confirmation.status)
    drawn = {c: view.values.get(c, "") for c in EDITABLE}
    if fingerprint(drawn) == confirmation.entry_hash:
        view.state = "confirmed"
        return
    view.state = "changed"
    then = json.loads(confirmation.entry)
    labels = {c.id: c.label for c in COLUMNS}
    view.changes = [
        Change(labels[c], str(then.get(c, "")), drawn[c])
        for c in EDITABLE
        if str(then.get(c, "")) != drawn[c]
    ]


# -- exports -------------------------------------------------------------------------------

EXPORT_FIELDS = (
    *COLUMN_IDS,
    "source",
    "state",
    "dpia_version",
    "confirmed_by",
    "confirmed_at",
    "confirmed_version",
    "confirmed_status",
    "updated_by",
    "updated_at",
)


def as_csv(entries: list[EntryView]) -> str:
    """One row per entry; the first row names the columns as the ICO template does."""
    labels = {c.id: c.label for c in COLUMNS}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([labels.get(f, f.replace("_", " ").capitalize()) for f in EXPORT_FIELDS])
    for entry in entries:
        record = entry.record()
        writer.writerow([_cell(record[f]) for f in EXPORT_FIELDS])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with a formula character is read as text by spreadsheets.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def as_json(register: Register, entries: list[EntryView]) -> dict[str, Any]:
    return {
        "organisation": {"code": register.organisation.code, "name": register.organisation.name},
        "columns": [{"id": c.id, "label": c.label} for c in COLUMNS],
        "entries": [entry.record() for entry in entries],
    }
