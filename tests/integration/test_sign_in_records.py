"""The records behind single sign-on: identities, accounts made just in time, roles from the
provider's group, what is handed to the administrative audit (never the secret), and the
sign-ins on their way (claimed once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import InvalidToken
from server.domain.signin import Identity, SignInRefused
from server.services.accounts import AccountService, password_hasher
from server.services.signin import SignInDirectory
from server.storage.database import create_engine, migrate

pytestmark = pytest.mark.asyncio
HOUR = timedelta(hours=1)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str, int | None, dict[str, Any]]] = []

    async def __call__(
        self,
        session: AsyncSession,
        kind: str,
        /,
        *,
        actor: str,
        channel: str,
        organisation_id: int | None,
        data: dict[str, Any],
    ) -> None:
        assert session.in_transaction()  # in the transaction that makes the change
        self.changes.append((kind, actor, organisation_id, data))


@pytest_asyncio.fixture
async def world(
    database_url: str,
) -> AsyncIterator[tuple[SignInDirectory, AccountService, Recorder]]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    await accounts.create_organisation("CAM", "Camden")
    await accounts.create_organisation("NLFT", "The Trust")
    recorder = Recorder()
    directory = SignInDirectory(sessions, on_change=recorder)
    await directory.save(
        "CAM",
        actor="user:1",
        channel="browser",
        issuer="https://idp.camden.example",
        client_id="app",
        client_secret="the-secret-value",
        domains="camden.example",
        jit=True,
        admin_group="admins",
    )
    try:
        yield directory, accounts, recorder
    finally:
        await engine.dispose()


def _person(subject: str, email: str, **changes: Any) -> Identity:
    return replace(Identity(subject, email, True, "A Person", "", ()), **changes)


async def test_settings_changes_are_recorded_without_the_secret(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    _, _, recorder = world
    [(kind, actor, _, data)] = recorder.changes
    after = data["after"]
    assert (kind, actor, data["before"], after["domains"], after["secret_changed"]) == (
        "sign_in_settings",
        "user:1",
        {},  # nothing was set before
        "camden.example",
        True,
    )
    assert "the-secret-value" not in repr(recorder.changes)


async def test_a_first_sign_in_makes_the_account_and_later_ones_follow_the_group(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    directory, accounts, recorder = world
    provider = await directory.for_email("ann@camden.example")
    assert provider is not None
    ann = _person("oid-ann", "ann@camden.example", groups=("admins",))
    first = await directory.sign_in(accounts, provider, ann, HOUR)
    assert first.provisioned
    again = await directory.sign_in(accounts, provider, replace(ann, groups=()), HOUR)
    assert again.user_id == first.user_id and not again.provisioned
    kinds = [
        (kind, data["before"].get("role"), data["after"]["role"])
        for kind, _, _, data in recorder.changes[1:]
    ]
    assert kinds == [("person_provisioned", None, "admin"), ("role_set", "admin", "member")]
    # A new address for the same subject is still the same person (matched by subject).
    moved = await directory.sign_in(
        accounts, provider, replace(ann, email="ann.smith@camden.example"), HOUR
    )
    assert moved.user_id == first.user_id
    user = await accounts.user_for_session(moved.secret)
    assert user is not None and user.id == first.user_id


async def test_a_suspended_account_is_refused_even_through_its_provider(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    directory, accounts, _ = world
    provider = await directory.for_email("bob@camden.example")
    assert provider is not None
    await directory.sign_in(accounts, provider, _person("oid-bob", "bob@camden.example"), HOUR)
    await accounts.set_active("bob@camden.example", False)
    with pytest.raises(SignInRefused, match="suspended"):
        await directory.sign_in(accounts, provider, _person("oid-bob", "bob@camden.example"), HOUR)


async def test_an_account_of_another_organisation_is_not_taken_over(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    directory, accounts, _ = world
    await accounts.create_user("odd@camden.example", "Odd One", "a long password!", "NLFT")
    provider = await directory.for_email("odd@camden.example")
    assert provider is not None
    with pytest.raises(SignInRefused, match="exists outside Camden"):
        await directory.sign_in(accounts, provider, _person("x", "odd@camden.example"), HOUR)


async def test_a_domain_belongs_to_one_organisation(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    directory, _, _ = world
    from server.domain.errors import Conflict

    with pytest.raises(Conflict, match="belongs to organisation CAM"):
        await directory.save(
            "NLFT",
            actor="t",
            channel="t",
            issuer="https://idp.nlft.example",
            client_id="c",
            client_secret="s",
            domains="nlft.example camden.example",
        )
    assert await directory.for_email("x@nlft.example") is None


async def test_a_sign_in_on_its_way_is_claimed_once(
    world: tuple[SignInDirectory, AccountService, Recorder],
) -> None:
    directory, _, _ = world
    provider = await directory.for_email("a@camden.example")
    assert provider is not None
    state, nonce, verifier = await directory.begin(provider.organisation_id, "/dpias")
    assert 43 <= len(verifier) <= 128
    claims = await asyncio.gather(
        directory.claim(state), directory.claim(state), return_exceptions=True
    )
    won = [c for c in claims if not isinstance(c, BaseException)]
    assert len(won) == 1 and won[0].nonce == nonce
    assert isinstance(next(c for c in claims if isinstance(c, BaseException)), InvalidToken)
    with pytest.raises(InvalidToken, match="not started here"):
        await directory.claim("never-issued")
