"""Typing in the browser's channel to email in a partner's inbox, once, with a way out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import websockets
from pycrdt import XmlElement, XmlFragment, XmlText

from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.site import Site, prepare, seed_site, signed_in
from tests.support.smtp import Sink, serve_sink
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio
# One burst is one email only if no pause in it is this long: a loaded machine can stall
# the typist or the server for a good fraction of a second, so not much shorter than this.
QUIET = 1.0
OTHERS = {
    "editor@nlft.example",
    "commenter@nlft.example",
    "viewer@nlft.example",
    "dpo@nlft.example",
}


@pytest.fixture
def sqlite_site(sqlite_url: str) -> Iterator[tuple[str, Site]]:
    prepare(sqlite_url)
    yield sqlite_url, asyncio.run(seed_site(sqlite_url))


async def _burst(live: LiveServer, site: Site, client: httpx.AsyncClient, keystrokes: int) -> None:
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    socket = await websockets.connect(
        f"ws://127.0.0.1:{live.port}/ws/dpia/{site.dpia_id}?saved=1",
        additional_headers={"cookie": cookie},
    )
    owner = await YClient.attach(socket)
    try:
        await owner.wait_synced()
        fragment = owner.doc.get("field:need.aims", type=XmlFragment)
        paragraph = XmlElement("paragraph")
        fragment.children.append(paragraph)
        text = XmlText()
        paragraph.children.append(text)
        for i in range(keystrokes):
            text.insert(len(text), "abcdefghij"[i % 10])
            await asyncio.sleep(0.002)
        await owner.wait_saved()
    finally:
        await owner.close()


async def test_a_burst_of_typing_sends_one_email_per_participant_and_unsubscribe_works(
    sqlite_site: tuple[str, Site],
) -> None:
    database_url, site = sqlite_site
    sink = Sink()
    smtp, smtp_port = await serve_sink(sink)
    settings = make_settings(
        database_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        change_quiet_seconds=QUIET,
        base_url="https://opendpia.test",
    )
    try:
        with serving(settings) as live:
            base = f"http://127.0.0.1:{live.port}"
            owner = await signed_in(base, site.emails["owner"])
            await _burst(live, site, owner, 200)
            async with asyncio.timeout(WAIT_SECONDS):
                while len(sink.received) < len(OTHERS):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(QUIET * 3)  # nothing more may come
            assert sorted(r.rcpt_tos[0] for r in sink.received) == sorted(OTHERS)
            first = next(r for r in sink.received if r.rcpt_tos == ["editor@nlft.example"])
            message = first.message
            assert message["Auto-Submitted"] == "auto-generated"
            assert message["X-OpenDPIA-Loop"] == "opendpia.test"
            assert "Olive Owner changed" in message["Subject"]
            text = message.get_body(("plain",)).get_content()
            assert f"https://opendpia.test/dpias/{site.dpia_id}#need" in text
            assert "abcdefghij" in text  # the excerpt of what was written
            assert message.get_body(("html",)) is not None
            assert len(set(sink.message_ids())) == len(OTHERS)

            # One-click unsubscribe (RFC 8058): a POST with no cookies, no sign-in.
            link = message["List-Unsubscribe"].strip("<> ").replace("https://opendpia.test", base)
            async with httpx.AsyncClient(timeout=WAIT_SECONDS) as mail_provider:
                response = await mail_provider.post(link, data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 200 and "You are unsubscribed" in response.text

            before = len(sink.received)
            await _burst(live, site, owner, 20)
            async with asyncio.timeout(WAIT_SECONDS):
                while len(sink.received) < before + len(OTHERS) - 1:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(QUIET * 3)
            later = [r.rcpt_tos[0] for r in sink.received[before:]]
            assert sorted(later) == sorted(OTHERS - {"editor@nlft.example"})

            editor = await signed_in(base, site.emails["editor"])
            feed = (await editor.get("/notifications")).text
            assert feed.count('class="feed-item unread"') == 2  # still told in the app
            assert 'aria-label="2 unread"' in feed
            await owner.aclose()
            await editor.aclose()
    finally:
        smtp.close()
