"""Two organisations, each with its own real OpenID provider (tests/support/oidc.py), and
the app configured to send their people there: what the single sign-on tests start from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.signin import SignInDirectory
from server.storage.database import create_engine
from tests.support.live import LiveServer, make_settings, reserved_port
from tests.support.oidc import (
    OidcProvider,
    ProviderAccount,
    app_client,
    require_node,
    running,
)
from tests.support.site import Site, prepare, seed_site

CAMDEN_TENANT = "7d1c4c1e-camden-tenant"
TRUST_TENANT = "a9f0b2c3-trust-tenant"
CAMDEN_ADMINS = "5f0e-camden-opendpia-admins"
CAMDEN_PEOPLE = {
    "olive": ProviderAccount("owner@camden.example", "Olive Owner", "oid-olive"),
    "carol": ProviderAccount(
        "carol@camden.example", "Carol Admin", "oid-carol", groups=[CAMDEN_ADMINS]
    ),
    "pat": ProviderAccount("pat@camden.example", "Pat Plain", "oid-pat", groups=["other"]),
    "guest": ProviderAccount("guest@elsewhere.example", "Gus Guest", "oid-guest"),
    "stranger": ProviderAccount(
        "stranger@camden.example", "Stan Ger", "oid-stranger", tid="another-tenant"
    ),
}
TRUST_PEOPLE = {
    "eddie": ProviderAccount("editor@nlft.example", "Editor Person", "oid-eddie"),
    "nadia": ProviderAccount("nadia@nlft.example", "Nadia New", "oid-nadia"),
}


@dataclass
class Sso:
    live: LiveServer
    site: Site
    camden: OidcProvider
    trust: OidcProvider
    database_url: str

    @property
    def callback(self) -> str:
        return callback_url(self.live.port)

    def client(self) -> httpx.AsyncClient:
        return app_client(self.live.port)

    async def configure(
        self,
        code: str,
        provider: OidcProvider,
        domain: str,
        issuer: str | None = None,
        **choices: object,
    ) -> None:
        await _configure(self.database_url, code, provider, domain, issuer, **choices)


async def _configure(
    database_url: str,
    code: str,
    provider: OidcProvider,
    domain: str,
    issuer: str | None = None,
    **choices: object,
) -> None:
    engine = create_engine(database_url)
    try:
        await SignInDirectory(async_sessionmaker(engine, expire_on_commit=False)).save(
            code,
            actor="test",
            channel="test",
            issuer=issuer or provider.issuer,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            domains=domain,
            tenant=provider.tid,
            **choices,  # type: ignore[arg-type]
        )
    finally:
        await engine.dispose()


def callback_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/login/oidc/callback"


@dataclass
class Providers:
    """Camden's and the trust's providers, running, and the port of the app they send
    people back to: the tests of a module may share them (a provider takes a Node start and
    an RSA key, a third of a second each, much more on a busy machine), each test with its
    own app and database on that port."""

    camden: OidcProvider
    trust: OidcProvider
    port: int
    directory: Path

    def reset(self) -> None:
        """Both as they started, whatever the last test did to them (checked)."""
        self.camden.reset()
        self.trust.reset()

    def provider(
        self, name: str, accounts: dict[str, ProviderAccount], **options: object
    ) -> OidcProvider:
        """Another provider (not started) for Camden's tenant, sending people back to the
        same app port."""
        return OidcProvider(
            self.directory,
            name,
            accounts=accounts,
            redirect_uri=callback_url(self.port),
            tid=CAMDEN_TENANT,
            **options,  # type: ignore[arg-type]
        )


@contextlib.contextmanager
def sso_providers(directory: Path) -> Iterator[Providers]:
    """Both providers, started, for an app to be served on the answer's ``port``."""
    require_node()
    port = reserved_port()
    camden = OidcProvider(
        directory,
        "camden",
        accounts=CAMDEN_PEOPLE,
        redirect_uri=callback_url(port),
        tid=CAMDEN_TENANT,
    )
    trust = OidcProvider(
        directory, "trust", accounts=TRUST_PEOPLE, redirect_uri=callback_url(port), tid=TRUST_TENANT
    )
    with running(camden), running(trust):
        yield Providers(camden, trust, port, directory)


@contextlib.contextmanager
def sso_site(
    database_url: str,
    directory: Path,
    providers: Providers | None = None,
    **settings: object,
) -> Iterator[Sso]:
    """The seeded site, served, with both organisations signing in through ``providers``:
    shared ones are handed back reset (checked) when the site stops; without them the
    site starts and stops its own."""
    require_node()
    prepare(database_url)
    site = asyncio.run(seed_site(database_url))
    # A provider on a loaded machine may take seconds to answer: the timeout is generous
    # unless a test of a provider that never answers asks for a short one.
    settings.setdefault("oidc_timeout_seconds", 30.0)
    with contextlib.ExitStack() as stack:
        if providers is None:
            providers = stack.enter_context(sso_providers(directory))
        else:
            stack.callback(providers.reset)  # after the server stops
        base = make_settings(database_url, access_recheck_seconds=0.5, **settings)
        live = LiveServer(base, port=providers.port)
        live.settings = replace(base, base_url=f"http://127.0.0.1:{live.port}")
        sso = Sso(live, site, providers.camden, providers.trust, database_url)
        asyncio.run(
            sso.configure("CAM", sso.camden, "camden.example", jit=True, admin_group=CAMDEN_ADMINS)
        )
        asyncio.run(sso.configure("NLFT", sso.trust, "nlft.example", jit=False))
        live.start()
        stack.callback(live.stop)
        yield sso
