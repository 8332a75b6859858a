"""The real app under uvicorn on an ephemeral port, in a thread or in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from server.cli_serve import uvicorn_config
from server.domain.access import Role, TokenSigner
from server.settings import Settings
from server.web.runtime import Runtime

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]

# How long a live test waits for something the server does on its own (an HTTP answer, a
# process to listen, a row to appear). Generous: the tests share a busy 2-core machine, and
# only a test that is failing anyway waits this long.
WAIT_SECONDS = 30.0
# One TLS context for every test client: httpx builds a new one per client otherwise (reading
# the CA bundle: about 40 ms of CPU each, thousands of times over the suite).
CLIENT_TLS = ssl.create_default_context()


# Ports handed out by reserved_port(), each held by a bound socket until the session ends.
_reservations: list[socket.socket] = []


def reserved_port() -> int:
    """A loopback port that stays ours for the rest of the test session.

    A port that is merely free now (bind to 0, close, hand out the number) can be given to
    anyone before the server meant for it binds it: the kernel hands it out again as
    another process's ephemeral port, or another test's "free" port, and the server then
    fails to start or, worse, a test talks to someone else's server. This one stays bound
    (never listening) with SO_REUSEADDR, so the kernel gives it to nobody else, while the
    server it is meant for can still bind and listen on it (uvicorn, asyncio, redis-server,
    Dovecot and prometheus_client all set SO_REUSEADDR), as often as it restarts.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _reservations.append(sock)
    port: int = sock.getsockname()[1]
    return port


def release_reserved_ports() -> None:
    while _reservations:
        _reservations.pop().close()


class _PromptServer(uvicorn.Server):
    """uvicorn's server, which looks at ``should_exit`` between naps of 0.1 s, woken as soon
    as a test asks it to stop (``wake``) instead: a test server is stopped after every test,
    hundreds of times a run. It still ticks every 0.1 s (uvicorn's date header)."""

    _stop_asked: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._stop_asked = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._stop_asked.wait()

    def wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have the main loop look at ``should_exit`` now (from any thread)."""
        stop_asked = self._stop_asked
        if stop_asked is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(stop_asked.set)


class LiveServer:
    """Runs the app in a background thread with its own event loop.

    The listening socket is bound once, on an ephemeral port, and held until ``stop``:
    ``restart`` serves the same socket again, so the server never has to win its port back
    (it may be in TIME_WAIT, or given to another process meanwhile) and clients reconnect
    to the same URL. Connections made while it restarts wait in the socket's backlog.

    ``port``, one of ``reserved_port()``'s, serves a URL known before the server exists
    (one that a fixture shared by several tests, an OpenID provider, sends people back to);
    each server on it still binds its own listening socket and gives it up at ``stop``.
    """

    def __init__(self, settings: Settings, *, port: int = 0) -> None:
        self.settings = settings
        self._listener = socket.socket()
        if port:
            # The reservation (and the previous server's connections in TIME_WAIT) hold it.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._server: _PromptServer | None = None
        self._failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: object = None

    def start(self, timeout: float = 2 * WAIT_SECONDS) -> LiveServer:
        # A test's client may sit idle longer than uvicorn's 5 s keep-alive on a busy
        # machine, and then reuse the connection just as the server closes it ("Server
        # disconnected without sending a response"): keep idle connections open longer.
        config = uvicorn_config(
            self.settings, log_level="warning", timeout_graceful_shutdown=5, timeout_keep_alive=300
        )
        self.app = config.app
        server = self._server = _PromptServer(config)
        # uvicorn closes the sockets it served when it stops: give it a duplicate.
        sock = self._listener.dup()
        self._failure = None

        def run() -> None:
            try:
                # A Runner, like asyncio.run: tasks left over are cancelled and async
                # generators and the default executor are shut down before the loop closes.
                with asyncio.Runner() as runner:
                    self.loop = runner.get_loop()
                    runner.run(server.serve(sockets=[sock]))
            except BaseException as error:  # reported by start() or stop(), not by threading
                self._failure = error
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._give_up()
                failure, self._failure = self._failure, None
                raise RuntimeError(
                    f"the server did not start within {timeout} s"
                    if failure is None
                    else "the server did not start"
                ) from failure
            time.sleep(0.01)
        return self

    def _give_up(self) -> None:
        """After a failed start: nothing is served, and the port is given up."""
        try:
            if self._thread is not None and self._thread.is_alive():
                self._shutdown()
        finally:
            self._listener.close()

    def stop(self, timeout: float = 30) -> None:
        """Stop serving and give the port up."""
        try:
            self._shutdown(timeout)
        finally:
            self._listener.close()

    def _shutdown(self, timeout: float = 30) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        if self.loop is not None:
            self._server.wake(self.loop)
        self._thread.join(timeout)
        if self._thread.is_alive():  # a connection that will not close: stop waiting for it
            self._server.force_exit = True
            self._thread.join(15)
        if self._thread.is_alive():
            raise RuntimeError(f"the server did not stop; its tasks:\n{self._task_stacks()}")
        if self._failure is not None:
            raise RuntimeError("the server failed") from self._failure

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
        """Stop and start again on the same listening socket (the same URL)."""
        self._shutdown()
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


async def until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``check`` (every 50 ms, no fixed sleep) until it returns something true, and
    return that; fail saying ``what`` never happened."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := check()):
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)
    return found


def keeps_every_keystroke(text: str, typed: Iterable[str]) -> bool:
    """Whether ``text`` holds every character of ``typed``, in any order. Two people typing
    at one caret position may interleave (a caret at the end of the text follows the other's
    words: the CRDT keeps both, in an order it chooses), but no keystroke may be lost."""
    return not Counter("".join(typed)) - Counter(text)


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


def upgrade_request(path: str, *, extra_headers: str = "") -> bytes:
    """A raw WebSocket upgrade request for ``path`` (with its query), for tests that read
    the server's frames off the socket themselves; ``extra_headers`` end in CRLF."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    ).encode()


def make_settings(database_url: str, **changes: object) -> Settings:
    settings = Settings(
        env="test",
        database_url=database_url,
        auto_migrate=True,
        password_hashing="fast-for-tests",
        room_grace_seconds=0.2,
        dev_smtp_port=reserved_port(),
        bridge_port=reserved_port(),
        # The bridge on the server's loop: a child process per test server costs a Python
        # start-up each (and starves at niceness 10 on a busy machine). The child is
        # tested on its own (tests/live/test_bridge_process.py, bridge_env(child=True)).
        bridge_process=False,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


class ServerProcess:
    """``opendpia serve`` as a child process, for tests that kill it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        # Its own mail ports: the defaults may be taken by another server on this machine.
        ports = {
            "OPENDPIA_BRIDGE_PORT": str(reserved_port()),
            "OPENDPIA_DEV_SMTP_PORT": str(reserved_port()),
        }
        self.env = {**os.environ, **ports, **env}
        self.port = reserved_port()  # the same port after every restart, and nobody else's
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 2 * WAIT_SECONDS) -> ServerProcess:
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
