"""Fixtures several live test modules share; each module brings its own ``server``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from websockets.frames import Frame

from server.storage.database import migrate
from tests.support.live import LiveServer
from tests.support.site import Site, signed_in


@pytest_asyncio.fixture
async def owner(server: tuple[LiveServer, Site]) -> AsyncIterator[httpx.AsyncClient]:
    live, site = server
    client = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["owner"])
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def clients(
    server: tuple[LiveServer, Site],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """A signed-in client for each of the site's people, by their role."""
    live, site = server
    base = f"http://127.0.0.1:{live.port}"
    signed = {role: await signed_in(base, email) for role, email in site.emails.items()}
    try:
        yield signed
    finally:
        for client in signed.values():
            await client.aclose()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database at the newest schema (the scale-out tests)."""
    migrate(postgres_url)
    yield postgres_url


@pytest.fixture
def framings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The payload of every frame the server builds with ``Frame.serialize`` (a live server
    runs in a thread of this process), as given, not copied. Clients mask their frames;
    servers do not."""
    built: list[bytes] = []
    serialize = Frame.serialize

    def counting(self: Frame, *, mask: bool, **options: object) -> bytes:
        if not mask:
            built.append(self.data)
        return serialize(self, mask=mask, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(Frame, "serialize", counting)
    yield built
