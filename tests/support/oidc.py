"""A real OpenID provider for tests (npm ``oidc-provider``, tests/node/oidc-provider.mjs),
a person signing in through it over HTTP, and a proxy that tampers with its answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.live import ROOT, WAIT_SECONDS, reserved_port
from tests.support.site import csrf_field

SCRIPT = ROOT / "tests" / "node" / "oidc-provider.mjs"
INSTALLED = ROOT / "tests" / "node" / "node_modules" / "oidc-provider"
PROVIDER_PASSWORD = "provider-password"


@dataclass
class ProviderAccount:
    email: str
    name: str
    oid: str
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True
    tid: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "password": PROVIDER_PASSWORD,
            "email": self.email,
            "name": self.name,
            "oid": self.oid,
            "groups": self.groups,
            "email_verified": self.email_verified,
        }
        if self.tid is not None:
            data["tid"] = self.tid
        return data


def require_node() -> None:
    if shutil.which("node") is None or not INSTALLED.is_dir():
        import os

        problem = "Node.js and tests/node's oidc-provider are needed: run `make setup`"
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)


class OidcProvider:
    """``node tests/node/oidc-provider.mjs`` on a reserved loopback port.

    ``stop`` and ``start`` again keep the port (so the issuer stays the same); each start
    makes a new signing key, as a provider that rotates its keys does. ``reset`` brings a
    provider that several tests share back to how it started.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        accounts: dict[str, ProviderAccount],
        redirect_uri: str,
        tid: str,
        client_id: str = "opendpia",
        client_secret: str = "client-secret-for-tests",
        id_token_ttl: int = 600,
        clock_skew: int = 0,
        issuer: str | None = None,
    ) -> None:
        self.name = name
        self.port = reserved_port()
        self.issuer = issuer or f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.client_secret = client_secret
        self.tid = tid
        self.accounts_file = directory / f"{name}-accounts.json"
        self.accounts_file.write_text(
            json.dumps({login: a.as_json() for login, a in accounts.items()})
        )
        self.accounts = accounts
        self.log = directory / f"{name}-provider.log"
        self.args = [
            "node",
            str(SCRIPT),
            "--port",
            str(self.port),
            "--issuer",
            self.issuer,
            "--client-id",
            client_id,
            "--client-secret",
            client_secret,
            "--redirect-uri",
            redirect_uri,
            "--tid",
            tid,
            "--accounts",
            str(self.accounts_file),
            "--id-token-ttl",
            str(id_token_ttl),
            f"--clock-skew={clock_skew}",  # "=": a negative value is not an option
            "--name",
            name,
        ]
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self) -> OidcProvider:
        self._lines = queue.Queue()  # nothing a stopped process said is read as this one's
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                cwd=ROOT,
            )
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        self._wait_for(lambda event: event.get("event") == "listening", "to listen")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._lines.put(line)

    def _wait_for(self, matches: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                assert self.process is not None
                if self.process.poll() is not None:
                    break
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and matches(event):
                    return event
        raise RuntimeError(f"the provider {self.name} did not {what}: {self.log.read_text()}")

    def command(self, cmd: str, **fields: str) -> dict[str, Any]:
        """Send ``cmd`` and answer the provider's reply, once it has carried it out."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.process.stdin.flush()
        return self._wait_for(lambda event: event.get("cmd") == cmd, f"answer {cmd}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reset(self) -> None:
        """Back to how ``start`` left it, for the next test sharing this provider: running
        on its port (started again if a test stopped it, with a new key, as after a
        rotation) and every account enabled, as the provider itself answers."""
        if not self.running:
            self.start()
        disabled = self.command("reset")["disabled"]
        if disabled:
            raise RuntimeError(f"the provider {self.name} still refuses {disabled}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()  # the script quits when its stdin closes
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextlib.contextmanager
def running(provider: OidcProvider) -> Iterator[OidcProvider]:
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.I)


async def start_sign_in(client: httpx.AsyncClient, email: str) -> httpx.Response:
    """Type ``email`` (no password) on the app's sign-in page: the app's answer."""
    page = await client.get("/login")
    return await client.post(
        "/login", data={"csrftoken": csrf_field(page.text), "email": email, "password": ""}
    )


async def through_provider(
    client: httpx.AsyncClient,
    response: httpx.Response,
    login: str,
    password: str,
    *,
    stop_before_callback: bool = False,
) -> tuple[httpx.Response, str]:
    """Follow redirects from ``response``, posting the provider's login form once, until
    an answer that is not a redirect or a redirect back to the app's own pages. Answers
    that response and the callback URL the provider sent the browser to ("" if none)."""
    callback = ""
    posted = False
    for _ in range(20):
        if "/login/oidc/callback" in str(response.url):
            return response, callback  # the app's answer to the provider's redirect
        if response.status_code in (301, 302, 303, 307, 308):
            url = urljoin(str(response.url), response.headers["location"])
            if "/login/oidc/callback" in url:
                callback = url
                if stop_before_callback:
                    return response, callback
            response = await client.get(url)
            continue
        form = _FORM.search(response.text)
        if form and 'name="login"' in response.text and not posted:
            posted = True
            action = urljoin(str(response.url), unescape(form.group(1)))
            response = await client.post(
                action, data={"prompt": "login", "login": login, "password": password}
            )
            continue
        return response, callback
    raise AssertionError("too many redirects between the app and the provider")


async def sign_in_with_provider(
    client: httpx.AsyncClient, email: str, login: str, password: str = PROVIDER_PASSWORD
) -> tuple[httpx.Response, str]:
    """The whole journey: the app's page, the provider's login page, back to the app."""
    return await through_provider(client, await start_sign_in(client, email), login, password)


def text(response: httpx.Response) -> str:
    """The page's text as a person reads it (Jinja escapes apostrophes)."""
    return unescape(response.text)


def app_client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=WAIT_SECONDS
    )


class TamperingProxy:
    """An HTTP proxy in front of a provider that flips one byte of the signature of every
    ID token its token endpoint answers with (everything else passes unchanged)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or reserved_port()  # a given one: reserved, and named as an issuer
        self.target = ""  # the provider's own address, set once it has a port
        self.tampered = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> TamperingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int(headers.get("Content-Length", headers.get("content-length", "0")))
            body = await reader.readexactly(length) if length else b""
            # The Host stays the proxy's: the provider builds its URLs (the token endpoint
            # among them) from it, so the app keeps coming through here.
            forwarded = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            async with httpx.AsyncClient() as http:
                answer = await http.request(
                    method, self.target + path, headers=forwarded, content=body
                )
            content = answer.content
            if path.startswith("/token") and answer.status_code == 200:
                content = self._tamper(content)
            out = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
            for name, value in answer.headers.multi_items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    out.append(f"{name}: {value}")
            out += [f"Content-Length: {len(content)}", "Connection: close", "", ""]
            writer.write("\r\n".join(out).encode("latin-1") + content)
            await writer.drain()
        finally:
            writer.close()

    def _tamper(self, content: bytes) -> bytes:
        data = json.loads(content)
        header, payload, signature = data["id_token"].split(".")
        flipped = "A" if signature[10] != "A" else "B"
        data["id_token"] = ".".join([header, payload, signature[:10] + flipped + signature[11:]])
        self.tampered += 1
        return json.dumps(data).encode()
