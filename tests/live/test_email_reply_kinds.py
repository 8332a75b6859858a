"""One reply of each kind the bridge must read, through the real bridge (SMTP on loopback) into
the document: every word the partner wrote is posted, and nothing else; what was set aside is
on the owners' inbound page."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.bridge import Env, bridge_env, deliver, reply
from tests.support.site import signed_in

pytestmark = pytest.mark.asyncio

NOTIFICATION = (
    "> -- Reply above this line to comment --\n"
    ">\n"
    "> Priya Shah commented in Rough sleeping outreach (DPIA-2026-007).\n"
    ">\n"
    "> Section: Retention\n"
    ">\n"
    "> Is 7 years right?\n"
    "> And who deletes the paper copies?\n"
    ">\n"
    "> Reply to this email to comment on this section: your reply is added to the DPIA's"
    " discussion, in your name.\n"
    "> Read the whole DPIA (read-only, no account needed; this personal link expires):"
    " https://opendpia.test/r/eyJwIjo0Mn0.Zx9kLm\n"
)

KINDS: dict[str, tuple[str, str]] = {
    "inline": (
        "On Mon, 23 Nov 2026 at 10:15, OpenDPIA <notify@opendpia.test> wrote:\n"
        "> -- Reply above this line to comment --\n"
        ">\n"
        "> Is 7 years right?\n"
        "No, 3 is enough.\n"
        "\n"
        "> And who deletes the paper copies?\n"
        "Our records team, within a month.\n"
        ">\n"
        "> Reply to this email to comment on this section: your reply is added to the DPIA's"
        " discussion, in your name.\n",
        "> Is 7 years right?\nNo, 3 is enough.\n\n"
        "> And who deletes the paper copies?\nOur records team, within a month.",
    ),
    "outlook-signature-disclaimer": (
        "Agreed, 12 months is enough for us.\n\n"
        "Regards\n"
        "Tom Baker\n"
        "Data Protection Officer | London Borough of Example\n"
        "Tel: 020 7123 4567\n\n"
        "This email and any attachments are confidential and intended solely for the "
        "addressee.\nIf you have received it in error, please notify the sender and delete "
        "it.\nEmails to and from the council may be monitored.\n\n"
        "-----Original Message-----\n"
        "From: OpenDPIA <notify@opendpia.test>\n"
        "Sent: 23 November 2026 10:15\n"
        "To: Tom Baker <partner@partner.example>\n"
        "Subject: Priya Shah commented in Rough sleeping outreach\n\n"
        "-- Reply above this line to comment --\n",
        "Agreed, 12 months is enough for us.",
    ),
    "welsh": (
        "Diolch. Mae tair blynedd yn ddigon i ni.\n\n"
        "Cofion / Regards\n"
        "Siân Evans\n"
        "Swyddog Llywodraethu Gwybodaeth | Information Governance Officer\n\n"
        "Ar Llun, 23 Tach 2026 am 10:15, OpenDPIA <notify@opendpia.test>\n"
        "ysgrifennodd:\n" + NOTIFICATION,
        "Diolch. Mae tair blynedd yn ddigon i ni.",
    ),
    "greater-than": (
        ">500 records a day come from outreach.\n"
        "> 10% of them are about children.\n"
        "\n"
        "\n"
        "So the DPIA must cover children.",
        ">500 records a day come from outreach.\n"
        "> 10% of them are about children.\n"
        "\n"
        "\n"
        "So the DPIA must cover children.",
    ),
    "bottom-posted": (
        "On Mon, 23 Nov 2026 at 10:15, OpenDPIA <notify@opendpia.test> wrote:\n"
        + NOTIFICATION
        + "\nBoth are fine with us.\n\nIvan\n",
        "Both are fine with us.\n\nIvan",
    ),
}


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url) as running:
        yield running


async def test_each_kind_of_reply_posts_exactly_the_partners_words(env: Env) -> None:
    to = await env.address()
    for number, (body, _) in enumerate(KINDS.values()):
        raw = reply(to, body, message_id=f"<kind-{number}@partner.example>")
        await deliver(env.port, raw, [to])
    rows = await env.db.settled(len(KINDS))
    assert [r.outcome for r in rows] == ["merged"] * len(KINDS)
    posted = sorted(str(c["text"]) for c in (await env.db.comments(env.dpia)).values())
    assert posted == sorted(expected for _, expected in KINDS.values())
    by_text = {r.text: r for r in rows}
    assert by_text[KINDS["greater-than"][1]].possibly_quoted is True
    assert by_text[KINDS["inline"][1]].possibly_quoted is False

    owner = await signed_in(f"http://127.0.0.1:{env.live.port}", env.site.site.emails["owner"])
    try:
        page = html.unescape((await owner.get(f"/dpias/{env.dpia}/inbound")).text)
    finally:
        await owner.aclose()
    # What was not posted is there for the owners, without the partner's personal links.
    assert "Emails to and from the council may be monitored." in page
    assert "Cofion / Regards\nSiân Evans" in page
    assert "> Priya Shah commented in Rough sleeping outreach" in page
    assert "Kept, possibly quoted." in page
    assert "https://opendpia.test/r/" not in page
