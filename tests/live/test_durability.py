"""An acknowledged update is never lost, whenever the server is killed."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from pycrdt import Map

from server.domain.access import Role
from server.settings import Settings
from tests.support.live import WAIT_SECONDS, ServerProcess, issue_token
from tests.support.yclient import YClient

# Twenty kills and restarts: on a loaded machine that takes far longer than one test's
# usual allowance, and every step has its own deadline.
pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(600)]

KILLS = 20
SECRET = "durability-test-secret-key-0123456789abcdef"


async def _write_until_killed(
    url: str, server: ServerProcess, round_no: int, rng: random.Random
) -> set[str]:
    """Two clients write as fast as they can; kill -9 at a random moment; return acked keys."""
    clients = [await YClient.connect(url) for _ in range(2)]
    keys_by_write: list[dict[int, str]] = [{}, {}]
    stop = asyncio.Event()

    async def write(index: int) -> None:
        client = clients[index]
        values = client.doc.get("values", type=Map)
        i = 0
        while not stop.is_set():
            key = f"r{round_no}-c{index}-{i}"
            values[key] = i
            keys_by_write[index][client.writes_sent] = key
            i += 1
            await asyncio.sleep(0 if i % 5 else 0.001)

    writers = [asyncio.create_task(write(i)) for i in range(2)]
    # Kill at a random moment once writes are being acknowledged (on a loaded machine the
    # first acknowledgement can take longer than the shortest random delay).
    async with asyncio.timeout(WAIT_SECONDS):
        while not any(
            keys and min(keys) <= client.saved
            for client, keys in zip(clients, keys_by_write, strict=True)
        ):
            await asyncio.sleep(0.005)
    await asyncio.sleep(rng.uniform(0.0, 0.45))
    await asyncio.to_thread(server.kill)
    stop.set()
    await asyncio.gather(*writers)
    acked: set[str] = set()
    for client, keys in zip(clients, keys_by_write, strict=True):
        acked |= {key for number, key in keys.items() if number <= client.saved}
        with contextlib.suppress(Exception):
            await client.close()
    return acked


async def test_every_acknowledged_update_survives_kill_9(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'durable.db'}"
    env = {
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": database_url,
        "OPENDPIA_SECRET_KEY": SECRET,
        "OPENDPIA_LOG_LEVEL": "warning",
        "OPENDPIA_COMPACT_EVERY": "200",
    }
    settings = Settings(env="test", database_url=database_url, secret_key=SECRET)
    token = issue_token(settings, "durable", Role.EDITOR)
    rng = random.Random(20261124)
    server = await asyncio.to_thread(ServerProcess(env, tmp_path / "server.log").start)
    acked: set[str] = set()
    try:
        for round_no in range(KILLS):
            url = f"ws://127.0.0.1:{server.port}/ws/dpia/durable?token={token}&saved=1"
            newly = await _write_until_killed(url, server, round_no, rng)
            assert newly, "no update was acknowledged before the kill: the test proves nothing"
            acked |= newly
            await asyncio.to_thread(server.start)
            check = await YClient.connect(url)
            present = set(check.doc.get("values", type=Map).keys())
            await check.close()
            missing = acked - present
            assert not missing, f"after kill {round_no + 1}: {len(missing)} acknowledged lost"
    finally:
        await asyncio.to_thread(server.terminate)
