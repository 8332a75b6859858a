"""What operators rely on: health, readiness, metrics, structured logs, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from alembic.script import ScriptDirectory
from pycrdt import Map
from sqlalchemy import text

from server.domain.access import Role
from server.settings import Settings
from server.storage.database import alembic_config, create_engine, migrate
from tests.support.live import ROOT, WAIT_SECONDS, LiveServer, ServerProcess, issue_token
from tests.support.redisproc import RedisProcess
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

SECRET = "operations-test-secret-key-0123456789abcdef"


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


async def test_health_readiness_and_metrics_of_the_embedded_server(
    live_server: LiveServer,
) -> None:
    client = await YClient.connect(live_server.url("ops", saved=True))
    client.doc.get("values", type=Map)["a"] = 1
    await client.wait_saved()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{live_server.port}", timeout=WAIT_SECONDS
    ) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz", headers={"x-request-id": "probe-42"})
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "bus": "ok"}
        assert ready.headers["x-request-id"] == "probe-42"
        assert re.fullmatch(r"[0-9a-f]{16}", (await http.get("/healthz")).headers["x-request-id"])
        metrics = await http.get("/metrics")
    await client.close()
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert _metric(text, "opendpia_connections") == 1
    assert _metric(text, "opendpia_rooms") == 1
    assert _metric(text, 'opendpia_updates_total{source="local"}') >= 1
    assert _metric(text, "opendpia_commit_seconds_count") >= 1
    assert _metric(text, "opendpia_outbox_depth") == 0
    assert "# TYPE opendpia_bridge_messages_total counter" in text


async def test_the_servers_share_of_a_first_sync_is_timed_once_at_its_sync_step_2(
    live_server: LiveServer,
) -> None:
    count = "opendpia_first_sync_seconds_count"
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{live_server.port}", timeout=WAIT_SECONDS
    ) as http:

        async def observed() -> float:
            return _metric((await http.get("/metrics")).text, count)

        before = await observed()
        # Connected, sent the server's step 1, but not yet asked for the document.
        quiet = await websockets.connect(live_server.url("share"), ping_interval=None)
        await quiet.recv()
        assert await observed() == before
        client = await YClient.connect(live_server.url("share"))
        assert await observed() == before + 1
        # A second step 2 on the same connection is not a first sync.
        received = client.frames_received
        await client.send_raw(b"\x00\x00\x01\x00")  # sync step 1 of an empty document
        await client.wait_until(lambda: client.frames_received > received)
        assert await observed() == before + 1
        await client.close()
        await quiet.close()


@pytest.mark.postgres
@pytest.mark.slow
async def test_readiness_fails_while_redis_is_down_and_recovers(
    postgres_url: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate, postgres_url)
    env = {
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": postgres_url,
        "OPENDPIA_SECRET_KEY": SECRET,
        "OPENDPIA_REDIS_URL": redis_server.url,
        "OPENDPIA_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "OPENDPIA_LOG_LEVEL": "warning",
    }
    server = await asyncio.to_thread(ServerProcess(env, tmp_path / "server.log").start)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=WAIT_SECONDS
        ) as http:
            assert (await http.get("/readyz")).status_code == 200
            await asyncio.to_thread(redis_server.kill)
            down = await http.get("/readyz")
            assert down.status_code == 503
            assert down.json()["database"] == "ok"
            assert down.json()["bus"] != "ok"
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
            await asyncio.to_thread(redis_server.start)
            async with asyncio.timeout(WAIT_SECONDS):
                while (await http.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(server.terminate)


@pytest.mark.slow
async def test_sigterm_tells_clients_to_reconnect_and_keeps_every_edit(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    env = {
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": database_url,
        "OPENDPIA_SECRET_KEY": SECRET,
        "OPENDPIA_LOG_LEVEL": "info",
        "OPENDPIA_LOG_FORMAT": "json",
        # Long enough that nothing is committed before the signal unless shutdown does it.
        "OPENDPIA_COMMIT_WINDOW_MS": "3000",
    }
    log_path = tmp_path / "server.log"
    server = await asyncio.to_thread(ServerProcess(env, log_path).start)
    settings = Settings(env="test", secret_key=SECRET)
    url = (
        f"ws://127.0.0.1:{server.port}/ws/dpia/graceful?"
        f"token={issue_token(settings, 'graceful', Role.EDITOR)}"
    )
    try:
        refused = await YClient.connect(url.replace("token=", "token=forged"), sync=False)
        await refused.wait_closed()
        clients = [await YClient.connect(url) for _ in range(2)]
        for index, client in enumerate(clients):
            for i in range(20):
                client.doc.get("values", type=Map)[f"c{index}-{i}"] = i
        await clients[0].wait_until(lambda: len(clients[1].doc.get("values", type=Map)) == 40)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        codes = [(await client.wait_closed())[0] for client in clients]
        assert codes == [1012, 1012]  # "service restart": providers reconnect elsewhere
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert await asyncio.to_thread(server.process.wait, 2 * WAIT_SECONDS) in (
            0,
            -signal.SIGTERM,
        )
        for client in clients:
            await client.close()

        await asyncio.to_thread(server.start)
        check = await YClient.connect(url)
        assert len(check.doc.get("values", type=Map)) == 40
        await check.close()
    finally:
        await asyncio.to_thread(server.terminate)
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    refusal = [e for e in entries if e["message"].startswith("refused connection")]
    assert refusal and refusal[0]["document_id"] == "graceful"
    assert re.fullmatch(r"[0-9a-f]{16}", refusal[0]["request_id"])
    assert all("forged" not in e["message"] for e in entries)


@pytest.mark.postgres
async def test_opendpia_migrate_brings_postgresql_to_the_latest_schema_twice_over(
    postgres_url: str,
) -> None:
    env = {
        **os.environ,
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": postgres_url,
        "OPENDPIA_SECRET_KEY": SECRET,
    }
    for _ in range(2):  # a second run finds nothing to do and succeeds
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "latest schema" in done.stdout
    head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()
    assert version == head
