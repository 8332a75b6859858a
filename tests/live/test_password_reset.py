"""Forgot your password: a link by email that works once, for an hour, and signs the person
out everywhere; the same answer for an address without an account, and no mail to it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from server.services.passwords import MAX_REQUESTS_PER_ADDRESS, MAX_REQUESTS_PER_EMAIL
from server.storage.models import OutboxMessage, PasswordReset
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import (
    PASSWORD,
    Site,
    csrf_field,
    prepare,
    seed_site,
    session_socket,
    signed_in,
)
from tests.support.smtp import Sink, serve_sink

pytestmark = pytest.mark.asyncio

PUBLIC = "https://opendpia.test"
NEW_PASSWORD = "a much longer new passphrase"


@dataclass
class World:
    live: LiveServer
    site: Site
    sink: Sink
    base: str


@pytest_asyncio.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_site(sqlite_url)
    sink = Sink()
    smtp, port = await serve_sink(sink)
    settings = make_settings(
        sqlite_url, smtp_url=f"smtp://127.0.0.1:{port}", base_url=PUBLIC, mail_retry_seconds=0.1
    )
    try:
        with serving(settings) as live:
            yield World(live, site, sink, f"http://127.0.0.1:{live.port}")
    finally:
        smtp.close()


async def _ask(client: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await client.get("/forgot-password")
    return await client.post(
        "/forgot-password", data={"csrftoken": csrf_field(page.text), "email": email}
    )


async def _link_for(world: World, email: str, count: int = 1) -> str:
    """The link in the ``count``-th reset mail to ``email``, once it has arrived."""
    async with asyncio.timeout(15):
        while len(mails := [r for r in world.sink.received if r.rcpt_tos == [email]]) < count:
            await asyncio.sleep(0.02)
    message = mails[count - 1].message
    assert message["Subject"] == "Set a new password for OpenDPIA"
    text = message.get_body(("plain",)).get_content()
    found = re.search(rf"{re.escape(PUBLIC)}(/reset-password/[A-Za-z0-9_-]+)", text)
    assert found, text
    html = message.get_body(("html",)).get_content()
    assert found.group(0) in html
    return found.group(1)


async def _set(client: httpx.AsyncClient, path: str, password: str, again: str) -> httpx.Response:
    page = await client.get(path)
    return await client.post(
        path,
        data={"csrftoken": csrf_field(page.text), "password": password, "confirmation": again},
    )


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> int:
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"csrftoken": csrf_field(page.text), "email": email, "password": password}
    )
    return response.status_code


def _recipients(world: World) -> list[str]:
    async def read() -> list[str]:
        async with world.live.runtime.sessions() as session:
            return list(await session.scalars(select(OutboxMessage.recipient)))

    return world.live.call(read())


async def test_the_link_sets_a_new_password_once_and_ends_every_session(world: World) -> None:
    email = world.site.emails["owner"]
    elsewhere = await signed_in(world.base, email)  # a session on another device
    assert (await elsewhere.get("/dpias")).status_code == 200
    async with httpx.AsyncClient(base_url=world.base) as browser:
        login = await browser.get("/login")
        assert 'href="/forgot-password">Forgot your password?' in login.text
        asked = await _ask(browser, email)
        assert asked.status_code == 200 and "Check your email" in asked.text
        path = await _link_for(world, email)

        form = await browser.get(path)
        assert form.status_code == 200 and email in form.text
        short = await _set(browser, path, "short", "short")
        assert short.status_code == 400 and "A password needs at least 12 characters" in short.text
        differ = await _set(browser, path, NEW_PASSWORD, NEW_PASSWORD + "!")
        assert differ.status_code == 400 and "The two passwords differ" in differ.text
        done = await _set(browser, path, NEW_PASSWORD, NEW_PASSWORD)
        assert done.status_code == 200 and "Your password is changed" in done.text

        # Used once: the same link is refused, whether opened or posted again.
        again = await browser.get(path)
        assert again.status_code == 401 and "already used" in again.text
        reused = await browser.post(
            path,
            data={
                "csrftoken": browser.cookies["csrftoken"],
                "password": "yet another passphrase",
                "confirmation": "yet another passphrase",
            },
        )
        assert reused.status_code == 401 and "already used" in reused.text

        assert await _sign_in(browser, email, PASSWORD) == 403
        assert await _sign_in(browser, email, NEW_PASSWORD) == 303
    ended = await elsewhere.get("/dpias")
    assert ended.status_code == 303 and ended.headers["location"].startswith("/login")
    await elsewhere.aclose()


async def test_an_expired_link_is_refused(world: World) -> None:
    email = world.site.emails["editor"]
    async with httpx.AsyncClient(base_url=world.base) as browser:
        await _ask(browser, email)
        path = await _link_for(world, email)
        assert (await browser.get(path)).status_code == 200

        async def expire() -> None:
            async with world.live.runtime.sessions.begin() as session:
                await session.execute(
                    update(PasswordReset).values(expires_at=datetime.now(UTC) - timedelta(1))
                )

        world.live.call(expire())
        expired = await browser.get(path)
        assert expired.status_code == 401 and "has expired" in expired.text
        refused = await browser.post(
            path,
            data={
                "csrftoken": browser.cookies["csrftoken"],
                "password": NEW_PASSWORD,
                "confirmation": NEW_PASSWORD,
            },
        )
        assert refused.status_code == 401 and "has expired" in refused.text
        assert await _sign_in(browser, email, PASSWORD) == 303  # the password is unchanged
        unknown = await browser.get("/reset-password/" + "x" * 43)
        assert unknown.status_code == 401 and "not valid" in unknown.text


async def test_an_unknown_address_gets_the_same_page_and_no_mail(world: World) -> None:
    known = world.site.emails["dpo"]
    async with httpx.AsyncClient(base_url=world.base) as browser:
        # The address without an account is asked for first: a mail for it would be queued,
        # and delivered (the outbox goes in order), before the one asked for next.
        for_nobody = await _ask(browser, "nobody@camden.example")
        for_someone = await _ask(browser, known)
        assert for_nobody.status_code == for_someone.status_code == 200
        assert for_nobody.text == for_someone.text
        await _link_for(world, known)
    assert _recipients(world) == [known]
    assert [r.rcpt_tos for r in world.sink.received] == [[known]]


async def test_requests_are_limited_per_address_and_per_client(world: World) -> None:
    email = world.site.emails["viewer"]
    async with httpx.AsyncClient(base_url=world.base) as browser:
        for _ in range(MAX_REQUESTS_PER_EMAIL):
            assert (await _ask(browser, email)).status_code == 200
        limited = await _ask(browser, email)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "Too many requests for a new password" in limited.text
        # The same answer for an address without an account: the limit tells nothing.
        for _ in range(MAX_REQUESTS_PER_EMAIL):
            assert (await _ask(browser, "nobody@camden.example")).status_code == 200
        assert (await _ask(browser, "nobody@camden.example")).status_code == 429
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=world.base, transport=transport) as client:
        for n in range(MAX_REQUESTS_PER_ADDRESS):
            assert (await _ask(client, f"person{n}@nlft.example")).status_code == 200
        assert (await _ask(client, "person-last@nlft.example")).status_code == 429
    async with httpx.AsyncClient(base_url=world.base) as other:  # other clients carry on
        assert (await _ask(other, "someone@nlft.example")).status_code == 200


async def test_a_new_password_closes_the_editors_the_old_sessions_had_open(world: World) -> None:
    email = world.site.emails["editor"]
    elsewhere = await signed_in(world.base, email)
    editor = await session_socket(world.live.port, world.site.dpia_id, elsewhere)
    try:
        async with httpx.AsyncClient(base_url=world.base) as browser:
            await _ask(browser, email)
            path = await _link_for(world, email)
            done = await _set(browser, path, NEW_PASSWORD, NEW_PASSWORD)
            assert done.status_code == 200
        code, reason = await editor.wait_closed(timeout=10)
        assert code == 4401 and reason is not None and "sign in again" in reason
    finally:
        await editor.close()
        await elsewhere.aclose()
