"""IMAP polling, for organisations that cannot route the reply domain to the bridge.

Every ``OPENDPIA_BRIDGE_IMAP_SECONDS`` the poller opens the mailbox named in
``OPENDPIA_BRIDGE_IMAP_URL`` (``imaps://user:password@host/INBOX``, or ``imap://`` with
STARTTLS when the server offers it), and for each unseen message finds the reply and bounce
addresses it was delivered to (``Delivered-To``, ``X-Original-To``, ``To``, ``Cc``). A
message with one is stored exactly as SMTP stores it and only then deleted from the
mailbox, so a crash in between fetches it again (and it is recognised as a duplicate). A
message with none is marked seen and left for a person to look at.

imaplib is blocking: each poll runs in a thread, which hands messages to the event loop to
be stored and waits for the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import ssl
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote, urlsplit

from server.domain.errors import InvalidToken
from server.domain.tasks import stop_if_cancelled
from server.mail.reading import READING_POLICY
from server.services.inbound import InboundStore

log = logging.getLogger("opendpia.bridge")
MAX_PER_POLL = 200


@dataclass(frozen=True)
class ImapAddress:
    host: str
    port: int
    user: str
    password: str
    mailbox: str
    tls: bool

    @classmethod
    def parse(cls, url: str) -> ImapAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ValueError("OPENDPIA_BRIDGE_IMAP_URL must look like imaps://user:pass@host/INBOX")
        return cls(
            host=parts.hostname,
            port=parts.port or (993 if parts.scheme == "imaps" else 143),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
            tls=parts.scheme == "imaps",
        )


class ImapPoller:
    def __init__(self, store: InboundStore, url: str, every_seconds: float) -> None:
        self._store = store
        self._address = ImapAddress.parse(url)
        self._every = every_seconds

    async def run(self, started: asyncio.Event) -> None:
        started.set()
        loop = asyncio.get_running_loop()
        while True:
            stop_if_cancelled()
            try:
                taken = await asyncio.to_thread(self._poll, loop)
                if taken:
                    log.info("bridge: took %d message(s) from IMAP", taken)
            except (OSError, imaplib.IMAP4.error) as error:
                log.warning("bridge: IMAP poll failed (%s); trying again later", error)
            await asyncio.sleep(self._every)

    def _connect(self) -> imaplib.IMAP4:
        address = self._address
        client: imaplib.IMAP4
        if address.tls:
            client = imaplib.IMAP4_SSL(address.host, address.port, timeout=30)
        else:
            client = imaplib.IMAP4(address.host, address.port, timeout=30)
            if "STARTTLS" in client.capabilities:
                client.starttls(ssl.create_default_context())
        client.login(address.user, address.password)
        status, _ = client.select(_quoted(address.mailbox))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open mailbox {address.mailbox!r}")
        return client

    def _poll(self, loop: asyncio.AbstractEventLoop) -> int:
        """One pass over the unseen messages (runs in a thread); the number stored."""
        client = self._connect()
        taken = 0
        try:
            status, found = client.uid("SEARCH", "UNSEEN UNDELETED")
            uids = found[0].split()[:MAX_PER_POLL] if status == "OK" and found[0] else []
            for uid in uids:
                status, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = _body(data) if status == "OK" else None
                if raw is None:
                    continue
                recipients = asyncio.run_coroutine_threadsafe(self._recipients(raw), loop).result()
                if not recipients:
                    client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
                    log.warning("bridge: IMAP message %s has no reply address of ours", uid)
                    continue
                asyncio.run_coroutine_threadsafe(
                    self._store.store(
                        transport="imap",
                        peer=f"{self._address.host}:{self._address.port}",
                        envelope_from=_return_path(raw),
                        recipients=recipients,
                        raw=raw,
                    ),
                    loop,
                ).result()
                client.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
                taken += 1
            if taken:
                client.expunge()
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.logout()
        return taken

    async def _recipients(self, raw: bytes) -> list[str]:
        headers = BytesHeaderParser(policy=READING_POLICY).parsebytes(raw[: 256 * 1024])
        candidates: list[str] = []
        for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc"):
            values = [str(v) for v in headers.get_all(name) or []]
            candidates += [address.lower() for _, address in getaddresses(values) if address]
        accepted: list[str] = []
        for address in dict.fromkeys(candidates):
            if not self._store.reply_keys.is_ours(address):
                continue
            try:
                await self._store.check_recipient(address)
            except InvalidToken:
                continue
            accepted.append(address)
        return accepted


def _body(data: list[object]) -> bytes | None:
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _return_path(raw: bytes) -> str:
    """The envelope sender as the delivering server recorded it (``<>`` for a bounce);
    without a Return-Path, the From address (an empty one would read as automatic mail)."""
    headers = BytesHeaderParser(policy=READING_POLICY).parsebytes(raw[: 64 * 1024])
    value = str(headers.get("Return-Path", "") or "").strip()
    if value == "<>":
        return ""
    if value:
        return parseaddr(value)[1]
    return parseaddr(str(headers.get("From", "") or ""))[1]


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
