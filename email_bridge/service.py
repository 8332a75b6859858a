"""The bridge as one long-running service: listeners plus the processor, from settings.

``serve`` runs it in-process in the embedded default (it shares the web process's rooms, so
browsers see a reply the moment it is merged); ``opendpia bridge`` runs it alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable

from email_bridge.answers import Answerer
from email_bridge.imap import ImapPoller
from email_bridge.listener import BridgeHandler, bind, listen, tls_context
from email_bridge.processor import BridgePolicy, ReplyProcessor, TriggerRaiser
from server.services.inbound import InboundStore
from server.services.notifications import NotificationService
from server.services.template_library import TemplateLibrary
from server.settings import Settings
from server.usecases.comments import Comments

log = logging.getLogger("opendpia.bridge")


class Bridge:
    def __init__(
        self,
        settings: Settings,
        store: InboundStore,
        comments: Comments,
        notifications: NotificationService,
        *,
        on_queued: Callable[[], None] = lambda: None,
        on_outcome: Callable[[str], None] = lambda outcome: None,
        embedded: bool = False,
        reviews: TriggerRaiser | None = None,
        templates: TemplateLibrary,
    ) -> None:
        self.settings = settings
        self._embedded = embedded
        self.store = store
        answerer = Answerer(
            self.store,
            mail_from=settings.mail_from,
            installation=notifications.mail.domain,
            on_queued=on_queued,
        )
        self.processor = ReplyProcessor(
            self.store,
            comments,
            notifications,
            answerer,
            BridgePolicy(
                installation=notifications.mail.domain,
                own_addresses=frozenset({_bare(settings.mail_from)}),
                trusted_authserv_ids=frozenset(
                    s.strip().lower()
                    for s in settings.bridge_trusted_authserv_ids.split(",")
                    if s.strip()
                ),
                replies_per_hour=settings.bridge_replies_per_hour,
            ),
            templates,
            on_outcome=on_outcome,
            reviews=reviews,
        )
        store.on_pending(self.processor.wake)
        self._servers: list[asyncio.Server] = []

    def stop_listening(self) -> None:
        """Close the listening sockets now (a child whose serve is gone frees the ports at
        once for the next serve, before it finishes what it holds)."""
        for server in self._servers:
            server.close()

    async def run(
        self, started: asyncio.Event, sockets: dict[str, socket.socket] | None = None
    ) -> None:
        """Listen and process until cancelled: on ``sockets`` (transport name to listening
        socket, bound by ``serve`` for its child), or on sockets of its own."""
        settings = self.settings
        tls = tls_context(settings.bridge_tls_cert, settings.bridge_tls_key)
        servers = self._servers
        if sockets is None:
            sockets = open_listeners(settings, embedded=self._embedded)
        try:
            for transport, sock in sockets.items():
                handler = BridgeHandler(self.store, transport, settings.base_url)
                server = await listen(
                    handler,
                    sock=sock,
                    lmtp=transport == "lmtp",
                    hostname=settings.reply_domain,
                    max_bytes=settings.bridge_max_bytes,
                    tls=tls,
                )
                servers.append(server)
                log.info(
                    "email bridge: %s on %s:%d%s",
                    transport.upper(),
                    *sock.getsockname()[:2],
                    " (STARTTLS offered)" if tls else "",
                )
            async with asyncio.TaskGroup() as tasks:
                ready = [asyncio.Event()]
                tasks.create_task(self.processor.run(ready[0]))
                if settings.bridge_imap_url:
                    poller = ImapPoller(
                        self.store, settings.bridge_imap_url, settings.bridge_imap_seconds
                    )
                    ready.append(asyncio.Event())
                    tasks.create_task(poller.run(ready[-1]))
                    log.info("email bridge: polling IMAP every %g s", settings.bridge_imap_seconds)
                for event in ready:
                    await event.wait()
                started.set()
        finally:
            for server in servers:
                server.close()
            for server in servers:
                await server.wait_closed()


def open_listeners(settings: Settings, *, embedded: bool) -> dict[str, socket.socket]:
    """The bridge's listening sockets by transport ("smtp", "lmtp"), for the ports set.

    Inside ``serve`` (``embedded``) a taken port must not stop the web app: it is said
    loudly and left out; ``opendpia bridge`` alone fails instead."""
    sockets: dict[str, socket.socket] = {}
    for port, transport in (
        (settings.bridge_port, "smtp"),
        (settings.bridge_lmtp_port, "lmtp"),
    ):
        if port <= 0:
            continue
        try:
            sockets[transport] = bind(settings.bridge_host, port)
        except OSError as error:
            if not embedded:
                for sock in sockets.values():
                    sock.close()
                raise
            log.error(
                "email bridge: cannot listen for %s on %s:%d (%s); replies will not "
                "arrive until OPENDPIA_BRIDGE_PORT is free or changed",
                transport.upper(),
                settings.bridge_host,
                port,
                error,
            )
    return sockets


def _bare(sender: str) -> str:
    match = re.search(r"<([^>]+)>", sender)
    return (match.group(1) if match else sender).strip().lower()
