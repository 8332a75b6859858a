"""The real app under uvicorn on an ephemeral port, in a thread or in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from server.cli import uvicorn_config
from server.domain.access import Role, TokenSigner
from server.settings import Settings
from server.web.runtime import Runtime

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """Runs the app in a background thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: object = None

    def start(self, timeout: float = 20) -> LiveServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.settings, log_level="warning", timeout_graceful_shutdown=5)
        self.app = config.app
        server = self._server = uvicorn.Server(config)

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            loop.run_until_complete(server.serve(sockets=[sock]))
            loop.close()
            sock.close()

        self._thread = threading.Thread(target=run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 20) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # a connection that will not close: stop waiting for it
            self._server.force_exit = True
            self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError(f"the server did not stop; its tasks:\n{self._task_stacks()}")

    def _task_stacks(self) -> str:
        """Where the server's tasks wait (read from this thread: good enough to diagnose)."""
        if self.loop is None:
            return ""
        out = io.StringIO()
        try:
            for task in list(asyncio.all_tasks(self.loop)):
                task.print_stack(limit=6, file=out)
        except RuntimeError as error:  # the loop changed meanwhile
            out.write(f"(could not read every task: {error})")
        return out.getvalue()

    def restart(self) -> LiveServer:
        self.stop()
        return self.start()

    def url(self, document_id: str, *, role: Role = Role.EDITOR, saved: bool = False) -> str:
        token = issue_token(self.settings, document_id, role)
        query = f"?token={token}" + ("&saved=1" if saved else "")
        return f"ws://127.0.0.1:{self.port}/ws/dpia/{document_id}{query}"

    @property
    def runtime(self) -> Runtime:
        """The running app's runtime (rooms, committer) for white-box checks."""
        runtime: Runtime = self.app.state.runtime  # type: ignore[attr-defined]
        return runtime

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop (to inspect rooms safely)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[LiveServer]:
    """A started server, stopped afterwards."""
    server = LiveServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def issue_token(
    settings: Settings,
    document_id: str,
    role: Role = Role.EDITOR,
    ttl: int = 3600,
    *,
    principal: str | None = None,
) -> str:
    signer = TokenSigner(settings.secret_key)
    return signer.issue(
        principal=principal or f"test-{role.value}",
        document_id=document_id,
        role=role,
        ttl_seconds=ttl,
    )


def make_settings(database_url: str, **changes: object) -> Settings:
    settings = Settings(
        env="test",
        database_url=database_url,
        auto_migrate=True,
        room_grace_seconds=0.2,
        dev_smtp_port=free_port(),
        bridge_port=free_port(),
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


class ServerProcess:
    """``opendpia serve`` as a child process, for tests that kill it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        # Its own mail ports: the defaults may be taken by another server on this machine.
        ports = {
            "OPENDPIA_BRIDGE_PORT": str(free_port()),
            "OPENDPIA_DEV_SMTP_PORT": str(free_port()),
        }
        self.env = {**os.environ, **ports, **env}
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.terminate()
                    output = self.log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"server did not start: {output}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
