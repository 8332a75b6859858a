"""The bridge's front door: SMTP and LMTP on aiosmtpd.

RCPT is where forged or unknown reply addresses are refused (550), before the body is
taken, so nothing is ever sent back to a possibly forged sender. DATA is answered 250 only
once the raw bytes and the envelope are committed to the database; if that fails the answer
is 451 and the sending server tries again later. Oversized mail gets 552 from aiosmtpd's
own size limit. LMTP answers DATA once per recipient, as RFC 2033 requires.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from server.domain.errors import InvalidToken
from server.services.inbound import InboundStore

log = logging.getLogger("opendpia.bridge")
MAX_RECIPIENTS = 20


class BridgeHandler:
    """aiosmtpd handler: check recipients, store, then answer."""

    def __init__(self, store: InboundStore, transport: str, link: str = "") -> None:
        self._store = store
        self._transport = transport
        self._link = link

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        try:
            await self._store.check_recipient(address)
        except InvalidToken as error:
            # Their own server turns this into a bounce: say why, and where to go instead.
            where = f"; ask the DPIA's owner or see {self._link}" if self._link else ""
            return f"550 5.1.1 {_one_line(str(error))}{where}"
        except Exception:
            log.exception("bridge: recipient check failed")
            return "451 4.3.0 cannot check this address now; try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 recipient ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            ids = await self._store.store(
                transport=self._transport,
                peer=peer_text,
                envelope_from=str(envelope.mail_from or ""),
                recipients=list(envelope.rcpt_tos),
                raw=raw,
            )
        except Exception:
            log.exception("bridge: could not store a message")
            statuses = ["451 4.3.0 could not store the message; try again later"]
            return _answer(statuses, envelope, self._transport)
        statuses = [f"250 2.0.0 stored as #{row_id}" for row_id in ids]
        return _answer(statuses, envelope, self._transport)


def _answer(statuses: list[str], envelope: Envelope, transport: str) -> str:
    if transport == "lmtp":
        if len(statuses) == 1:
            statuses = statuses * len(envelope.rcpt_tos)
        return "\r\n".join(statuses)
    return statuses[0]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for the bridge (``serve`` keeps it while its child restarts, so
    mail servers' connections wait in its backlog rather than being refused)."""
    return socket.create_server((host, port), backlog=128)


async def listen(
    handler: BridgeHandler,
    *,
    sock: socket.socket,
    lmtp: bool,
    hostname: str,
    max_bytes: int,
    tls: ssl.SSLContext | None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    kind: type[SMTP] = LMTP if lmtp else SMTP

    def protocol() -> Any:
        return kind(
            handler,
            hostname=hostname,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            tls_context=tls,
            require_starttls=False,
            ident="OpenDPIA email bridge",
        )

    return await loop.create_server(protocol, sock=sock)


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    """STARTTLS is offered when a certificate and its key are configured."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key or None)
    return context
