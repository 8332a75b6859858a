"""Sign-in through each organisation's own OpenID provider, against real providers.

Two npm ``oidc-provider`` processes (tests/node/oidc-provider.mjs), shared by the module's
tests, play Camden's and the trust's Entra ID tenants, issuing Entra-shaped tokens; each
test's app runs under uvicorn; a person is an HTTP client that types their email on the
app's page, posts the provider's own login form and comes back. On SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pycrdt import Map
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import password_hasher
from server.storage.database import create_engine
from server.storage.models import ExternalIdentity, Membership, User
from tests.support.live import reserved_port
from tests.support.oidc import (
    OidcProvider,
    TamperingProxy,
    running,
    sign_in_with_provider,
    start_sign_in,
    text,
    through_provider,
)
from tests.support.site import PASSWORD, csrf_field, session_socket
from tests.support.sso import (
    CAMDEN_PEOPLE,
    CAMDEN_TENANT,
    Providers,
    Sso,
    sso_providers,
    sso_site,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Providers]:
    """One Camden and one trust provider for the module's tests: each test has its own app
    and database, and gets the providers back as they started (stopped ones started again,
    disabled accounts enabled), which their teardown checks."""
    with sso_providers(tmp_path_factory.mktemp("providers")) as shared:
        yield shared


@pytest.fixture
def sso(database_url: str, tmp_path: Path, providers: Providers) -> Iterator[Sso]:
    with sso_site(database_url, tmp_path, providers) as site:
        yield site


async def _rows(database_url: str, query: object) -> list[object]:
    engine = create_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            return list((await session.execute(query)).all())  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def _page_as(client: httpx.AsyncClient, path: str = "/dpias") -> httpx.Response:
    return await client.get(path)


async def test_a_person_signs_in_through_their_provider_and_lands_signed_in(sso: Sso) -> None:
    async with sso.client() as client:
        first = await start_sign_in(client, "owner@camden.example")
        assert first.status_code == 303
        assert first.headers["location"].startswith(sso.camden.issuer + "/auth?")
        for part in ("code_challenge_method=S256", "nonce=", "state=", "login_hint="):
            assert part in first.headers["location"]
        answer, callback = await through_provider(client, first, "olive", "provider-password")
        assert callback.startswith(sso.callback + "?code=")
        assert answer.status_code == 303 and answer.headers["location"] == "/projects", answer.text
        dashboard = await _page_as(client)
        assert dashboard.status_code == 200 and "Olive Owner" in dashboard.text
        assert "Shared DPIA" in dashboard.text  # the existing account, linked: its DPIAs
    linked = await _rows(
        sso.database_url,
        select(ExternalIdentity.issuer, ExternalIdentity.subject, User.email).join(
            User, User.id == ExternalIdentity.user_id
        ),
    )
    assert [tuple(r) for r in linked] == [(sso.camden.issuer, "oid-olive", "owner@camden.example")]


async def test_a_first_sign_in_provisions_the_person_and_the_admin_group_makes_an_admin(
    sso: Sso,
) -> None:
    async with sso.client() as carol, sso.client() as pat:
        answer, _ = await sign_in_with_provider(carol, "carol@camden.example", "carol")
        assert answer.status_code == 303, answer.text
        answer, _ = await sign_in_with_provider(pat, "pat@camden.example", "pat")
        assert answer.status_code == 303, answer.text
        settings = await carol.get("/admin/organisations/CAM/sign-in")
        assert settings.status_code == 200 and CAMDEN_TENANT in settings.text
        refused = await pat.get("/admin/organisations/CAM/sign-in")
        assert refused.status_code == 403
    roles = await _rows(
        sso.database_url,
        select(User.email, User.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(User.email.in_(["carol@camden.example", "pat@camden.example"]))
        .order_by(User.email),
    )
    assert [tuple(r) for r in roles] == [
        ("carol@camden.example", "Carol Admin", "admin"),
        ("pat@camden.example", "Pat Plain", "member"),
    ]


async def test_without_just_in_time_accounts_an_unknown_person_is_told_to_ask_for_an_invitation(
    sso: Sso,
) -> None:
    async with sso.client() as client:
        answer, _ = await sign_in_with_provider(client, "nadia@nlft.example", "nadia")
        assert answer.status_code == 403
        assert "ask your organisation's OpenDPIA administrator to invite you" in text(answer)
        assert (await _page_as(client)).status_code == 303  # not signed in
    assert not await _rows(
        sso.database_url, select(User.id).where(User.email == "nadia@nlft.example")
    )


async def test_an_email_domain_of_no_organisation_asks_for_a_password(sso: Sso) -> None:
    async with sso.client() as client:
        answer = await start_sign_in(client, "someone@nowhere.example")
        assert answer.status_code == 200
        assert "Enter your password for someone@nowhere.example" in text(answer)


async def test_a_token_whose_email_is_not_the_organisations_is_refused(sso: Sso) -> None:
    async with sso.client() as client:
        # Typed as a Camden address; the provider signs in an account of another domain.
        answer, _ = await sign_in_with_provider(client, "owner@camden.example", "guest")
        assert answer.status_code == 403
        assert "guest@elsewhere.example" in text(answer) and "not an address of" in text(answer)
        assert (await _page_as(client)).status_code == 303


async def test_a_token_from_another_tenant_is_refused(sso: Sso) -> None:
    async with sso.client() as client:
        answer, _ = await sign_in_with_provider(client, "stranger@camden.example", "stranger")
        assert answer.status_code == 403
        assert "another organisation's directory" in text(answer)
        assert (await _page_as(client)).status_code == 303


async def test_a_callback_used_twice_or_in_another_browser_is_refused(sso: Sso) -> None:
    async with sso.client() as client, sso.client() as thief:
        answer, callback = await sign_in_with_provider(client, "owner@camden.example", "olive")
        assert answer.status_code == 303
        stolen = await thief.get(callback)  # no state cookie: another browser
        assert stolen.status_code == 401 and "state does not match" in text(stolen)
        assert (await _page_as(thief)).status_code == 303
        client.cookies.set("opendpia_sso", callback.split("state=")[1].split("&")[0])
        replayed = await client.get(callback)
        assert replayed.status_code == 401 and "used already" in text(replayed)


async def test_a_person_who_cancels_at_the_provider_gets_a_clear_page(sso: Sso) -> None:
    async with sso.client() as client:
        first = await start_sign_in(client, "owner@camden.example")
        login_page, _ = await through_provider(client, first, "nobody", "x")
        assert login_page.status_code == 401  # the provider refused that login...
        interaction = str(login_page.url)
        aborted = await client.get(interaction + "/abort")  # ...and the person gives up
        answer, callback = await through_provider(client, aborted, "nobody", "x")
        assert "error=access_denied" in callback
        assert answer.status_code == 403 and "did not sign you in" in text(answer)


async def test_a_provider_that_is_down_gets_a_clear_message_not_an_error(sso: Sso) -> None:
    sso.trust.stop()
    async with sso.client() as client:
        answer = await start_sign_in(client, "editor@nlft.example")
        assert answer.status_code == 502
        assert "North London NHS Foundation Trust's sign-in service" in text(answer)
        assert "is not answering" in text(answer)


@pytest.fixture
def impatient_sso(database_url: str, tmp_path: Path, providers: Providers) -> Iterator[Sso]:
    """The site with a 0.5 s timeout for providers (OPENDPIA_OIDC_TIMEOUT_SECONDS): only
    for a provider that never answers (a loopback connection is accepted at once even on a
    busy machine), so the test waits no longer than it must."""
    with sso_site(database_url, tmp_path, providers, oidc_timeout_seconds=0.5) as site:
        yield site


async def test_a_provider_that_never_answers_times_out_with_a_clear_message(
    impatient_sso: Sso,
) -> None:
    sso = impatient_sso
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        await sso.configure(
            "NLFT",
            sso.trust,
            "nlft.example",
            issuer=f"http://127.0.0.1:{silent.getsockname()[1]}",
        )
        async with sso.client() as client:
            # Without a timeout this would wait for ever (the test's own timeout would end
            # it); with one, the person hears why.
            answer = await start_sign_in(client, "editor@nlft.example")
            assert answer.status_code == 502 and "is not answering" in text(answer)
    finally:
        silent.close()


async def test_refused_callbacks_are_throttled_like_wrong_passwords(sso: Sso) -> None:
    async with sso.client() as client:
        answers = [
            await client.get(f"/login/oidc/callback?state=forged{n}&code=x") for n in range(6)
        ]
        # As for passwords: five refusals for one client in 15 minutes, then a pause.
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert answers[-1].headers["retry-after"] == "900"


async def test_a_provider_that_goes_down_during_sign_in_gets_a_clear_message(sso: Sso) -> None:
    async with sso.client() as client:
        first = await start_sign_in(client, "editor@nlft.example")
        _, callback = await through_provider(
            client, first, "eddie", "provider-password", stop_before_callback=True
        )
        sso.trust.stop()  # the code is in hand; the token endpoint is gone
        answer = await client.get(callback)
        assert answer.status_code == 502 and "is not answering" in text(answer)


async def test_passwords_forbidden_refuse_the_password_but_not_a_break_glass_account(
    sso: Sso,
) -> None:
    await sso.configure("CAM", sso.camden, "camden.example", jit=True, forbid_passwords=True)
    engine = create_engine(sso.database_url)
    try:
        from server.services.accounts import AccountService

        accounts = AccountService(
            async_sessionmaker(engine, expire_on_commit=False),
            password_hasher("fast-for-tests"),
        )
        await accounts.create_user(
            "breakglass@camden.example",
            "Break Glass",
            PASSWORD,
            "CAM",
            admin=True,
            break_glass=True,
        )
    finally:
        await engine.dispose()
    async with sso.client() as client, sso.client() as admin:
        page = await client.get("/login")
        refused = await client.post(
            "/login",
            data={
                "csrftoken": csrf_field(page.text),
                "email": "owner@camden.example",
                "password": PASSWORD,
            },
        )
        assert refused.status_code == 403 and "leave the password empty" in text(refused)
        page = await admin.get("/login")
        allowed = await admin.post(
            "/login",
            data={
                "csrftoken": csrf_field(page.text),
                "email": "breakglass@camden.example",
                "password": PASSWORD,
            },
        )
        assert allowed.status_code == 303
        assert (await admin.get("/admin/organisations/CAM/sign-in")).status_code == 200
        # The trust's people, whose organisation allows passwords, are not affected.
        page = await client.get("/login")
        other = await client.post(
            "/login",
            data={
                "csrftoken": csrf_field(page.text),
                "email": "editor@nlft.example",
                "password": PASSWORD,
            },
        )
        assert other.status_code == 303


async def test_signing_out_ends_the_single_sign_on_session(sso: Sso) -> None:
    async with sso.client() as client:
        answer, _ = await sign_in_with_provider(client, "owner@camden.example", "olive")
        assert answer.status_code == 303
        page = await client.get("/dpias")
        out = await client.post("/logout", data={"csrftoken": csrf_field(page.text)})
        assert out.status_code == 303
        assert (await client.get("/dpias")).status_code == 303


async def test_a_provider_that_rotates_its_keys_still_signs_people_in(sso: Sso) -> None:
    async with sso.client() as before:
        answer, _ = await sign_in_with_provider(before, "owner@camden.example", "olive")
        assert answer.status_code == 303
    sso.camden.stop()
    sso.camden.start()  # a new signing key, under a new key id
    async with sso.client() as after:
        answer, _ = await sign_in_with_provider(after, "owner@camden.example", "olive")
        assert answer.status_code == 303, answer.text


async def test_two_organisations_signing_in_through_two_providers_co_edit_one_dpia(
    sso: Sso,
) -> None:
    async with sso.client() as camden, sso.client() as trust:
        answer, _ = await sign_in_with_provider(camden, "owner@camden.example", "olive")
        assert answer.status_code == 303
        answer, _ = await sign_in_with_provider(trust, "editor@nlft.example", "eddie")
        assert answer.status_code == 303, answer.text
        owner = await session_socket(sso.live.port, sso.site.dpia_id, camden)
        editor = await session_socket(sso.live.port, sso.site.dpia_id, trust)
        try:
            owner.doc.get("values", type=Map)["screening.outcome"] = "required"
            await editor.wait_until(
                lambda: editor.doc.get("values", type=Map).get("screening.outcome") == "required"
            )
            editor.doc.get("values", type=Map)["processing.novel_technology"] = True
            await owner.wait_until(
                lambda: owner.doc.get("values", type=Map).get("processing.novel_technology") is True
            )
        finally:
            await owner.close()
            await editor.close()


@pytest.fixture(scope="module")
def slow_clock(providers: Providers) -> Iterator[OidcProvider]:
    """Camden's people at a provider whose clock is two hours behind when it issues tokens
    (no test changes it: the module's tests share it)."""
    with running(providers.provider("slowclock", CAMDEN_PEOPLE, clock_skew=-7200)) as skewed:
        yield skewed


async def test_an_expired_id_token_is_refused(sso: Sso, slow_clock: OidcProvider) -> None:
    await sso.configure("CAM", slow_clock, "camden.example", jit=True)
    async with sso.client() as client:
        answer, _ = await sign_in_with_provider(client, "owner@camden.example", "olive")
        assert answer.status_code == 403, text(answer)[-1500:]
        assert "has expired" in text(answer)
        assert (await _page_as(client)).status_code == 303


@pytest.fixture(scope="module")
def behind_a_proxy(providers: Providers) -> Iterator[OidcProvider]:
    """A provider that believes a proxy's address (its issuer's port, reserved) is its own:
    every URL it hands out, the token endpoint's included, leads through the proxy (no test
    changes it: the module's tests share it, each with its own proxy on that port)."""
    issuer = f"http://127.0.0.1:{reserved_port()}"
    with running(providers.provider("tampered", CAMDEN_PEOPLE, issuer=issuer)) as genuine:
        yield genuine


async def test_an_id_token_with_a_bad_signature_is_refused(
    sso: Sso, behind_a_proxy: OidcProvider
) -> None:
    genuine = behind_a_proxy
    proxy = TamperingProxy(port=httpx.URL(genuine.issuer).port or 0)
    proxy.target = f"http://127.0.0.1:{genuine.port}"
    await proxy.start()
    try:
        await sso.configure("CAM", genuine, "camden.example", jit=True)
        async with sso.client() as client:
            answer, _ = await sign_in_with_provider(client, "owner@camden.example", "olive")
            assert proxy.tampered == 1
            assert answer.status_code == 403
            assert "is not signed by it" in text(answer)
            assert (await _page_as(client)).status_code == 303
    finally:
        await proxy.stop()


@pytest.fixture
def short_sessions(sqlite_url: str, tmp_path: Path, providers: Providers) -> Iterator[Sso]:
    with sso_site(sqlite_url, tmp_path, providers, sso_session_hours=4 / 3600) as site:
        yield site


async def test_a_person_disabled_at_the_provider_loses_the_open_editor_and_cannot_return(
    short_sessions: Sso,
) -> None:
    sso = short_sessions
    async with sso.client() as client:
        answer, _ = await sign_in_with_provider(client, "editor@nlft.example", "eddie")
        assert answer.status_code == 303
        socket = await session_socket(sso.live.port, sso.site.dpia_id, client)
        try:
            sso.trust.command("disable", login="eddie")
            # The single sign-on session ends after OPENDPIA_SSO_SESSION_HOURS (4 s here):
            # the open editor is closed then, and coming back needs the provider again.
            code, reason = await socket.wait_closed(timeout=30)
            assert code == 4401 and reason is not None and "session has ended" in reason
        finally:
            await socket.close()
        assert (await _page_as(client)).status_code == 303
        answer, _ = await sign_in_with_provider(client, "editor@nlft.example", "eddie")
        assert answer.status_code == 403, (answer.url, answer.text[-2000:])
        assert "This account is disabled" in text(answer)
        assert (await _page_as(client)).status_code == 303


async def test_a_code_for_an_account_disabled_meanwhile_is_not_exchanged(sso: Sso) -> None:
    async with sso.client() as client:
        first = await start_sign_in(client, "editor@nlft.example")
        _, callback = await through_provider(
            client, first, "eddie", "provider-password", stop_before_callback=True
        )
        sso.trust.command("disable", login="eddie")
        answer = await client.get(callback)
        assert answer.status_code == 403
        assert "refused to complete your sign-in" in text(answer)
        assert (await client.get("/dpias")).status_code == 303
