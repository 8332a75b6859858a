"""A partner's emailed answer to a comment's notification joins that comment's thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email import message_from_bytes, policy

import pytest
import pytest_asyncio

from tests.support.bridge import PARTNER, Env, bridge_env, deliver, reply
from tests.support.site import signed_in

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url) as running:
        yield running


async def test_an_emailed_answer_to_a_comment_notification_is_a_reply_in_its_thread(
    env: Env,
) -> None:
    owner = await signed_in(f"http://127.0.0.1:{env.live.port}", env.site.site.emails["owner"])
    try:
        posted = await owner.post(
            f"/api/dpias/{env.dpia}/comments",
            json={"section": "need", "text": "Which records does the partner hold?"},
            headers={"x-csrftoken": owner.cookies["csrftoken"]},
        )
    finally:
        await owner.aclose()
    assert posted.status_code == 201, posted.text
    comment_id = posted.json()["id"]
    [notification] = [
        message_from_bytes(m.message, policy=policy.default)
        for m in await env.db.outbox()
        if m.recipient == PARTNER
    ]
    to = str(notification["Reply-To"])
    assert to.startswith("reply+")

    await deliver(env.port, reply(to, "Only case notes, for six years."), [to])
    [row] = await env.db.settled(1)

    assert (row.outcome, row.reason) == ("merged", "Posted as a reply to the comment it answers")
    comments = await env.db.comments(env.dpia)
    assert list(comments) == [comment_id]  # no new comment: an answer in the thread
    [answer] = comments[comment_id]["replies"]
    assert answer["text"] == "Only case notes, for six years."
    assert (answer["author"], answer["channel"]) == (env.site.partner_id, "email")
