"""IMAP polling against a real Dovecot: replies are taken, stored, merged, then deleted."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.bridge import PARTNER, Inspector, reply, reply_address, seed_bridge_site
from tests.support.imap import dovecot
from tests.support.live import WAIT_SECONDS, make_settings, serving
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio


async def test_replies_in_a_polled_mailbox_are_merged_and_removed(sqlite_url: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    inspector = Inspector(sqlite_url)
    with dovecot() as mailbox:
        settings = make_settings(
            sqlite_url,
            bridge_port=0,  # no SMTP at all: this organisation can only offer a mailbox
            bridge_imap_url=mailbox.url,
            bridge_imap_seconds=0.2,
            run_worker=False,
        )
        to = await reply_address(settings, site.partner_id, site.site.dpia_id, "risks")
        raw = reply(to, "Polled from the mailbox.", headers={"Delivered-To": to})
        await asyncio.to_thread(mailbox.append, raw)
        await asyncio.to_thread(mailbox.append, reply("someone@else.example", "Not for us."))
        try:
            with serving(settings):
                [row] = await inspector.settled(1)
                async with asyncio.timeout(WAIT_SECONDS):  # deleted once stored
                    while await asyncio.to_thread(mailbox.count, "UNDELETED") != 1:
                        await asyncio.sleep(0.1)
            assert (row.transport, row.outcome, row.section) == ("imap", "merged", "risks")
            assert row.envelope_from == PARTNER
            texts = [c["text"] for c in (await inspector.comments(site.site.dpia_id)).values()]
            assert "Polled from the mailbox." in texts
            # The message for nobody of ours is left for a person, marked seen.
            assert await asyncio.to_thread(mailbox.count, "SEEN UNDELETED") == 1
        finally:
            await inspector.close()
