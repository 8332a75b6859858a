"""Mutated mail over real SMTP: the bridge never crashes, never loses an accepted message,
and never puts markup into the document."""

from __future__ import annotations

import asyncio
import random
from email.message import EmailMessage
from html.parser import HTMLParser

import httpx
import pytest
from pycrdt import Map, XmlFragment

from server.domain.templates import load_template
from server.storage.updates import SqlUpdateStore
from tests.support.bridge import PARTNER, Inspector, deliver, reply_address, seed_bridge_site
from tests.support.live import WAIT_SECONDS, make_settings, serving
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio
MESSAGES = 80
HTML_ELEMENTS = {
    "a", "b", "body", "div", "em", "form", "html", "i", "iframe", "img", "input", "li", "link",
    "meta", "object", "p", "script", "span", "strong", "style", "svg", "table", "td", "ul",
}  # fmt: skip


class _Tags(HTMLParser):
    """An independent oracle: which HTML elements a browser would see in ``text``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HTML_ELEMENTS:
            self.found.add(tag)


def _elements(text: str) -> set[str]:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser.found


HOSTILE_HTML = (
    '<div onclick="steal()">Agreed <b>in part</b>.<script>alert(1)</script>'
    "<style>p{display:none}</style>"
    '<a href="javascript:alert(2)">click</a> <a href="data:text/html,<b>x</b>">data</a>'
    '<img src="https://tracker.example/p.gif"> \u202egnp.exe \u200b</div>'
)


def _seed_message(to: str, number: int) -> bytes:
    message = EmailMessage()
    message["From"] = PARTNER
    message["To"] = to
    message["Subject"] = f"Re: fuzz {number}"
    message["Message-ID"] = f"<fuzz-{number}@partner.example>"
    message.set_content(f"Reply number {number}.\n\n- a list\n  - indented\n")
    message.add_alternative(HOSTILE_HTML, subtype="html")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    return message.as_bytes()


def _mutate(raw: bytes, chance: random.Random) -> bytes:
    operation = chance.randrange(7)
    data = bytearray(raw)
    if operation == 0:  # truncated anywhere
        return bytes(data[: chance.randrange(1, len(data))])
    if operation == 1:  # bytes flipped
        for _ in range(chance.randrange(1, 40)):
            data[chance.randrange(len(data))] = chance.randrange(256)
        return bytes(data)
    if operation == 2:  # a lying charset and raw 8-bit text
        return raw.replace(b'charset="utf-8"', b'charset="x-no-such"').replace(
            b"Reply number", "Réponse numéro".encode("latin-1")
        )
    if operation == 3:  # deep nesting of multiparts
        header, _, body = raw.partition(b"\n\n")
        nested = body
        for depth in range(chance.randrange(10, 40)):
            nested = (
                f'--n{depth}\nContent-Type: multipart/mixed; boundary="n{depth + 1}"\n\n'.encode()
                + nested
                + f"\n--n{depth}--\n".encode()
            )
        return header.replace(b"multipart/mixed", b"multipart/mixed; x=1") + b"\n\n" + nested
    if operation == 4:  # garbage headers
        junk = bytes(chance.randrange(1, 256) for _ in range(chance.randrange(10, 400)))
        return junk.replace(b"\r", b"").replace(b"\n", b" ") + b": x\n" + raw
    if operation == 5:  # a broken base64 body
        return raw.replace(b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: base64")
    return raw.replace(b"\n", b"\r", chance.randrange(1, 30))  # line ends mangled


async def test_mutated_mail_never_crashes_loses_or_injects(sqlite_url: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url, run_worker=False, smtp_url="smtp://127.0.0.1:9")
    inspector = Inspector(sqlite_url)
    chance = random.Random(20261124)
    try:
        with serving(settings) as live:
            to = await reply_address(settings, site.partner_id, site.site.dpia_id)
            before = await _fields(inspector, site.site.dpia_id)
            accepted = 0
            for number in range(MESSAGES):
                raw = _mutate(_seed_message(to, number), chance)
                delivery = await deliver(settings.bridge_port, raw, [to])
                assert delivery.data in (250, 451, 550, 552, 554), delivery
                accepted += delivery.data == 250
            rows = await inspector.settled(accepted, timeout=2 * WAIT_SECONDS)
            assert len(rows) == accepted > MESSAGES // 2
            assert all(r.outcome not in (None, "failed") for r in rows), [
                (r.id, r.outcome, r.reason) for r in rows
            ]
            async with httpx.AsyncClient(timeout=WAIT_SECONDS) as client:
                assert (
                    await client.get(f"http://127.0.0.1:{live.port}/healthz")
                ).status_code == 200
            comments = await inspector.comments(site.site.dpia_id)
            assert len(comments) == sum(r.outcome == "merged" for r in rows)
            for comment in comments.values():
                text = str(comment["text"])
                # Mangled mail may show its own source as text, but never a tag that renders.
                assert _elements(text) == set(), text
                assert "\u202e" not in text and "\u200b" not in text
                assert all(isinstance(v, (str, bool, int, float, list)) for v in comment.values())
            assert await _fields(inspector, site.site.dpia_id) == before  # only comments changed
    finally:
        await inspector.close()


async def _fields(inspector: Inspector, dpia_id: str) -> dict[str, str]:
    """Every rich-text field and the structured values: what the bridge must never touch."""
    stored = await SqlUpdateStore(inspector.engine).load(dpia_id)
    assert stored is not None
    doc = stored.to_doc()
    fields = {
        f"field:{section['id']}.{item['id']}": str(
            doc.get(f"field:{section['id']}.{item['id']}", type=XmlFragment)
        )
        for section in load_template().sections
        for item in section["fields"]
        if item["kind"] == "richtext"
    }
    assert fields, "the template has rich-text fields"
    return {**fields, "values": str(doc.get("values", type=Map).to_py())}
