"""``opendpia set-sign-in``: an organisation's provider set up from a script."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.cli import main
from server.domain.signin import ProviderSettings
from server.services.signin import SignInDirectory
from server.storage.database import create_engine
from tests.support.site import prepare, seed_site


async def _provider_for(database_url: str, email: str) -> ProviderSettings | None:
    engine = create_engine(database_url)
    try:
        return await SignInDirectory(async_sessionmaker(engine)).for_email(email)
    finally:
        await engine.dispose()


def test_the_command_line_sets_an_organisations_provider(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(sqlite_url)
    asyncio.run(seed_site(sqlite_url))
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OPENDPIA_BASE_URL", "https://dpia.example.org")
    code = main(
        [
            "set-sign-in",
            "cam",
            "--issuer",
            "https://login.microsoftonline.com/7d1c/v2.0",
            "--client-id",
            "app-id",
            "--client-secret",
            "app-secret",
            "--domain",
            "camden.example",
            "--domain",
            "camden.gov.example",
            "--tenant",
            "7d1c",
            "--jit",
            "--admin-group",
            "admins",
            "--forbid-passwords",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "https://dpia.example.org/login/oidc/callback" in out
    found = asyncio.run(_provider_for(sqlite_url, "x@camden.gov.example"))
    assert found is not None
    assert (found.tenant, found.jit, found.admin_group, found.forbid_passwords) == (
        "7d1c",
        True,
        "admins",
        True,
    )
    assert (
        main(
            [
                "set-sign-in",
                "NLFT",
                "--issuer",
                "ftp://x",
                "--client-id",
                "a",
                "--client-secret",
                "b",
                "--domain",
                "nlft.example",
            ]
        )
        == 2
    )
    assert "https://" in capsys.readouterr().err
