"""Risks proposed from a DPIA's answers, on the real server (issue 17): answers given in
the editor (over the WebSocket) propose catalogue risks; accepting one adds it and its
measures to the register and the plan, live in the open editor and attributed in the
history; a dismissal is refused without a reason, recorded with one, and the risk comes
back only when new answers give a new reason. Nothing reaches the register without a
person's decision, and a proposal that several people decide at once is decided once. On
SQLite and PostgreSQL (across processes: tests/live/test_risk_proposals_scaleout.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pycrdt import Array, Map

from tests.support.live import LiveServer
from tests.support.site import Site, csrf_field, seeded_server, session_socket, signed_in

pytestmark = pytest.mark.asyncio

SENSITIVE = "special-category-disclosure"
MATCHING = "matching-reidentification"
CHILDREN = "children-vulnerable-harm"


@pytest.fixture
def server(database_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(database_url) as served:
        yield served


def _rows(doc: Any, name: str) -> list[dict[str, Any]]:
    if name not in set(doc.keys()):
        return []
    return [dict(row.items()) for row in doc.get(name, type=Array)]


async def _decide(client: httpx.AsyncClient, dpia_id: str, **data: str) -> httpx.Response:
    path = f"/dpias/{dpia_id}/risks/proposed"
    token = csrf_field((await client.get(path)).text)
    return await client.post(path, data={"csrftoken": token, **data})


async def test_answers_propose_risks_that_people_accept_or_dismiss_with_reasons(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    live, site = server
    dpia = site.dpia_id
    path = f"/dpias/{dpia}/risks/proposed"
    page = await owner.get(path)
    assert page.status_code == 200
    assert 'id="no-proposals"' in page.text  # no answers yet: nothing proposed

    editor = await session_socket(live.port, dpia, owner)
    try:
        values = editor.doc.get("values", type=Map)
        values["screening.triggers"] = ["special-category", "matching-combining"]
        values["processing.children_vulnerable"] = True
        await editor.wait_saved()

        page = await owner.get(path)
        proposed = re.findall(r'<section class="proposal" id="proposal-([a-z-]+)"', page.text)
        assert proposed == [SENSITIVE, CHILDREN, MATCHING]
        assert "Special category, criminal offence or other highly personal data" in page.text
        assert "Suggested rating before measures: likelihood Possible, severity Severe" in page.text
        shown = await owner.get(f"/dpias/{dpia}")
        assert "Proposed risks (3 waiting)" in shown.text
        # Proposed is not added: the register is still empty.
        assert _rows(editor.doc, "table:risks.register") == []

        # A viewer cannot decide.
        viewer = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["viewer"])
        try:
            refused = await _decide(viewer, dpia, risk=SENSITIVE, action="accept")
            assert refused.status_code == 403
        finally:
            await viewer.aclose()

        # A dismissal without a reason is refused, and records nothing.
        refused = await _decide(owner, dpia, risk=MATCHING, action="dismiss", reason="  ")
        assert refused.status_code == 400
        assert "a dismissal needs a reason" in refused.text
        assert 'aria-invalid="true"' in refused.text

        # Accepting: the risk and its two measures appear live in the open editor.
        accepted = await _decide(owner, dpia, risk=SENSITIVE, action="accept")
        assert accepted.status_code == 303
        assert accepted.headers["location"].endswith("?accepted=R1")
        await editor.wait_until(lambda: len(_rows(editor.doc, "table:risks.register")) == 1)
        [risk] = _rows(editor.doc, "table:risks.register")
        assert risk["ref"] == "R1" and risk["status"] == "open"
        assert risk["title"] == "Sensitive information reaches people who should not see it"
        assert (risk["likelihood"], risk["severity"]) == ("2", "3")
        await editor.wait_until(lambda: len(_rows(editor.doc, "table:measures.plan")) == 2)
        plan = _rows(editor.doc, "table:measures.plan")
        assert sorted(risk["measures"]) == sorted(m["id"] for m in plan)
        assert all(list(m["risks"]) == [risk["id"]] for m in plan)
        again = await _decide(owner, dpia, risk=SENSITIVE, action="accept")
        assert again.status_code == 409
        assert "already accepted by Olive Owner: a proposed risk is decided once" in again.text

        reason = "Only counts by ward are matched; no record-level linkage"
        dismissed = await _decide(owner, dpia, risk=MATCHING, action="dismiss", reason=reason)
        assert dismissed.status_code == 303
        children = "The service is for adults only; children are never recorded"
        await _decide(owner, dpia, risk=CHILDREN, action="dismiss", reason=children)

        page = await owner.get(path)
        assert re.findall(r'<section class="proposal" id="proposal-([a-z-]+)"', page.text) == []
        assert f"Dismissed: {reason}" in page.text and "Accepted as R1" in page.text
        assert "Olive Owner" in page.text

        history = await owner.get(f"/dpias/{dpia}/history")
        assert (
            "Accepted the proposed risk “Sensitive information reaches people who should "
            "not see it” as R1, with the suggested measures M1, M2" in history.text
        )
        assert (
            f"Dismissed the proposed risk “Combined datasets reveal more than each one "
            f"alone”: {reason}" in history.text
        )

        # The same answers again: nothing comes back. A new reason (a new answer): it does.
        values["processing.children_vulnerable"] = False
        await editor.wait_saved()
        values["processing.children_vulnerable"] = True
        await editor.wait_saved()
        page = await owner.get(path)
        assert 'id="proposal-' not in page.text
        values["screening.triggers"] = [
            "special-category",
            "matching-combining",
            "targeting-children",
        ]
        await editor.wait_saved()
        page = await owner.get(path)
        assert re.findall(r'<section class="proposal" id="proposal-([a-z-]+)"', page.text) == [
            CHILDREN
        ]
        assert "Proposed again" in page.text and children in page.text
        assert "Targeting children or vulnerable people" in page.text
        assert len(_rows(editor.doc, "table:risks.register")) == 1  # still only R1
    finally:
        await editor.close()


async def test_a_proposal_decided_by_several_people_at_once_is_decided_once(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    """Accepts and dismissals of one proposal sent together: one is taken, every other is
    refused with 409 and says who decided, and the register gains at most one row."""
    live, site = server
    dpia = site.dpia_id
    path = f"/dpias/{dpia}/risks/proposed"
    deciders = [clients["owner"], clients["editor"]]
    editor = await session_socket(live.port, dpia, clients["owner"])
    try:
        editor.doc.get("values", type=Map)["screening.triggers"] = ["special-category"]
        await editor.wait_saved()
        tokens = [csrf_field((await client.get(path)).text) for client in deciders]
        sends = []
        for turn in range(6):
            client, token = deciders[turn % 2], tokens[turn % 2]
            decision = (
                {"action": "accept"}
                if turn < 4
                else {"action": "dismiss", "reason": f"Reason {turn}: no special category"}
            )
            sends.append(
                client.post(path, data={"csrftoken": token, "risk": SENSITIVE, **decision})
            )
        answers = await asyncio.gather(*sends)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [303, 409, 409, 409, 409, 409], statuses
        [won] = [a for a in answers if a.status_code == 303]
        for lost in (a for a in answers if a.status_code == 409):
            assert "a proposed risk is decided once" in lost.text
        page = await clients["owner"].get(path)
        assert len(re.findall(r'<tr id="decided-', page.text)) == 1
        history = (await clients["owner"].get(f"/dpias/{dpia}/history")).text
        decided = history.count("Accepted the proposed risk") + history.count(
            "Dismissed the proposed risk"
        )
        assert decided == 1
    finally:
        await editor.close()
    # What the document holds now, read afresh: one risk if the acceptance won, none if a
    # dismissal did.
    fresh = await session_socket(live.port, dpia, clients["owner"])
    try:
        accepted = "accepted=" in won.headers["location"]
        assert len(_rows(fresh.doc, "table:risks.register")) == (1 if accepted else 0)
        assert len(_rows(fresh.doc, "table:measures.plan")) == (2 if accepted else 0)
    finally:
        await fresh.close()
