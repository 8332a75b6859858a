"""The email bridge as composed by the program: on ``serve``'s loop, as ``serve``'s child
process, or alone (``opendpia bridge``).

In the embedded default ``serve`` starts the bridge as a child process
(``OPENDPIA_BRIDGE_PROCESS``, on by default): the child receives, stores, parses, checks and
answers mail and records notifications with its own database connections; ``serve`` only
writes each finished comment into its room (``email_bridge.isolation``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from server.settings import Settings

if TYPE_CHECKING:
    from server.bootstrap import Service
    from server.web.runtime import Runtime

log = logging.getLogger("opendpia.bridge")
# The child yields the CPU to serve when both want it: on a busy machine the scheduler would
# otherwise share it evenly, and the editors' loop would wait for mail's turn.
CHILD_NICENESS = 10


def bridge_service(settings: Settings, *, embedded: bool = True) -> Service:
    """The email bridge as a service of the runtime (the CLI composes both packages)."""
    from server.metrics import BRIDGE_MESSAGES

    def count(outcome: str) -> None:
        BRIDGE_MESSAGES.labels(outcome=outcome).inc()

    def start(runtime: Runtime) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        if embedded and settings.bridge_process:
            from email_bridge.isolation import BridgeProcess, EditingHost, child_command
            from email_bridge.service import open_listeners

            host = EditingHost(
                runtime.editing,
                runtime.usecases.reviews,
                announce=runtime.notifications.wake,
                queued=runtime.notifications.queued,
                outcome=count,
            )
            child = BridgeProcess(
                child_command(),
                settings.environment(),
                host,
                runtime.inbound,
                lambda: open_listeners(settings, embedded=True),
            )
            return child.run

        from email_bridge.service import Bridge

        bridge = Bridge(
            settings,
            runtime.inbound,
            runtime.usecases.comments,
            runtime.notifications,
            on_queued=runtime.notifications.queued,
            embedded=embedded,
            on_outcome=count,
            reviews=runtime.usecases.reviews,
            templates=runtime.dpias.templates,
        )
        return bridge.run

    return start


async def run_child(settings: Settings, fd: int, listen: str) -> int:
    """``serve``'s bridge child: the whole bridge, with the rooms' edits sent to ``serve``.

    Runs until ``serve`` closes the link (it stops, or died), then stops.
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from email_bridge.isolation import (
        RemoteEditing,
        RemoteReviews,
        child_link,
        inherited_listeners,
    )
    from email_bridge.service import Bridge
    from server.bootstrap import notification_service
    from server.services.dpias import DpiaService
    from server.services.inbound import InboundStore
    from server.storage.database import create_engine
    from server.storage.updates import SqlUpdateStore
    from server.usecases.comments import Comments

    os.nice(CHILD_NICENESS)
    # serve stops its child by closing the link; a terminal's Ctrl-C reaches both.
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, lambda: None)
    wake: list[Callable[[], None]] = []

    def notice(op: str, args: dict[str, Any]) -> None:
        if op == "wake":
            for callback in wake:
                callback()

    link = await child_link(fd, notice)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        notifications = notification_service(
            settings,
            sessions,
            None,
            on_queued=lambda: link.notify("queued"),
            announce_to=lambda users: link.notify("announce", users=sorted(set(users))),
        )
        dpias = DpiaService(sessions, SqlUpdateStore(engine))
        await dpias.templates.preload()
        bridge = Bridge(
            settings,
            InboundStore(sessions, notifications.mail.reply_keys),
            Comments(dpias, RemoteEditing(link), notifications),
            notifications,
            on_queued=lambda: link.notify("queued"),
            on_outcome=lambda outcome: link.notify("outcome", outcome=outcome),
            embedded=True,
            reviews=RemoteReviews(link),
            templates=dpias.templates,
        )
        wake.append(bridge.processor.wake)
        started = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            running = tasks.create_task(bridge.run(started, inherited_listeners(listen)))
            await started.wait()
            link.notify("ready")
            log.info("email bridge: running in its own process")
            await link.run()  # until serve closes its end
            bridge.stop_listening()
            running.cancel()
    finally:
        await engine.dispose()
    return 0
