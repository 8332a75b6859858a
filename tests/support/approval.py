"""Taking a DPIA of the seeded site (``tests.support.site``) to approval over real HTTP: its
answers filled in an open editor, each section submitted and reviewed, DPO advice, the
owner's approval, through the same API calls a browser's page makes."""

from __future__ import annotations

from typing import Any

import httpx
from pycrdt import Array, Doc, Map, XmlFragment

from server.domain.templates import append_paragraphs
from tests.support.review import ASSESSMENT

TO_APPROVAL = (
    ("editor", "status", {"status": "in_review"}),
    ("owner", "status", {"status": "dpo_review"}),
    ("dpo", "signoffs", {"kind": "dpo_advice", "decision": "advise"}),
    ("dpo", "status", {"status": "awaiting_approval"}),
    ("owner", "signoffs", {"kind": "party_approval", "decision": "approve"}),
    ("owner", "status", {"status": "approved"}),
)


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers={"x-csrftoken": client.cookies["csrftoken"]})


def fill(doc: Doc[Any]) -> None:
    """The answers approval needs (one low risk, one measure)."""
    with doc.transaction():
        values = doc.get("values", type=Map)
        values["screening.outcome"] = "required"
        values["consultation.individuals_consulted"] = True
        for path in ("need.aims", "processing.nature", "necessity.achieves_purpose"):
            append_paragraphs(doc.get(f"field:{path}", type=XmlFragment), [f"About {path}"])
        doc.get("table:risks.register", type=Array).append(
            Map({"id": "r1", "ref": "R1", "title": "Misuse", "likelihood": "1", "severity": "2"})
        )
        doc.get("table:measures.plan", type=Array).append(
            Map({"id": "m1", "ref": "M1", "title": "Access control", "type": "technical"})
        )


async def review_all(clients: dict[str, httpx.AsyncClient], dpia_id: str) -> None:
    """Every section of the assessment submitted by the editor and reviewed by the DPO."""
    for section in ASSESSMENT:
        for role, step in (("editor", "submit"), ("dpo", "review")):
            response = await post(
                clients[role], f"/api/dpias/{dpia_id}/sections", {"section": section, "step": step}
            )
            assert response.status_code == 200, response.text


async def approve(clients: dict[str, httpx.AsyncClient], dpia_id: str) -> None:
    """Every section submitted and reviewed, then the workflow to "approved"."""
    await review_all(clients, dpia_id)
    for role, path, body in TO_APPROVAL:
        response = await post(clients[role], f"/api/dpias/{dpia_id}/{path}", body)
        assert response.status_code == 200, (role, path, response.text)
