"""Start, restart and measure the servers under test, each as its own process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Spec:
    name: str
    persistent: bool = False  # content survives a restart
    acks: bool = False  # sends OpenDPIA "saved" acknowledgements


OPENDPIA = Spec("opendpia", persistent=True, acks=True)
PYCRDT = Spec("pycrdt-websocket")
PYCRDT_SQLITE = Spec("pycrdt-websocket+sqlite", persistent=True)
YWS = Spec("y-websocket")
WIRE = Spec("wire")  # bigjoin's floor: one pre-framed answer to every client (not a server)
ALL = {s.name: s for s in (OPENDPIA, PYCRDT, PYCRDT_SQLITE, YWS, WIRE)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def opendpia_available() -> bool:
    return (ROOT / "server" / "cli.py").exists() and (VENV_BIN / "opendpia").exists()


class Server:
    """One server process on a fixed port and working directory, restartable."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self._signer: tuple[Any, int] | None = None

    # -- process ----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.spec is OPENDPIA:
            env["OPENDPIA_ENV"] = "development"
            env["OPENDPIA_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.workdir}/bench.db"
            env.setdefault("OPENDPIA_LOG_LEVEL", "warning")
        return env

    def _command(self) -> list[str]:
        port = str(self.port)
        if self.spec is OPENDPIA:
            return [str(VENV_BIN / "opendpia"), "serve", "--host", "127.0.0.1", "--port", port]
        if self.spec is YWS:
            return ["node", str(BENCH / "node" / "server.js"), port]
        if self.spec is WIRE:
            return [sys.executable, "-m", "bench.peers.wire_server", port]
        cmd = [sys.executable, "-m", "bench.peers.pycrdt_server", port]
        if self.spec is PYCRDT_SQLITE:
            cmd += ["--store", str(self.store_path)]
        return cmd

    @property
    def store_path(self) -> Path:
        return self.workdir / "ystore.db"

    def _spawn(self) -> None:
        """Launch the process (blocking for a moment: the benchmark is idle then)."""
        if self.spec is OPENDPIA and not (self.workdir / "bench.db").exists():
            subprocess.run(
                [str(VENV_BIN / "opendpia"), "migrate"],
                env=self._env(),
                check=True,
                capture_output=True,
            )
        with (self.workdir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                self._command(), cwd=ROOT, env=self._env(), stdout=log, stderr=subprocess.STDOUT
            )
        self._ps = psutil.Process(self.proc.pid)

    async def start(self) -> None:
        self._spawn()
        await self._wait_ready()

    async def _wait_ready(self, wait_s: float = 30.0) -> None:
        path = "/healthz" if self.spec is OPENDPIA else "/"
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited; see {self.workdir}/server.log")
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                status = await reader.readline()
                writer.close()
                if b" 200 " in status:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.spec.name} not ready after {wait_s} s")

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def cleanup(self, keep: bool) -> None:
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- measurements -----------------------------------------------------------------------
    def _procs(self) -> list[psutil.Process]:
        assert self._ps is not None
        return [self._ps, *self._ps.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._procs():
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    def rss_bytes(self, *, serving_only: bool = False) -> int:
        """RSS of the server and its children (OpenDPIA's bridge child), or of the serving
        process alone."""
        procs = [self._ps] if serving_only else self._procs()
        return sum(proc.memory_info().rss for proc in procs)

    # -- addressing -------------------------------------------------------------------------
    def path(self, doc: str, saved: bool = False) -> str:
        if self.spec is not OPENDPIA:
            return "/" + quote(doc)
        query = f"?token={quote(self._token(doc))}"
        return f"/ws/dpia/{quote(doc)}{query}{'&saved=1' if saved else ''}"

    def provider_address(self, doc: str) -> tuple[str, str, dict[str, str]]:
        """What a stock ``WebsocketProvider`` is given: server URL, room name, params."""
        base = f"ws://127.0.0.1:{self.port}"
        if self.spec is not OPENDPIA:
            return base, doc, {}
        return f"{base}/ws/dpia", doc, {"token": self._token(doc)}

    async def metrics(self) -> dict[str, float]:
        """The server's Prometheus samples (OpenDPIA only): ``{"name{labels}": value}``."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await reader.read()
        writer.close()
        samples: dict[str, float] = {}
        for line in raw.partition(b"\r\n\r\n")[2].decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def _token(self, doc: str) -> str:
        if self._signer is None:
            sys.path.insert(0, str(ROOT))
            from server.domain.access import TokenSigner
            from server.settings import Settings

            settings = Settings.from_env(self._env())
            self._signer = (TokenSigner(settings.secret_key), settings.token_ttl_seconds)
        from server.domain.access import Role

        signer, ttl = self._signer
        token: str = signer.issue(
            principal="bench", document_id=doc, role=Role.EDITOR, ttl_seconds=ttl
        )
        return token
