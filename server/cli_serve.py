"""The ``opendpia`` commands that run until stopped: serve, worker and bridge.

``serve`` checks the schema (migrating in a child process when it is behind), tunes the
garbage collector and runs uvicorn with the application, the broadcast-once WebSocket
protocol and, embedded, the email bridge; ``worker`` and ``bridge`` run the mail worker
and the bridge on their own, with /metrics on a port of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from server.cli_bridge import bridge_service
from server.settings import Settings

GC_YOUNG_THRESHOLD = 2_000  # allocations between young collections (Python's default: 700)

if TYPE_CHECKING:
    import uvicorn


async def work(settings: Settings) -> int:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.bootstrap import notification_service, outbox_worker
    from server.storage.database import create_engine, migrate

    if settings.migrate_on_start:
        await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    worker = outbox_worker(settings, sessions)
    notifications = notification_service(settings, sessions, worker)
    logging.getLogger("opendpia").info("mail worker started")
    serve_metrics(settings)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.run(asyncio.Event()))
            tasks.create_task(notifications.digests.run(asyncio.Event()))
    finally:
        await engine.dispose()
    return 0


async def bridge(settings: Settings) -> int:
    from server.bootstrap import open_runtime

    logging.getLogger("opendpia").info("email bridge starting")
    serve_metrics(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with open_runtime(settings, [bridge_service(settings, embedded=False)], web=False):
        await stop.wait()
    return 0


def tune_gc() -> None:
    """Keep the cyclic garbage collector's pauses short in a long-running process.

    Everything loaded at startup (modules, templates, metadata) is frozen out of the
    collector's full scans, and the young generation is collected after 2,000 allocations
    rather than 700, so fewer messages in flight are promoted. With Python's defaults, a
    process holding a thousand rooms stopped for 100 to 200 ms at each full collection,
    every few seconds (bench/README.md has the runs behind the numbers chosen).
    """
    import gc

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def serve_metrics(settings: Settings) -> None:
    """Commands without a web server (worker, bridge) expose /metrics on their own port."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    if settings.migrate_on_start:
        if not migrate_apart(settings):
            return 1
        settings = dataclasses.replace(settings, auto_migrate=False)
    config = uvicorn_config(settings, host=host, port=port)
    tune_gc()  # once the application is built: what it loaded is frozen too
    uvicorn.Server(config).run()
    return 0


def migrate_apart(settings: Settings) -> bool:
    """Bring the database to the newest schema before serving, in a child process when
    there is anything to do: Alembic (with Mako and Pygments) then never enters the
    server's memory, about 11 MB of it (decision 142). False if the migration failed."""
    from server.storage.database import create_engine, schema_is_current

    async def current() -> bool:
        engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
        try:
            return await schema_is_current(engine)
        finally:
            await engine.dispose()

    if asyncio.run(current()):
        return True
    # Its own logs go where ours do (same settings); its closing line to stdout is ours to say.
    done = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=dict(os.environ), stdout=subprocess.DEVNULL
    )
    if done.returncode != 0:
        print("opendpia: the database could not be migrated (see above)", file=sys.stderr)
        return False
    logging.getLogger("opendpia").info("the database was migrated to the newest schema")
    return True


def uvicorn_config(settings: Settings, **overrides: object) -> uvicorn.Config:
    """The uvicorn configuration the server runs with (tests use it too)."""
    import uvicorn

    from server.bootstrap import create_app
    from server.web.wsprotocol import DirectWriteProtocol

    services = [bridge_service(settings)] if settings.bridge_in_process else []
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        # Behind a proxy that terminates TLS, its X-Forwarded-Proto and X-Forwarded-For make
        # request.url.scheme https (wss URLs for the editor) and request.client the browser
        # (per-address sign-in throttling), but only from the addresses trusted here.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        # The sans-I/O websockets implementation is the cheapest per message (bench/README),
        # and this subclass of it writes a broadcast frame encoded once for all peers.
        "ws": DirectWriteProtocol,
        "ws_per_message_deflate": settings.ws_deflate,
        "ws_max_size": settings.max_frame_bytes,
        "ws_ping_interval": settings.ws_ping_seconds,
        "ws_ping_timeout": settings.ws_ping_seconds,
        "lifespan": "on",
        "log_level": settings.log_level,
        "log_config": None,  # keep the root configuration (and its redaction filter)
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    options.update(overrides)
    return uvicorn.Config(create_app(settings, services), **options)  # type: ignore[arg-type]
