"""Inbound mail kept by the email bridge: storing it, claiming it, recording what became of it.

A message is stored (one row per accepted recipient) before the bridge answers 250, so every
accepted message is processed at least once: a processor claims pending rows for a lease and
records an outcome; a crash leaves the row pending and a later claim takes it again. The same
rows are the owners' view of the DPIA's inbound mail (merged, duplicate, dropped, refused,
held, bounce, unsubscribed) and hold the evidence: the raw bytes, as received.

Also here, because they are state the bridge keeps in SQL: the health of participants'
addresses (bounces; mail pauses after repeated hard bounces) and the throttle on the bridge's
own automatic answers (one per address, reason and day).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import DocumentNotFound, InvalidInput, InvalidToken
from server.domain.replies import ReplyKeys
from server.mail.reading import READING_POLICY
from server.storage.database import engine_of, writer_turn
from server.storage.models import (
    AutoAnswer,
    Dpia,
    InboundAttachment,
    InboundMessage,
    MailHealth,
    MailPreference,
    Participant,
    ReplyToken,
)

HARD_BOUNCES_TO_PAUSE = 3
OUTCOMES = (
    "merged",
    "trigger",  # raised a review trigger (issue 17)
    "duplicate",
    "dropped",
    "refused",
    "held",
    "bounce",
    "unsubscribed",
    "discarded",
    "failed",
)


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Everything a reply address leads to, read in one go for the processor."""

    token: ReplyToken
    participant: Participant | None
    dpia: Dpia | None

    @property
    def status(self) -> DpiaStatus | None:
        return DpiaStatus(self.dpia.status) if self.dpia is not None else None

    @property
    def role(self) -> Role | None:
        return Role(self.participant.role) if self.participant is not None else None


@dataclass(frozen=True, slots=True)
class Finished:
    row_id: int
    outcome: str
    reason: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Situation:
    """What the processor reads before deciding about one reply, read in one session."""

    context: ReplyContext | None
    earlier: InboundMessage | None
    merged_last_hour: int


@dataclass(frozen=True, slots=True)
class Untold:
    """A merged reply its participants were not told about, and its author's name."""

    row: InboundMessage
    author: str


@dataclass(frozen=True, slots=True)
class NewAttachment:
    filename: str
    content_type: str
    data: bytes


def message_key(raw: bytes) -> str:
    """What identifies a message for deduplication: its Message-ID, else a hash of its bytes."""
    try:
        headers = BytesHeaderParser(policy=READING_POLICY).parsebytes(raw[: 256 * 1024])
        value = str(headers.get("Message-ID", "") or "")
    except Exception:  # any header the parser cannot read means: no usable Message-ID
        value = ""
    value = "".join(value.split())
    if 3 <= len(value) <= 290 and value.isprintable():
        return f"mid:{value.lower()}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


class InboundStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], reply_keys: ReplyKeys) -> None:
        self._sessions = sessions
        self.reply_keys = reply_keys
        self._on_pending: list[Callable[[], None]] = []
        # Messages waiting to be stored, and the lock of whoever stores the waiting group.
        self._to_store: list[tuple[list[dict[str, Any]], asyncio.Future[list[int]]]] = []
        self._storing = asyncio.Lock()

    def on_pending(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when this process makes a row pending (a processor's wake-up;
        processors in other processes find it on their next poll)."""
        self._on_pending.append(callback)

    def _pending_added(self) -> None:
        for callback in self._on_pending:
            callback()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    # -- at the door ------------------------------------------------------------------------

    async def check_recipient(self, address: str) -> None:
        """Accept RCPT only for a reply address we issued, or a bounce address we made.

        InvalidToken otherwise (the bridge answers 550). Expired or withdrawn addresses are
        accepted: the processor refuses them with a reason and a link for their owner.
        """
        if address.lower().startswith("bounce+"):
            self.reply_keys.bounced_participant(address)
            return
        token = self.reply_keys.token_of(address)
        # A Core connection, not an ORM session: this runs for every RCPT.
        async with engine_of(self._sessions).connect() as connection:
            if await connection.scalar(_KNOWN_TOKEN, {"token": token}) is None:
                # Removing a participant deletes their addresses: unknown covers both.
                raise InvalidToken(
                    "This reply address is unknown, or its owner no longer takes part"
                )

    async def store(
        self,
        *,
        transport: str,
        peer: str,
        envelope_from: str,
        recipients: list[str],
        raw: bytes,
    ) -> list[int]:
        """Keep the message durably, once per recipient; returns the rows' ids once they are
        committed.

        Messages whose DATA ends while another store is being committed are committed
        together in the next transaction (a group commit): one write turn, one insert and
        one fsync for all of them rather than one each. A failure fails all of them (each
        sender then hears 451 and sends again); nothing is answered before its commit.
        """
        now = datetime.now(UTC)
        key = message_key(raw)
        digest = hashlib.sha256(raw).hexdigest()
        rows = [
            {
                "received_at": now,
                "transport": transport,
                "peer": peer[:100],
                "envelope_from": envelope_from[:254],
                "recipient": recipient.lower()[:254],
                "raw": raw,
                "raw_sha256": digest,
                "message_key": key,
                "status": "pending",
                "reason": "",
                "from_address": "",
                "subject": "",
                "attempts": 0,
                "possibly_quoted": False,
            }
            for recipient in recipients
        ]
        stored: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._to_store.append((rows, stored))
        async with self._storing:
            if not stored.done():  # nobody took it with theirs: this caller commits the group
                # Shielded: if this caller's SMTP session goes away meanwhile, the others'
                # messages are still committed and answered (and this one is kept too: its
                # sender, not having heard 250, sends it again, and it is a duplicate).
                await asyncio.shield(self._store_waiting())
        # Answered now, or in a group still committing whose caller went away (shielded:
        # this caller going away must not cancel what others set).
        ids = await asyncio.shield(stored)
        self._pending_added()
        return ids

    async def _store_waiting(self) -> None:
        """Insert every waiting message in one transaction, then answer each its ids (within
        the turn, so that whoever takes it next finds its own message answered)."""
        async with self._sessions() as session, writer_turn(self._sessions):
            group, self._to_store = self._to_store, []
            if not group:
                return
            try:
                async with session.begin():
                    ids = list(
                        await session.scalars(
                            insert(InboundMessage).returning(
                                InboundMessage.id, sort_by_parameter_order=True
                            ),
                            [row for rows, _ in group for row in rows],
                        )
                    )
            except Exception as error:  # nothing committed: every sender hears 451
                for _, stored in group:
                    if not stored.done():
                        stored.set_exception(error)
                return
            at = 0
            for rows, stored in group:
                if not stored.done():
                    stored.set_result(ids[at : at + len(rows)])
                at += len(rows)

    # -- processing -------------------------------------------------------------------------

    async def claim(self, limit: int, lease: timedelta) -> list[InboundMessage]:
        """Pending rows whose lease is free, now leased to the caller, oldest first.

        One conditional UPDATE … RETURNING: a processor that raced us claims none twice.
        """
        now = datetime.now(UTC)
        free = (InboundMessage.status == "pending") & or_(
            InboundMessage.claimed_until.is_(None), InboundMessage.claimed_until < now
        )
        async with self._sessions() as session, writer_turn(self._sessions), session.begin():
            claimed = await _claim_oldest(
                session,
                free,
                limit,
                claimed_until=now + lease,
                attempts=InboundMessage.attempts + 1,
            )
            if not claimed:
                return []
            rows = await session.scalars(
                select(InboundMessage).where(InboundMessage.id.in_(claimed))
            )
            return sorted(rows, key=lambda row: row.id)

    async def finish(self, row_id: int, outcome: str, reason: str, **values: Any) -> None:
        await self.finish_many([Finished(row_id, outcome, reason, values)])

    async def finish_many(self, results: list[Finished]) -> None:
        """Record outcomes, all in one transaction (a processor's batch): one executemany
        per shape of outcome, not one statement (and one trip to the database) per row."""
        if not results:
            return
        now = datetime.now(UTC)
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for result in results:
            if result.outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {result.outcome!r}")
            values = {
                **result.values,
                "status": "done",
                "outcome": result.outcome,
                "reason": result.reason[:500],
                "processed_at": now,
                "claimed_until": None,
            }
            shapes.setdefault(tuple(sorted(values)), []).append({**values, "row_id": result.row_id})
        table = cast(Table, InboundMessage.__table__)
        async with self._sessions() as session, writer_turn(self._sessions), session.begin():
            for names, rows in shapes.items():
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values({name: bindparam(name) for name in names}),
                    rows,
                )

    async def mark_notified(self, row_ids: list[int]) -> None:
        """The participants were told about these merged replies."""
        if not row_ids:
            return
        async with self._sessions() as session, writer_turn(self._sessions), session.begin():
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_(row_ids))
                .values(notified_at=datetime.now(UTC))
            )

    async def claim_untold(self, older_than: timedelta, limit: int = 200) -> list[Untold]:
        """Merged replies nobody was told about (their process stopped first), marked as told
        by the caller, who tells now (``unmark`` if that fails). Only those merged more than
        ``older_than`` ago: younger ones are still on their way in a running process. Replies
        merged over a day ago are not told any more."""
        now = datetime.now(UTC)
        untold = (
            (InboundMessage.outcome == "merged")
            & InboundMessage.notified_at.is_(None)
            & (InboundMessage.processed_at > now - timedelta(days=1))
            & (InboundMessage.processed_at < now - older_than)
        )
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            claimed = await _claim_oldest(session, untold, limit, notified_at=now)
            if not claimed:
                return []
            rows = await session.execute(
                select(InboundMessage, Participant.name)
                .join(Participant, Participant.id == InboundMessage.participant_id, isouter=True)
                .where(InboundMessage.id.in_(claimed))
                .order_by(InboundMessage.id)
            )
            return [Untold(row, name or "A participant") for row, name in rows]

    async def unmark(self, row_ids: list[int]) -> None:
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_(row_ids))
                .values(notified_at=None)
            )

    async def postpone(self, row_id: int, delay: timedelta, reason: str) -> None:
        """Leave the row pending for another try after ``delay`` (a transient failure)."""
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row_id)
                .values(claimed_until=datetime.now(UTC) + delay, reason=reason[:500])
            )

    async def release_claims(self) -> int:
        """Free the lease of every pending row; the number freed.

        Only for the one place where the caller knows that the sole processor has just died
        (``serve``'s bridge child): what it held is taken again at once, not when its lease
        runs out. Several bridges (``opendpia bridge``) rely on the leases instead."""
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            freed = await session.execute(
                update(InboundMessage)
                .where(
                    InboundMessage.status == "pending", InboundMessage.claimed_until.is_not(None)
                )
                .values(claimed_until=None)
            )
        return int(getattr(freed, "rowcount", 0) or 0)

    async def pending(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).where(InboundMessage.status == "pending")
            )
            return int(count or 0)

    async def situation(self, row: InboundMessage, token: str) -> Situation:
        """The reply address's context, an earlier copy of the message, and how many replies
        its participant had merged in the last hour: one session, not three."""
        since = datetime.now(UTC) - timedelta(hours=1)
        async with self._sessions() as session:
            found = (await session.execute(_CONTEXT, {"token": token})).first()
            if found is None:
                return Situation(None, None, 0)
            reply, participant, dpia = found
            earlier = await session.scalar(_earlier(row))
            merged = await session.scalar(
                select(func.count()).where(
                    InboundMessage.participant_id == reply.participant_id,
                    InboundMessage.outcome == "merged",
                    InboundMessage.processed_at >= since,
                )
            )
            return Situation(ReplyContext(reply, participant, dpia), earlier, int(merged or 0))

    async def participant(self, participant_id: int) -> Participant | None:
        async with self._sessions() as session:
            return await session.get(Participant, participant_id)

    async def keep_attachments(
        self, row_id: int, dpia_id: str, files: list[NewAttachment]
    ) -> list[InboundAttachment]:
        """Store accepted attachments (idempotent: a reprocessed message reuses its rows)."""
        if not files:
            return []
        async with self._sessions.begin() as session:
            existing = list(
                await session.scalars(
                    select(InboundAttachment)
                    .where(InboundAttachment.inbound_id == row_id)
                    .order_by(InboundAttachment.id)
                )
            )
            if existing:
                return existing
            rows = [
                InboundAttachment(
                    inbound_id=row_id,
                    dpia_id=dpia_id,
                    filename=file.filename,
                    content_type=file.content_type,
                    size=len(file.data),
                    sha256=hashlib.sha256(file.data).hexdigest(),
                    data=file.data,
                )
                for file in files
            ]
            session.add_all(rows)
            await session.flush()
            return rows

    async def unsubscribe(self, participant_id: int) -> None:
        async with self._sessions.begin() as session:
            preference = await session.get(MailPreference, participant_id)
            if preference is None:
                session.add(MailPreference(participant_id=participant_id, mode="off"))
            else:
                preference.mode = "off"

    async def record_bounce(self, participant_id: int, *, hard: bool, reason: str) -> bool:
        """Count a bounce against the address; True when its mail is (now) paused.

        Counted by atomic updates: bounces for one address may be processed concurrently.
        """
        now = datetime.now(UTC)
        async with self._sessions() as session:
            if await session.get(Participant, participant_id) is None:
                return False
        try:
            async with self._sessions.begin() as session:
                session.add(
                    MailHealth(
                        participant_id=participant_id,
                        hard_bounces=0,
                        soft_bounces=0,
                        last_reason="",
                    )
                )
        except IntegrityError:
            pass  # the address has bounced before
        column = MailHealth.hard_bounces if hard else MailHealth.soft_bounces
        async with self._sessions.begin() as session:
            await session.execute(
                update(MailHealth)
                .where(MailHealth.participant_id == participant_id)
                .values({column: column + 1, "last_bounce_at": now, "last_reason": reason[:500]})
            )
            await session.execute(
                update(MailHealth)
                .where(
                    MailHealth.participant_id == participant_id,
                    MailHealth.hard_bounces >= HARD_BOUNCES_TO_PAUSE,
                    MailHealth.paused_at.is_(None),
                )
                .values(paused_at=now)
            )
            paused = await session.scalar(
                select(MailHealth.paused_at).where(MailHealth.participant_id == participant_id)
            )
            return paused is not None

    async def may_answer(self, address: str, reason: str, today: date | None = None) -> bool:
        """Claim the one automatic answer allowed per address, reason and day."""
        try:
            async with self._sessions.begin() as session:
                session.add(
                    AutoAnswer(
                        address=address.lower()[:254],
                        reason=reason[:40],
                        day=today or datetime.now(UTC).date(),
                    )
                )
            return True
        except IntegrityError:
            return False

    # -- the owners' view ---------------------------------------------------------------------

    async def for_dpia(self, dpia_id: str, limit: int = 200) -> list[InboundMessage]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(InboundMessage)
                .where(InboundMessage.dpia_id == dpia_id)
                .order_by(InboundMessage.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def mail_health(self, dpia_id: str) -> dict[int, MailHealth]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MailHealth)
                .join(Participant, Participant.id == MailHealth.participant_id)
                .where(Participant.dpia_id == dpia_id)
            )
            return {row.participant_id: row for row in rows}

    async def resume_mail(self, dpia_id: str, participant_id: int) -> None:
        """An owner says the address works again: clear its bounces."""
        async with self._sessions.begin() as session:
            participant = await session.get(Participant, participant_id)
            if participant is None or participant.dpia_id != dpia_id:
                raise DocumentNotFound("No such participant on this DPIA")
            health = await session.get(MailHealth, participant_id)
            if health is not None:
                await session.delete(health)

    async def held(self, dpia_id: str, row_id: int) -> InboundMessage:
        async with self._sessions() as session:
            row = await session.get(InboundMessage, row_id)
            if row is None or row.dpia_id != dpia_id:
                raise DocumentNotFound("No such message on this DPIA")
            if row.outcome != "held":
                raise InvalidInput("Only a held message can be posted or discarded")
            return row

    async def release(self, dpia_id: str, row_id: int, by: str) -> None:
        """An owner vouches for a held reply: the processor posts it on its next pass (a
        pending row whose outcome is still ``held`` skips the sender-authentication hold)."""
        await self.held(dpia_id, row_id)
        async with self._sessions.begin() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row_id)
                .values(status="pending", claimed_until=None, reason=f"released by {by}"[:500])
            )
        self._pending_added()

    async def discard(self, dpia_id: str, row_id: int, by: str) -> None:
        await self.held(dpia_id, row_id)
        await self.finish(row_id, "discarded", f"discarded by {by}")

    async def attachment(self, dpia_id: str, attachment_id: int) -> InboundAttachment:
        async with self._sessions() as session:
            row = await session.get(InboundAttachment, attachment_id)
            if row is None or row.dpia_id != dpia_id:
                raise DocumentNotFound("No such attachment on this DPIA")
            return row


# Built once: these run for every RCPT and every reply.
_KNOWN_TOKEN = select(ReplyToken.token).where(ReplyToken.token == bindparam("token"))
# A reply address with its participant and DPIA (either may be gone), in one statement.
_CONTEXT = (
    select(ReplyToken, Participant, Dpia)
    .outerjoin(Participant, Participant.id == ReplyToken.participant_id)
    .outerjoin(Dpia, Dpia.id == ReplyToken.dpia_id)
    .where(ReplyToken.token == bindparam("token"))
)


def _earlier(row: InboundMessage) -> Select[InboundMessage]:
    """An earlier copy of the same message to the same address that was merged or held."""
    return (
        select(InboundMessage)
        .where(
            InboundMessage.message_key == row.message_key,
            InboundMessage.recipient == row.recipient,
            InboundMessage.id != row.id,
            InboundMessage.outcome.in_(("merged", "held", "trigger")),
        )
        .order_by(InboundMessage.id)
        .limit(1)
    )


async def _claim_oldest(
    session: AsyncSession, condition: ColumnElement[bool], limit: int, **values: Any
) -> list[int]:
    """The ids of the oldest ``limit`` rows meeting ``condition``, set to ``values`` by one
    conditional UPDATE … RETURNING: a caller that raced this one takes none of them twice."""
    oldest = select(InboundMessage.id).where(condition).order_by(InboundMessage.id).limit(limit)
    return list(
        await session.scalars(
            update(InboundMessage)
            .where(InboundMessage.id.in_(oldest.scalar_subquery()), condition)
            .values(**values)
            .returning(InboundMessage.id)
        )
    )
