"""The development mailbox holds magic links: only administrators read it, only in
development; elsewhere the route does not exist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio

from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, Site, csrf_field, prepare, seed_site, signed_in

pytestmark = pytest.mark.asyncio

ADMIN = "admin@camden.example"


@pytest_asyncio.fixture
async def development(sqlite_url: str) -> AsyncIterator[tuple[LiveServer, Site]]:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_site(sqlite_url)
    with serving(replace(make_settings(sqlite_url), env="development")) as live:
        live.call(
            live.runtime.accounts.create_user(ADMIN, "Ada Admin", PASSWORD, "CAM", admin=True)
        )
        yield live, site


async def test_only_a_signed_in_administrator_reads_the_development_mailbox(
    development: tuple[LiveServer, Site],
) -> None:
    live, site = development
    base = f"http://127.0.0.1:{live.port}"
    async with httpx.AsyncClient(base_url=base) as anonymous:
        # Something worth stealing: a link that sets the owner's password.
        page = await anonymous.get("/forgot-password")
        await anonymous.post(
            "/forgot-password",
            data={"csrftoken": csrf_field(page.text), "email": site.emails["owner"]},
        )
        admin = await signed_in(base, ADMIN)
        async with asyncio.timeout(15):
            while "Set a new password" not in (listing := await admin.get("/dev/mail")).text:
                await asyncio.sleep(0.05)
        assert listing.status_code == 200
        mail_path = "/dev/mail/" + listing.text.split('href="/dev/mail/')[1].split('"')[0]
        one = await admin.get(mail_path)
        assert one.status_code == 200 and "/reset-password/" in one.text

        for path in ("/dev/mail", mail_path):
            refused = await anonymous.get(path)
            assert refused.status_code == 303, path
            assert refused.headers["location"].startswith("/login?next=/dev/mail"), path
        for role in ("owner", "editor", "outsider"):  # signed in, but no administrator
            person = await signed_in(base, site.emails[role])
            for path in ("/dev/mail", mail_path, "/dev/mail/99999999999999999999"):
                response = await person.get(path)
                assert response.status_code == 404, (role, path)
                assert "/reset-password/" not in response.text
            await person.aclose()
        assert (await admin.get("/dev/mail/99999999999999999999")).status_code == 404
        await admin.aclose()


@pytest.mark.parametrize("env", ["test", "production"])
async def test_outside_development_the_route_does_not_exist(sqlite_url: str, env: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    await seed_site(sqlite_url)
    settings = replace(
        make_settings(sqlite_url),
        env=env,
        secret_key="a production secret of more than 32 characters",
        smtp_url="smtp://127.0.0.1:9" if env == "production" else "",
    )
    with serving(settings) as live:
        paths = {route.path for route in live.app.routes}  # type: ignore[attr-defined]
        assert "/dev/mail" not in paths and "/dev/mail/{mail_id}" not in paths
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as anonymous:
            # Not found, not "sign in first": nothing here tells that the page exists.
            assert (await anonymous.get("/dev/mail")).status_code == 404
            assert (await anonymous.get("/dev/mail/1")).status_code == 404
