"""The bridge's own short answers to people whose reply could not be posted.

RFC 3834 rules: ``Auto-Submitted: auto-replied``, an empty envelope sender (so nothing ever
answers the answer), at most one per address, reason and day, and only ever to a person:
the processor never calls this for automatic mail, bounces, lists or unauthenticated senders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from server.mail.compose import Outgoing, compose, new_message_id, one_line
from server.services.inbound import InboundStore
from server.services.outbox import enqueue

log = logging.getLogger("opendpia.bridge")


class Answerer:
    def __init__(
        self,
        store: InboundStore,
        *,
        mail_from: str,
        installation: str,
        on_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._mail_from = mail_from
        self._installation = installation
        self._on_queued = on_queued

    async def answer(
        self,
        *,
        to: str,
        reason_code: str,
        explanation: str,
        link: str,
        in_reply_to: str,
        subject: str,
        dpia_id: str | None,
    ) -> bool:
        """Queue one short answer; False when this address had this answer today already."""
        if not await self._store.may_answer(to, reason_code):
            log.info("bridge: not answering %s again today (%s)", to, reason_code)
            return False
        text = (
            "Your email reply could not be added to the DPIA.\n\n"
            f"Why: {explanation}\n\n"
            f"What you can do: {link}\n\n"
            "This is an automatic message; replies to it are not read.\n"
        )
        message_id = new_message_id(self._installation, "answer")
        headers = {}
        if in_reply_to:
            headers = {"In-Reply-To": in_reply_to, "References": in_reply_to}
        mail = Outgoing(
            sender=self._mail_from,
            recipient=to,
            recipient_name="",
            subject=one_line(f"Not posted: {subject}" if subject else "Your reply was not posted"),
            text=text,
            html=None,
            message_id=message_id,
            headers=headers,
            auto_submitted="auto-replied",
        )
        async with self._store.sessions.begin() as session:
            enqueue(
                session,
                sender="",  # the null reverse-path: nothing answers an answer
                recipient=to,
                message=compose(mail, installation=self._installation),
                message_id=message_id,
                dpia_id=dpia_id,
                subject=mail.subject,
            )
        self._on_queued()
        return True
