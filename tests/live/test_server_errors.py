"""What a person gets when the server cannot do what they asked: a 503 that says to try again
when the database could not be reached (a PostgreSQL restart), and otherwise a 500 page with a
reference that the server's log line carries too. Never Starlette's bare text."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from server import logs
from server.storage import database
from server.web import public
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.site import Site, seeded_server, signed_in

pytestmark = pytest.mark.asyncio

HTML = {"accept": "text/html"}


async def _end_every_connection(postgres_url: str) -> int:
    """End every server process of the app's database, as a PostgreSQL restart would."""
    admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""), timeout=5)
    try:
        ended = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(ended)
    finally:
        await admin.close()


@pytest.fixture
def on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, Site]]:
    # Connections in steady use are not pinged (decision 153): the first statement on one
    # that PostgreSQL ended fails, and the pool then replaces the others.
    monkeypatch.setattr(database, "PING_IDLE_SECONDS", 3600.0)
    with seeded_server(postgres_url) as served:
        yield served


def _base(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.postgres
async def test_a_request_on_a_connection_the_database_dropped_is_told_to_try_again(
    on_postgres: tuple[LiveServer, Site], postgres_url: str
) -> None:
    server, site = on_postgres
    if True:
        client = await signed_in(_base(server), site.emails["owner"])
        try:
            assert (await client.get("/dpias", headers=HTML)).status_code == 200
            told = []
            for _ in range(5):  # the app's own pollers may meet the dropped connection first
                assert await _end_every_connection(postgres_url) > 0
                response = await client.get("/dpias", headers=HTML)
                assert response.status_code in (200, 503), response.text
                if response.status_code == 503:
                    told.append(response)
                    again = await client.get("/dpias", headers=HTML)
                    assert again.status_code == 200, "the next try works"
                    break
            assert told, "no request met a dropped connection in five tries"
            assert told[0].headers["retry-after"] == str(public.RETRY_AFTER_SECONDS)
            assert "could not reach its database" in told[0].text
            assert "<h1>Sorry, the service is unavailable</h1>" in told[0].text
        finally:
            await client.aclose()


async def test_an_unexpected_error_gives_a_page_with_the_reference_its_log_line_has(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_request: object) -> None:
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(public, "_signed_in", broken)
    caplog.handler.addFilter(logs.AddContext())
    reference = "0123456789abcdef"
    with serving(make_settings(sqlite_url)) as server:
        # One connection each: uvicorn closes a connection whose request raised.
        async with httpx.AsyncClient(base_url=_base(server), timeout=WAIT_SECONDS) as client:
            page = await client.get("/accessibility", headers={**HTML, "x-request-id": reference})
        async with httpx.AsyncClient(base_url=_base(server), timeout=WAIT_SECONDS) as client:
            api = await client.get("/accessibility", headers={"x-request-id": reference})
    assert page.status_code == 500
    assert "<h1>Sorry, there is a problem with the service</h1>" in page.text
    assert reference in page.text and "Internal Server Error" not in page.text
    assert api.status_code == 500 and reference in api.text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged and all(getattr(r, "request_id", None) == reference for r in logged)
