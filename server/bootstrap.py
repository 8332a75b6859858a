"""The composition root: the one place that names concrete adapters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette

from server.domain.access import TokenSigner
from server.realtime.committer import GroupCommitter
from server.realtime.editing import DocumentEditing
from server.realtime.rooms import RoomManager
from server.services.accounts import AccountService
from server.services.collaboration import CollaborationAccess
from server.services.dpias import DpiaService
from server.settings import Settings
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from server.web.app import make_app
from server.web.runtime import Runtime

log = logging.getLogger("opendpia")
SHUTDOWN_FLUSH_SECONDS = 30.0


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def open_runtime() -> AsyncIterator[Runtime]:
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate, settings.database_url)
        engine = create_engine(settings.database_url)
        store = SqlUpdateStore(engine)
        committer = GroupCommitter(store, window_seconds=settings.commit_window_ms / 1000)
        rooms = RoomManager(
            store,
            committer,
            grace_seconds=settings.room_grace_seconds,
            compact_every=settings.compact_every,
        )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        accounts = AccountService(sessions)
        dpias = DpiaService(sessions)
        runtime = Runtime(
            settings=settings,
            access=CollaborationAccess(TokenSigner(settings.secret_key), accounts, dpias),
            rooms=rooms,
            committer=committer,
            accounts=accounts,
            dpias=dpias,
            editing=DocumentEditing(rooms),
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                committer_started, rooms_started = asyncio.Event(), asyncio.Event()
                services = [
                    tasks.create_task(committer.run(committer_started)),
                    tasks.create_task(rooms.run(rooms_started)),
                ]
                await committer_started.wait()
                await rooms_started.wait()
                try:
                    yield runtime
                finally:
                    try:
                        async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                            await rooms.flush_all()
                            await committer.idle()
                    except TimeoutError:
                        log.error("shutdown: some changes could not be committed in time")
                    for task in services:
                        task.cancel()
        finally:
            await engine.dispose()

    return make_app(open_runtime, settings)
