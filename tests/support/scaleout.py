"""Several ``opendpia serve`` processes on one PostgreSQL database and one Redis, for the
scale-out tests: their environment, starting and stopping them, a client URL, what is stored."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from server.domain.access import Role
from server.domain.documents import StoredDocument
from server.settings import Settings
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.support.live import ServerProcess, issue_token
from tests.support.redisproc import RedisProcess

SECRET = "scale-out-test-secret-key-0123456789abcdef"


def scaleout_env(database_url: str, redis: RedisProcess, **extra: str) -> dict[str, str]:
    return {
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": database_url,
        "OPENDPIA_SECRET_KEY": SECRET,
        "OPENDPIA_REDIS_URL": redis.url,
        "OPENDPIA_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "OPENDPIA_LOG_LEVEL": "warning",
        "OPENDPIA_ROOM_GRACE_SECONDS": "1",
        **extra,
    }


@contextlib.asynccontextmanager
async def processes(
    count: int,
    database_url: str,
    redis: RedisProcess,
    tmp_path: Path,
    env: dict[str, str] | None = None,
) -> AsyncIterator[list[ServerProcess]]:
    env = dict(env or scaleout_env(database_url, redis))
    servers = []
    try:
        for i in range(count):
            server = ServerProcess(dict(env), tmp_path / f"server{i}.log")
            servers.append(await asyncio.to_thread(server.start))
        yield servers
    finally:
        for server in servers:
            await asyncio.to_thread(server.terminate)


def editor_url(server: ServerProcess, document_id: str, *, saved: bool = False) -> str:
    settings = Settings(env="test", secret_key=SECRET)
    token = issue_token(settings, document_id, Role.EDITOR)
    return f"ws://127.0.0.1:{server.port}/ws/dpia/{document_id}?token={token}" + (
        "&saved=1" if saved else ""
    )


async def stored_document(database_url: str, document_id: str) -> StoredDocument:
    engine = create_engine(database_url)
    try:
        stored = await SqlUpdateStore(engine).load(document_id)
    finally:
        await engine.dispose()
    assert stored is not None
    return stored
