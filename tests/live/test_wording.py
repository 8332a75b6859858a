"""Every page of the review flow and every email it sends names sections, roles, statuses
and decisions by their labels, never their ids (issue 13): over real HTTP, with the mail
caught by an SMTP sink. ``tests/support/wording.py`` says what counts as a leak."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterator

import httpx
import pytest
from pycrdt import XmlFragment

from server.domain.templates import append_paragraphs
from server.services.demo import DEMO_PASSWORD, PEOPLE
from tests.support.exports import demo_world
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.site import Site, prepare, seed_site, session_socket, signed_in
from tests.support.smtp import Sink, serve_sink
from tests.support.wording import leaks_in, mail_texts, page_texts

pytestmark = pytest.mark.asyncio
PARTNER = "pat.partner@example.org"
NEED = "Step 1: the need for a DPIA"


@pytest.fixture
def sqlite_site(sqlite_url: str) -> Iterator[tuple[str, Site]]:
    prepare(sqlite_url)
    yield sqlite_url, asyncio.run(seed_site(sqlite_url))


async def submit(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    """Post a page's form as the browser does; follow its redirect to the page it shows."""
    sent = await client.post(path, data={"csrftoken": client.cookies["csrftoken"], **data})
    assert sent.status_code in (200, 303), (path, data, sent.status_code, sent.text[:500])
    if sent.status_code == 303:
        return await client.get(sent.headers["location"])
    return sent


async def write(live: LiveServer, site: Site, client: httpx.AsyncClient, words: str) -> None:
    socket = await session_socket(live.port, site.dpia_id, client)
    try:
        await socket.wait_synced()
        append_paragraphs(socket.doc.get("field:need.aims", type=XmlFragment), [words])
        await socket.wait_saved()
    finally:
        await socket.close()


async def mail_until(sink: Sink, wanted: str) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not any(wanted in str(r.message["Subject"]) for r in sink.received):
            await asyncio.sleep(0.05)


async def test_the_review_flow_and_its_emails_name_everything_by_its_label(
    sqlite_site: tuple[str, Site],
) -> None:
    database_url, site = sqlite_site
    sink = Sink()
    smtp, smtp_port = await serve_sink(sink)
    settings = make_settings(
        database_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        change_quiet_seconds=0.2,
        base_url="https://opendpia.test",
    )
    dpia = site.dpia_id
    try:
        with serving(settings) as live:
            base = f"http://127.0.0.1:{live.port}"
            people = {
                role: await signed_in(base, email)
                for role, email in site.emails.items()
                if role != "outsider"
            }
            owner, editor, dpo = people["owner"], people["editor"], people["dpo"]
            workflow = f"/dpias/{dpia}/workflow"
            shown: list[tuple[str, str]] = []  # (where, page) to read for leaks

            invited = await submit(
                owner,
                f"/dpias/{dpia}/participants",
                action="invite",
                email=PARTNER,
                name="Pat Partner",
                role="commenter",
            )
            shown.append(("participants after inviting", invited.text))
            await write(live, site, owner, "Find people who need help sooner")

            submitted = await submit(
                editor, workflow, action="section", section="need", step="submit"
            )
            assert f"“{NEED}” is now submitted." in html.unescape(submitted.text)
            reviewed = await submit(dpo, workflow, action="section", section="need", step="review")
            assert f"“{NEED}” is now reviewed." in html.unescape(reviewed.text)
            signed = await submit(
                dpo, workflow, action="sign", kind="section", target="need", decision="approve"
            )
            assert "Signed." in signed.text
            shown += [("section submitted", submitted.text), ("signed", signed.text)]
            await write(live, site, owner, "and house them")  # the sign-off goes stale

            checking = await submit(owner, workflow, action="status", status="in_review")
            shown.append(("send for review: check", checking.text))
            moved = await submit(
                owner, workflow, action="status", status="in_review", confirm="yes"
            )
            assert "The DPIA is now in review." in moved.text

            await mail_until(sink, "invited you")
            await mail_until(sink, "moved the DPIA")
            await mail_until(sink, "changed")
            stale = "which you signed off"
            async with asyncio.timeout(WAIT_SECONDS):
                while not any(
                    stale in r.message.get_body(("plain",)).get_content() for r in sink.received
                ):
                    await asyncio.sleep(0.05)

            signoff = (await owner.get(f"/api/dpias/{dpia}/workflow")).json()["signoffs"][0]["id"]
            seq = (await owner.get(f"/api/dpias/{dpia}/workflow")).json()["seq"]
            paths = [
                "/dpias",
                "/notifications",
                f"/dpias/{dpia}",
                workflow,
                f"{workflow}/confirm?status=in_review",
                f"/dpias/{dpia}/history",
                f"/dpias/{dpia}/history?section=need",
                f"/dpias/{dpia}/participants",
                f"/dpias/{dpia}/versions/1",
                f"/dpias/{dpia}/versions/{seq - 1}?compare={seq}",
                f"/dpias/{dpia}/signoffs/{signoff}",
                f"/dpias/{dpia}/inbound",
            ]
            for role, client in people.items():
                for path in paths:
                    response = await client.get(path)
                    if response.status_code == 200:
                        shown.append((f"{role} {path}", response.text))
            assert len(shown) > 40

            found = [leak for where, text in shown for leak in leaks_in(page_texts(text), where)]
            for received in sink.received:
                where = f"mail to {received.rcpt_tos[0]}: {received.message['Subject']}"
                found += leaks_in(mail_texts(received.message), where)
            assert found == [], "\n".join(found)

            # What people were told reads as they would say it.
            partner = next(r.message for r in sink.received if r.rcpt_tos == [PARTNER])
            text = partner.get_body(("plain",)).get_content()
            assert "You take part as a commenter." in text
            feed = html.unescape((await editor.get("/notifications")).text)
            assert f">{NEED}</a>" in feed
            # The personal link's page says the role they were invited as, not "viewer".
            link = next(line for line in text.splitlines() if "/r/" in line).split()[-1]
            async with httpx.AsyncClient(base_url=base) as anonymous:
                reader = await anonymous.get(link.replace("https://opendpia.test", ""))
            config = json.loads(
                html.unescape(reader.text.split('data-config="', 1)[1].split('"', 1)[0])
            )
            assert config["roleNote"] == "Read only: you take part as a commenter"
            for client in people.values():
                await client.aclose()
    finally:
        smtp.close()


async def _seed_demo(database_url: str) -> str:
    """The demo as ``opendpia demo`` seeds it, its DPO's sign-off included."""
    async with demo_world(database_url) as demo:
        return demo.dpia_id


async def test_the_demo_reads_in_words_for_every_demo_person(sqlite_url: str) -> None:
    """The demo a newcomer meets first (``make run``): its pages as each of its people, after
    a section is submitted, reviewed and signed, and the mail that sends."""
    await asyncio.to_thread(prepare, sqlite_url)
    dpia = await _seed_demo(sqlite_url)
    sink = Sink()
    smtp, smtp_port = await serve_sink(sink)
    settings = make_settings(
        sqlite_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        change_quiet_seconds=0.2,
        base_url="https://opendpia.test",
    )
    try:
        with serving(settings) as live:
            base = f"http://127.0.0.1:{live.port}"
            people = {p.name: await signed_in(base, p.email, DEMO_PASSWORD) for p in PEOPLE}
            workflow = f"/dpias/{dpia}/workflow"
            tom, grace = people["Tom Evans"], people["Grace Okafor"]
            shown = [
                (
                    "Tom submits",
                    (
                        await submit(tom, workflow, action="section", section="need", step="submit")
                    ).text,
                ),
                (
                    "Grace reviews",
                    (
                        await submit(
                            grace, workflow, action="section", section="need", step="review"
                        )
                    ).text,
                ),
                (
                    "Grace signs",
                    (
                        await submit(
                            grace,
                            workflow,
                            action="sign",
                            kind="section",
                            target="need",
                            decision="approve",
                        )
                    ).text,
                ),
            ]
            sent = await submit(
                people["Priya Shah"], workflow, action="status", status="in_review", confirm="yes"
            )
            assert "The DPIA is now in review." in sent.text
            await mail_until(sink, "moved the DPIA from draft to in review")
            seq = (await tom.get(f"/api/dpias/{dpia}/workflow")).json()["seq"]
            for name, client in people.items():
                for path in (
                    "/dpias",
                    "/notifications",
                    f"/dpias/{dpia}",
                    workflow,
                    f"{workflow}/confirm?status=in_review",
                    f"/dpias/{dpia}/history",
                    f"/dpias/{dpia}/participants",
                    f"/dpias/{dpia}/versions/{seq}",
                    f"/dpias/{dpia}/inbound",
                ):
                    response = await client.get(path)
                    if response.status_code == 200:
                        shown.append((f"{name} {path}", response.text))
            found = [leak for where, text in shown for leak in leaks_in(page_texts(text), where)]
            for received in sink.received:
                where = f"mail to {received.rcpt_tos[0]}: {received.message['Subject']}"
                found += leaks_in(mail_texts(received.message), where)
            assert found == [], "\n".join(found)
            assert "outreach@streetlink.example" in {r.rcpt_tos[0] for r in sink.received}
            signed = html.unescape(shown[2][1])
            assert "Section signed off: Step 1: the need for a DPIA" in signed
            assert "Grace Okafor" in signed and "DPO, London Borough of Camden" in signed
            for client in people.values():
                await client.aclose()
    finally:
        smtp.close()
