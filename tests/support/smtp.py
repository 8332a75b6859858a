"""SMTP servers for tests, on loopback: a recording sink and a flaky one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.raw, policy=policy.default)
        return parsed


@dataclass
class Sink:
    """Accepts everything and keeps it; ``fail_first`` answers make it flaky."""

    received: list[Received] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # answers for the next DATA commands
    drop_connections: int = 0  # this many RCPTs drop the connection instead
    refuse_all: str | None = None
    delay: float = 0.0  # seconds per message, to catch a sender mid-batch
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.drop_connections > 0:
            self.drop_connections -= 1
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 going away"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_all is not None:
            return self.refuse_all
        if self.script:
            return self.script.pop(0)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.append(
            Received(
                str(envelope.mail_from), list(envelope.rcpt_tos), envelope.original_content or b""
            )
        )
        self.arrived.set()
        return "250 2.0.0 OK"

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


async def serve_sink(sink: Sink) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="test-sink"), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return server, port
