"""The development SMTP sink: catches every outgoing message into the ``dev_mail`` table.

Only the embedded development set-up runs it (no OPENDPIA_SMTP_URL); ``/dev/mail`` shows
what partners would receive.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from server.storage.models import DevMail

MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class DevMailbox:
    """aiosmtpd handler: a message is stored before it is accepted."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(DevMail).values(
                        received_at=datetime.now(UTC),
                        mail_from=str(envelope.mail_from or "")[:254],
                        rcpt_to=", ".join(envelope.rcpt_tos)[:2000],
                        message=content,
                    )
                )
        except Exception:
            return "451 4.3.0 could not store the message; try again"
        return "250 2.0.0 caught by the OpenDPIA development mailbox"


async def start_sink(engine: AsyncEngine, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(DevMailbox(engine), hostname="opendpia-dev", data_size_limit=MAX_MESSAGE_BYTES)

    return await loop.create_server(protocol, host=host, port=port)
