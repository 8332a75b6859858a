"""Sending over SMTP with aiosmtplib, one connection reused for a batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib


class DeliveryError(Exception):
    """The server did not take the message (or could not be reached)."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class MailSession(Protocol):
    async def send(self, sender: str, recipient: str, message: bytes) -> None: ...


class MailTransport(Protocol):
    def session(self) -> AbstractAsyncContextManager[MailSession]: ...


@dataclass(frozen=True)
class SmtpTransport:
    """``smtp://[user:password@]host[:port]`` (STARTTLS when offered) or ``smtps://``."""

    url: str
    timeout: float = 30.0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        parts = urlsplit(self.url)
        implicit_tls = parts.scheme == "smtps"
        client = aiosmtplib.SMTP(
            hostname=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
            start_tls=None if not implicit_tls else False,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"cannot reach the mail server: {error}") from None
        try:
            yield _Session(client)
        finally:
            try:
                with suppress(aiosmtplib.SMTPException, OSError):
                    await client.quit()
            finally:
                # Cancelled (a worker stopping) before the server said goodbye: the socket
                # is closed all the same, not left to the garbage collector.
                client.close()


class _Session:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            await self._client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0] if error.recipients else None
            raise DeliveryError(
                f"recipient refused: {refused.message if refused else error}",
                refused.code if refused else None,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(f"{error.code} {error.message}", error.code) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"connection lost: {error}") from None
