"""The deployment's Caddy, really run: every connection to one document reaches the same web
process, and different documents spread over both (deploy/Caddyfile, docs/scale-out.md).

The site block is the deployment's own, served over plain HTTP on a test port, with the two
web processes played by small HTTP servers that answer with their name.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.live import WAIT_SECONDS, reserved_port

pytestmark = pytest.mark.asyncio

CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "Caddyfile"


@asynccontextmanager
async def _web_process(name: str) -> AsyncIterator[int]:
    """A stand-in web process: answers every request with its name, then closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = name.encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    port = reserved_port()
    server = await asyncio.start_server(answer, "127.0.0.1", port, reuse_address=True)
    async with server:
        yield port


def _site(caddyfile: str, port: int, upstreams: dict[str, int]) -> str:
    """The deployment's HTTPS site block, served on ``port`` over HTTP, admin API off."""
    block = caddyfile[caddyfile.index("https://{$OPENDPIA_DOMAIN:localhost} {") :]
    block = block.replace("https://{$OPENDPIA_DOMAIN:localhost}", f"http://127.0.0.1:{port}")
    for name, upstream in upstreams.items():
        block = block.replace(f"{name}:8000", f"127.0.0.1:{upstream}")
    assert not re.search(r"web\d:8000", block), "every upstream replaced"
    return "{\n\tadmin off\n\tauto_https off\n}\n\n" + block


@pytest.fixture
def caddy() -> Iterator[str]:
    found = shutil.which("caddy")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("caddy is not installed (required in CI): run `make test`")
        pytest.skip("caddy is not installed: `apt-get install caddy` (make test does)")
    yield found


@asynccontextmanager
async def _proxy(caddy: str, home: Path, upstreams: dict[str, int]) -> AsyncIterator[str]:
    port = reserved_port()
    config = home / "Caddyfile"
    config.write_text(_site(CADDYFILE.read_text(), port, upstreams))
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    env["XDG_CONFIG_HOME"] = str(home / "config")
    log = home / "caddy.log"
    with log.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            caddy,
            "run",
            "--config",
            str(config),
            "--adapter",
            "caddyfile",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client:
                async with asyncio.timeout(WAIT_SECONDS):
                    while True:
                        assert process.returncode is None, log.read_text()
                        try:
                            await client.get("/ws/dpia/ready")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.05)
            yield base
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), WAIT_SECONDS)


async def test_every_connection_to_a_document_reaches_one_process_and_documents_spread(
    caddy: str, tmp_path: Path
) -> None:
    async with (
        _web_process("web1") as web1,
        _web_process("web2") as web2,
        _proxy(caddy, tmp_path, {"web1": web1, "web2": web2}) as base,
        httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client,
    ):
        served: dict[str, set[str]] = {}
        for round_ in range(3):
            for n in range(16):
                document = f"dpia-{n:02d}"
                # Each person's own query (a token, or none): the document decides alone.
                query = {"saved": "1"} if round_ == 0 else {"token": f"person-{round_}-{n}"}
                response = await client.get(f"/ws/dpia/{document}", params=query)
                assert response.status_code == 200
                served.setdefault(document, set()).add(response.text)
        assert all(len(processes) == 1 for processes in served.values()), served
        assert set().union(*served.values()) == {"web1", "web2"}, "documents spread"
        pages = {(await client.get("/dpias")).text for _ in range(4)}
        assert pages <= {"web1", "web2"}
