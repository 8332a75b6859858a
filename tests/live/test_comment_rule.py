"""The comment rule is written once: the browser, an API token and an email reply are
refused alike, with the same words, because all three post through one use case."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from email import message_from_bytes, policy

import httpx
import pytest
import pytest_asyncio

from server.domain.access import Role
from tests.support.bridge import Env, bridge_env, deliver, reply, texts
from tests.support.live import issue_token
from tests.support.site import signed_in

pytestmark = pytest.mark.asyncio

VIEWER_REFUSED = (
    "You take part in this DPIA as a viewer, who cannot comment; ask an owner for another role"
)
APPROVED = "Read-only: this DPIA is approved; changes go into a new version started from it"


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url) as running:
        yield running


async def _by_browser(env: Env, role: str, text: str) -> httpx.Response:
    """A signed-in participant posting from the editor (session cookie and CSRF header)."""
    client = await signed_in(f"http://127.0.0.1:{env.live.port}", env.site.site.emails[role])
    try:
        return await client.post(
            f"/api/dpias/{env.dpia}/comments",
            json={"section": "need", "text": text},
            headers={"x-csrftoken": client.cookies["csrftoken"]},
        )
    finally:
        await client.aclose()


async def _by_token(env: Env, role: Role, text: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{env.live.port}") as client:
        return await client.post(
            f"/api/dpias/{env.dpia}/comments",
            json={"section": "need", "text": text},
            headers={"authorization": f"Bearer {issue_token(env.settings, env.dpia, role)}"},
        )


async def _by_email(env: Env, text: str) -> tuple[str, str]:
    """The outcome of an email reply from the partner, and the reason recorded."""
    to = await env.address()
    await deliver(env.port, reply(to, text), [to])
    [row] = await env.db.settled(1)
    return row.outcome, row.reason


async def test_a_viewer_is_refused_the_same_way_by_browser_api_token_and_email(env: Env) -> None:
    await env.db.set_role(env.site.partner_id, "viewer")

    browser = await _by_browser(env, "viewer", "From the editor")
    token = await _by_token(env, Role.VIEWER, "From a script")
    outcome, reason = await _by_email(env, "From my mail client")

    assert (browser.status_code, browser.json()) == (403, {"error": VIEWER_REFUSED})
    assert (token.status_code, token.json()) == (403, {"error": VIEWER_REFUSED})
    assert (outcome, reason) == ("refused", VIEWER_REFUSED)
    [answer] = await env.db.outbox()  # the person who wrote is told why, in the same words
    body = message_from_bytes(answer.message, policy=policy.default).get_body(("plain",))
    assert body is not None and f"Why: {VIEWER_REFUSED}" in body.get_content()
    written = texts(await env.db.comments(env.dpia))
    assert not {"From the editor", "From a script", "From my mail client"} & set(written)


async def test_a_locked_dpia_refuses_every_channel_with_the_same_words(env: Env) -> None:
    path = env.settings.sqlite_path()
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE dpias SET status = 'approved' WHERE id = ?", (env.dpia,))

    browser = await _by_browser(env, "commenter", "From the editor")
    token = await _by_token(env, Role.COMMENTER, "From a script")
    outcome, reason = await _by_email(env, "From my mail client")

    assert (browser.status_code, browser.json()) == (409, {"error": APPROVED})
    assert (token.status_code, token.json()) == (409, {"error": APPROVED})
    assert (outcome, reason) == ("refused", APPROVED)


async def test_a_commenter_posts_alike_from_every_channel(env: Env) -> None:
    browser = await _by_browser(env, "commenter", "From the editor")
    token = await _by_token(env, Role.COMMENTER, "From a script")
    outcome, _ = await _by_email(env, "From my mail client")

    assert (browser.status_code, token.status_code, outcome) == (201, 201, "merged")
    comments = await env.db.comments(env.dpia)
    channels = {c["text"]: c["channel"] for c in comments.values()}
    assert channels == {
        "From the editor": "browser",
        "From a script": "api",
        "From my mail client": "email",
    }
