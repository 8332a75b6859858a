"""A DPIA's content filled for the record of processing (two processing activities, a
purpose for the whole DPIA, measures of every type), the people who keep the record, and
the edits the tests make over the WebSocket."""

from __future__ import annotations

from typing import Any

import httpx
from pycrdt import Array, Map

from server.domain.content import Content, write_content
from server.domain.templates import load_template
from server.services.admin_records import Actor
from tests.support.live import LiveServer
from tests.support.site import PASSWORD, Site, session_socket


def text(*paragraphs: str) -> list[dict[str, Any]]:
    return [{"type": "paragraph", "content": [{"text": p}]} for p in paragraphs]


FILLED: Content = {
    "processing": {
        "purposes": text("Fewer people sleeping rough for a second night."),
        "operations": [
            {
                "id": "op-outreach",
                "ref": "P1",
                "description": "Outreach teams check who the street-health team has seen",
                "data_categories": "Name, date of birth, last seen location",
                "special_category": True,
                "criminal_offence": False,
                "data_subjects": "People sleeping rough",
                "purpose": "Find people who need help sooner",
                "lawful_basis": "public-task",
                "condition": "9-2-h-health-social-care",
                "recipients": "Camden outreach team; NHS street-health team",
                "location_transfers": "UK only (Camden's data centre)",
                "retention": "12 months after last contact",
            },
            {
                "id": "op-report",
                "ref": "P2",
                "description": "Monthly counts for the steering group",
                "data_subjects": "People sleeping rough (counted only)",
                "lawful_basis": "legitimate-interests",
                "condition": "not-applicable",
            },
        ],
    },
    "necessity": {"international_transfers": text("No transfer outside the UK.")},
    "measures": {
        "plan": [
            {"id": "m1", "ref": "M1", "title": "Role-based access", "type": "technical"},
            {"id": "m2", "ref": "M2", "title": "Monthly access review", "type": "organisational"},
            {"id": "m3", "ref": "M3", "title": "Data sharing agreement", "type": "contractual"},
        ]
    },
}


def add_keepers(live: LiveServer) -> None:
    """Camden's DPO (a member who signs as DPO) and an administrator of the trust."""
    runtime = live.runtime

    async def add() -> None:
        dee = await runtime.accounts.create_user("dee@camden.example", "Dee Dpo", PASSWORD, "CAM")
        cam = await runtime.accounts.organisation_id("CAM")
        await runtime.administration.set_signatory_roles(
            Actor.command_line("test"), cam, dee, ["dpo"]
        )
        await runtime.accounts.create_user(
            "nadia@nlft.example", "Nadia Admin", PASSWORD, "NLFT", admin=True
        )

    live.call(add())


async def fill(live: LiveServer, site: Site, owner: httpx.AsyncClient) -> None:
    """The owner writes the DPIA's processing operations and measures in the editor."""
    socket = await session_socket(live.port, site.dpia_id, owner)
    try:
        await socket.wait_synced()
        with socket.doc.transaction():
            write_content(socket.doc, load_template("uk-dpia"), FILLED)
        await socket.wait_saved()
    finally:
        await socket.close()


async def set_retention(
    live: LiveServer, site: Site, owner: httpx.AsyncClient, retention: str
) -> None:
    socket = await session_socket(live.port, site.dpia_id, owner)
    try:
        await socket.wait_synced()
        rows = socket.doc.get("table:processing.operations", type=Array)
        row = rows[0]
        assert isinstance(row, Map) and row["id"] == "op-outreach"
        row["retention"] = retention
        await socket.wait_saved()
    finally:
        await socket.close()
