"""Drives ``tests/node/yclient.mjs`` (the stock npm y-websocket provider) from a test."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import WAIT_SECONDS

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def require_node() -> str:
    """The node binary, or skip (fail in CI) with the reason."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "Node.js is not installed"
    elif not (NODE_DIR / "node_modules" / "y-websocket").is_dir():
        problem = "the npm client is not installed: run `npm ci --prefix tests/node`"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (required in CI)")
        pytest.skip(problem)
    assert node is not None
    return node


class NodeClient:
    """One ``yclient.mjs`` process; ``call`` sends a command and returns its answer."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str, room: str, token: str, *, saved: bool = False) -> NodeClient:
        node = require_node()
        args = [str(NODE_DIR / "yclient.mjs"), "--url", url, "--room", room, "--token", token]
        if saved:
            args.append("--saved")
        process = await asyncio.create_subprocess_exec(
            node,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            message = json.loads(line)
            if "event" in message:
                self.events.append(message)
            elif message.get("id") in self._answers:
                self._answers.pop(message["id"]).set_result(message)

    async def call(
        self, cmd: str, timeout: float = WAIT_SECONDS + 10, **arguments: Any
    ) -> dict[str, Any]:
        assert self.process.stdin is not None
        command_id = next(self._ids)
        answer = self._answers[command_id] = asyncio.get_running_loop().create_future()
        line = json.dumps({"id": command_id, "cmd": cmd, **arguments}) + "\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()
        result = await asyncio.wait_for(answer, timeout)
        if not result.get("ok"):
            raise AssertionError(f"node client: {cmd} failed: {result.get('error')}")
        return result

    async def quit(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("quit", timeout=5)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
