"""An organisation's sign-in settings page (its administrators only) and the
``opendpia set-sign-in`` command: what they save, what they refuse, what they never show."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, password_hasher
from server.storage.database import create_engine
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, Site, csrf_field, prepare, seed_site, signed_in

pytestmark = pytest.mark.asyncio

ADMIN = "admin@camden.example"
PAGE = "/admin/organisations/CAM/sign-in"
SECRET = "a-very-secret-client-secret-1234"
GOOD = {
    "domains": "camden.example, camden.gov.example",
    "issuer": "https://login.microsoftonline.com/7d1c4c1e/v2.0",
    "client_id": "0f1e2d3c-app",
    "client_secret": SECRET,
    "tenant": "7d1c4c1e",
    "admin_group": "opendpia-admins",
    "jit": "on",
}


async def _add_admin(database_url: str) -> None:
    engine = create_engine(database_url)
    accounts = AccountService(
        async_sessionmaker(engine, expire_on_commit=False),
        password_hasher("fast-for-tests"),
    )
    await accounts.create_user(ADMIN, "Ada Admin", PASSWORD, "CAM", admin=True)
    await engine.dispose()


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    prepare(sqlite_url)
    site = asyncio.run(seed_site(sqlite_url))
    asyncio.run(_add_admin(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site


async def _save(client: httpx.AsyncClient, **values: str) -> httpx.Response:
    page = await client.get(PAGE)
    return await client.post(PAGE, data={"csrftoken": csrf_field(page.text), **values})


async def test_an_administrator_saves_the_settings_and_the_secret_is_never_shown_back(
    server: tuple[LiveServer, Site],
) -> None:
    live, _ = server
    admin = await signed_in(f"http://127.0.0.1:{live.port}", ADMIN)
    try:
        saved = await _save(admin, **GOOD)
        assert saved.status_code == 200 and "Saved." in saved.text
        assert SECRET not in saved.text
        shown = await admin.get(PAGE)
        assert SECRET not in shown.text and SECRET[-4:] in shown.text  # recognisable, no more
        assert GOOD["issuer"] in shown.text and "camden.gov.example" in shown.text
        assert 'name="jit" value="on" checked' in shown.text
        # Saving again without a secret keeps the stored one.
        kept = await _save(admin, **{**GOOD, "client_secret": "", "jit": ""})
        assert kept.status_code == 200, kept.text
        provider = live.call(live.runtime.signin.for_email("someone@camden.gov.example"))
        assert provider is not None and provider.client_secret == SECRET and not provider.jit
    finally:
        await admin.aclose()


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"issuer": "http://idp.example"}, 400, "starting with https://"),
        ({"issuer": "not a url"}, 400, "starting with https://"),
        ({"domains": "not_a_domain!"}, 400, "is not an email domain"),
        ({"domains": ""}, 400, "at least one email domain"),
        ({"client_id": ""}, 400, "client id is required"),
        ({"client_secret": ""}, 400, "secret is required the first time"),
        ({"domains": "nlft.example"}, 409, "belongs to organisation NLFT"),
        ({"tenant": "x" * 101}, 400, "longer than 100"),
        ({"admin_group": "a\x01b"}, 400, "control characters"),
        ({"issuer": "x" * 3000}, 400, "longer than 2000"),
    ],
)
async def test_bad_settings_are_refused_with_the_reason_and_nothing_is_saved(
    server: tuple[LiveServer, Site], change: dict[str, str], status: int, message: str
) -> None:
    live, _ = server
    live.call(
        live.runtime.signin.save(
            "NLFT",
            actor="test",
            channel="test",
            issuer="https://idp.nlft.example",
            client_id="c",
            client_secret="s",
            domains="nlft.example",
        )
    )
    admin = await signed_in(f"http://127.0.0.1:{live.port}", ADMIN)
    try:
        refused = await _save(admin, **{**GOOD, **change})
        assert refused.status_code == status
        assert message in unescape(refused.text)
        assert SECRET not in refused.text
        assert live.call(live.runtime.signin.for_email("a@camden.example")) is None
    finally:
        await admin.aclose()


async def test_only_the_organisations_administrators_may_see_or_change_it(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    base = f"http://127.0.0.1:{live.port}"
    member = await signed_in(base, site.emails["owner"])  # a Camden member, not an admin
    other_admin = await signed_in(base, site.emails["editor"])
    try:
        assert (await member.get(PAGE)).status_code == 403
        page = await member.get("/dpias")
        posted = await member.post(PAGE, data={"csrftoken": csrf_field(page.text), **GOOD})
        assert posted.status_code == 403
        assert (await other_admin.get(PAGE)).status_code == 403
        assert (await member.get("/admin/organisations/NOPE/sign-in")).status_code == 400
        assert (await member.get("/admin/organisations/%00%ff/sign-in")).status_code == 400
        async with httpx.AsyncClient(base_url=base) as anonymous:
            answer = await anonymous.get(PAGE)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert live.call(live.runtime.signin.for_email("a@camden.example")) is None
    finally:
        await member.aclose()
        await other_admin.aclose()


async def test_a_post_without_the_csrf_token_is_refused(server: tuple[LiveServer, Site]) -> None:
    live, _ = server
    admin = await signed_in(f"http://127.0.0.1:{live.port}", ADMIN)
    try:
        refused = await admin.post(PAGE, data=GOOD)
        assert refused.status_code == 403
        assert live.call(live.runtime.signin.for_email("a@camden.example")) is None
    finally:
        await admin.aclose()


async def test_the_sign_in_page_lets_its_form_lead_to_the_configured_providers(
    server: tuple[LiveServer, Site],
) -> None:
    live, _ = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as client:
        before = (await client.get("/login")).headers["content-security-policy"]
        assert "form-action 'self';" in before + ";"
        live.call(
            live.runtime.signin.save(
                "CAM",
                actor="test",
                channel="test",
                issuer="https://login.microsoftonline.com/t/v2.0",
                client_id="c",
                client_secret="s",
                domains="camden.example",
            )
        )
        after = (await client.get("/login")).headers["content-security-policy"]
        assert re.search(r"form-action 'self' https://login\.microsoftonline\.com(;|$)", after)
        other = (await client.get("/forgot-password")).headers["content-security-policy"]
        assert "login.microsoftonline.com" not in other


@pytest.mark.parametrize(
    ("query", "cookie"),
    [
        ("", None),
        ("?code=abc", None),
        ("?error=access_denied", None),
        ("?state=" + "s" * 5000 + "&code=" + "c" * 5000, None),
        ("?state=%F0%9F%94%91&code=%00", "%F0%9F%94%91"),
        ("?state=known-to-nobody&code=x&error=%3Cscript%3E", "known-to-nobody"),
        ("?state=a&state=b&code=x", "a"),
    ],
)
async def test_the_callback_answers_any_query_with_a_page_never_an_error(
    server: tuple[LiveServer, Site], query: str, cookie: str | None
) -> None:
    live, _ = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as client:
        if cookie is not None:
            client.cookies.set("opendpia_sso", cookie)
        answer = await client.get("/login/oidc/callback" + query)
        assert answer.status_code in (401, 403), answer.text
        assert "<script>" not in answer.text
        assert "Back to sign in" in answer.text
        assert "opendpia_session" not in answer.headers.get("set-cookie", "")


async def test_sign_in_and_retention_changes_are_in_the_administration_chain_as_words(
    server: tuple[LiveServer, Site],
) -> None:
    live, _ = server
    admin = await signed_in(f"http://127.0.0.1:{live.port}", ADMIN)
    try:
        await _save(admin, **GOOD)
        await _save(admin, **{**GOOD, "client_secret": "", "domains": "camden.example"})
        retention = "/admin/organisations/CAM/retention"
        form = await admin.get(retention)
        saved = await admin.post(
            retention, data={"csrftoken": csrf_field(form.text), "months": "24"}
        )
        assert saved.status_code in (200, 303), saved.text
        audit = await admin.get("/admin/organisations/CAM/audit")
        assert audit.status_code == 200, audit.text
        text = unescape(audit.text)
    finally:
        await admin.aclose()
    assert text.count("Sign-in settings changed") == 2
    assert "Email domains: camden.example camden.gov.example" in text  # before the second
    assert "Retention changed" in text and "Closed DPIAs kept (months): 24" in text
    assert SECRET not in text
    broken = live.call(live.runtime.administration.audit.verify())
    assert broken is None
