"""Deciding an open connection again (``CollaborationAccess.recheck``) on a real database."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.access import Channel, Grant, Role, TokenSigner
from server.domain.errors import AccessDenied, InvalidToken
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.collaboration import SUSPENDED, CollaborationAccess
from server.services.dpias import DpiaService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore

pytestmark = pytest.mark.asyncio
PASSWORD = "correct horse battery"
FAST = password_hasher("fast-for-tests")


class SuspendedBetweenReads(AccountService):
    """Accounts where an administrator's suspension commits after ``recheck`` has found the
    account active and before it looks up the session: the interleaving a loaded machine
    produced (the suspension then looked like a sign-out)."""

    email = ""

    async def user_for_session(self, secret: str | None) -> CurrentUser | None:
        if self.email:
            await self.set_active(self.email, False)
            self.email = ""
        return await super().user_for_session(secret)


@pytest.mark.parametrize("race", [False, True], ids=["suspended-before", "suspended-between"])
async def test_a_suspension_is_the_reason_given_even_when_it_ends_the_session_mid_check(
    database_url: str, race: bool
) -> None:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        accounts = SuspendedBetweenReads(sessions, FAST)
        cam = await accounts.create_organisation("CAM", "London Borough of Camden")
        ann = await accounts.create_user("ann@camden.example", "Ann Smith", PASSWORD, "CAM")
        dpias = DpiaService(sessions, SqlUpdateStore(engine))
        user = CurrentUser(ann, "ann@camden.example", "Ann Smith", (cam,))
        dpia = await dpias.create(user, "Early help", cam)
        secret = await accounts.sign_in("ann@camden.example", PASSWORD, "127.0.0.1")
        access = CollaborationAccess(TokenSigner("k" * 32), accounts, dpias)
        grant = Grant(f"user:{ann}", dpia, Role.OWNER, Channel.BROWSER, time.time() + 60, secret)
        assert await access.recheck(grant) == grant
        if race:
            accounts.email = "ann@camden.example"
        else:
            await accounts.set_active("ann@camden.example", False)
        with pytest.raises(AccessDenied, match=SUSPENDED):
            await access.recheck(grant)
        await accounts.set_active("ann@camden.example", True)
        with pytest.raises(InvalidToken, match="session has ended"):
            await access.recheck(grant)  # reinstated, but that session stays ended
    finally:
        await engine.dispose()
