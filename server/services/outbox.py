"""The transactional outbox and the worker that delivers it.

A message is written to ``outbox`` in the same transaction as the event that causes it, so
it exists exactly when the event does. The worker claims due messages for a lease, sends
them, and records each delivery in its own transaction. A crash between sending and
recording means the message is sent again after the lease: the same bytes with the same
Message-ID, which mail clients show once. Failures are retried with exponential backoff
until ``give_up`` has passed since the message was written; then it is marked failed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.tasks import stop_if_cancelled
from server.mail.compose import Outgoing, compose, new_message_id
from server.mail.smtp import DeliveryError, MailTransport
from server.storage.database import engine_of, writer_turn
from server.storage.models import Dpia, OutboxMessage

log = logging.getLogger("opendpia.mail")

MAX_RETRY_DELAY = timedelta(hours=1)


def enqueue(
    session: AsyncSession,
    *,
    sender: str,
    recipient: str,
    message: bytes,
    message_id: str,
    dpia_id: str | None = None,
    subject: str = "",
) -> OutboxMessage:
    """Add a message to the outbox within the caller's transaction."""
    now = datetime.now(UTC)
    row = OutboxMessage(
        message_id=message_id,
        dpia_id=dpia_id,
        subject=subject[:250],
        sender=sender,
        recipient=recipient,
        message=message,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def enqueue_text(
    session: AsyncSession,
    *,
    mail_from: str,
    domain: str,
    kind: str,
    recipient: str,
    recipient_name: str,
    subject: str,
    text: str,
    dpia_id: str | None = None,
) -> str:
    """Compose a plain-text email from the installation and add it to the outbox within the
    caller's transaction (reminders and lists that are not a notification); its Message-ID."""
    message_id = new_message_id(domain, kind)
    mail = Outgoing(
        sender=mail_from,
        recipient=recipient,
        recipient_name=recipient_name,
        subject=subject[:200],
        text=text,
        html=None,
        message_id=message_id,
    )
    enqueue(
        session,
        sender=parseaddr(mail_from)[1],
        recipient=recipient,
        message=compose(mail, installation=domain),
        message_id=message_id,
        dpia_id=dpia_id,
        subject=mail.subject,
    )
    return message_id


async def failures_for(
    sessions: async_sessionmaker[AsyncSession], organisation_ids: Sequence[int], limit: int = 200
) -> list[OutboxMessage]:
    """Undelivered mail about DPIAs the given organisations lead (for their admins)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .join(Dpia, Dpia.id == OutboxMessage.dpia_id)
            .where(
                OutboxMessage.status == "failed",
                Dpia.lead_organisation_id.in_(organisation_ids),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
        return list(rows)


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    sent: int
    failed: int


class OutboxWorker:
    """Delivers due messages. One worker per process; several processes may run one each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: MailTransport,
        *,
        retry_base: timedelta = timedelta(seconds=30),
        give_up: timedelta = timedelta(hours=48),
        lease: timedelta = timedelta(minutes=5),
        batch: int = 100,
        idle_poll_seconds: float = 1.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)
        self._transport = transport
        self._retry_base = retry_base
        self._give_up = give_up
        self._lease = lease
        self._batch = batch
        self._idle = idle_poll_seconds
        self._now = now
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New mail is waiting: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, started: asyncio.Event) -> None:
        started.set()
        while True:
            stop_if_cancelled()
            try:
                delivered = await self.deliver_due()
            except Exception:
                log.exception("the mail worker failed a round; trying again shortly")
                delivered = 0
            if delivered == 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self._idle):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def deliver_due(self) -> int:
        """Send what is due now; the number of messages attempted."""
        claimed = await self._claim()
        if not claimed:
            return 0
        try:
            async with self._transport.session() as smtp:
                for row in claimed:
                    try:
                        await smtp.send(row.sender, row.recipient, row.message)
                    except DeliveryError as error:
                        await self._failed(row, str(error))
                        if error.code is None:
                            break  # the connection is gone: the rest wait for the next round
                    else:
                        await self._sent(row)
        except DeliveryError as error:  # could not connect at all
            for row in claimed:
                if row.status == "sending":
                    await self._failed(row, str(error))
        for row in claimed:  # released without an attempt (the connection broke)
            if row.status == "sending":
                await self._release(row)
        return len(claimed)

    async def _claim(self) -> list[OutboxMessage]:
        now = self._now()
        due = or_(
            (OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
            (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now),
        )
        # Most rounds find nothing: look without a write transaction or a writer's turn
        # (an idle round took the turn from the rooms' commits once a second).
        async with self._engine.connect() as connection:
            if await connection.scalar(select(OutboxMessage.id).where(due).limit(1)) is None:
                return []
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            query = select(OutboxMessage).where(due).order_by(OutboxMessage.id).limit(self._batch)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.scalars(query)).all())
            for row in rows:
                row.status = "sending"
                row.claimed_until = now + self._lease
        return rows

    async def _sent(self, row: OutboxMessage) -> None:
        row.status = "sent"
        await self._record(
            row, status="sent", sent_at=self._now(), claimed_until=None, attempts=row.attempts + 1
        )

    async def _failed(self, row: OutboxMessage, reason: str) -> None:
        now = self._now()
        attempts = row.attempts + 1
        if now - row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC) >= self._give_up:
            row.status = "failed"
            log.error("giving up on %s to %s: %s", row.message_id, row.recipient, reason)
            await self._record(
                row, status="failed", attempts=attempts, last_error=reason[:500], claimed_until=None
            )
            return
        delay = min(MAX_RETRY_DELAY, self._retry_base * (2 ** (attempts - 1)))
        delay *= random.uniform(0.8, 1.2)
        row.status = "pending"
        log.warning("delivery of %s failed (%s); retrying in %s", row.message_id, reason, delay)
        await self._record(
            row,
            status="pending",
            attempts=attempts,
            last_error=reason[:500],
            next_attempt_at=now + delay,
            claimed_until=None,
        )

    async def _release(self, row: OutboxMessage) -> None:
        row.status = "pending"
        await self._record(row, status="pending", claimed_until=None, next_attempt_at=self._now())

    async def _record(self, row: OutboxMessage, **values: object) -> None:
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )

    async def counts(self) -> OutboxCounts:
        async with self._sessions() as session:
            rows = dict(
                (
                    await session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    )
                ).all()
            )
        return OutboxCounts(
            rows.get("pending", 0) + rows.get("sending", 0),
            rows.get("sent", 0),
            rows.get("failed", 0),
        )
