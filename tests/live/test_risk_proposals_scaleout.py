"""A proposed risk decided on two processes at the same instant (PostgreSQL and Redis): the
database takes exactly one decision, whichever process it reached; every other request is
refused with 409 and names who decided, and the register gains at most one row. Nothing in
one process can see the other's requests, so only the database can make this hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pycrdt import Array, Map
from sqlalchemy import func, select

from server.domain.catalogue import ACCEPTED_EVENT, DISMISSED_EVENT
from server.storage.database import create_engine
from server.storage.models import AuditEvent, RiskDecision
from tests.support.redisproc import RedisProcess
from tests.support.scaleout import processes, stored_document
from tests.support.site import csrf_field, seed_site, session_socket, signed_in

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres, pytest.mark.slow]
SENSITIVE = "special-category-disclosure"


async def _counts(database: str, dpia_id: str) -> tuple[int, int]:
    """Decisions stored, and decision events in the DPIA's audit chain."""
    engine = create_engine(database)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(
                select(func.count()).where(RiskDecision.dpia_id == dpia_id)
            )
            chained = await connection.scalar(
                select(func.count()).where(
                    AuditEvent.dpia_id == dpia_id,
                    AuditEvent.kind.in_([ACCEPTED_EVENT, DISMISSED_EVENT]),
                )
            )
    finally:
        await engine.dispose()
    return int(stored or 0), int(chained or 0)


async def test_a_proposal_decided_on_two_processes_at_once_is_decided_once(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    dpia = site.dpia_id
    path = f"/dpias/{dpia}/risks/proposed"
    async with processes(2, database, redis_server, tmp_path) as servers:
        clients: list[httpx.AsyncClient] = []
        try:
            for server in servers:
                for role in ("owner", "editor"):
                    base = f"http://127.0.0.1:{server.port}"
                    clients.append(await signed_in(base, site.emails[role]))
            socket = await session_socket(servers[0].port, dpia, clients[0])
            try:
                socket.doc.get("values", type=Map)["screening.triggers"] = ["special-category"]
                await socket.wait_saved()
            finally:
                await socket.close()
            # Each process has seen the answer before anyone decides.
            tokens = []
            for client in clients:
                page = await client.get(path)
                assert f'id="proposal-{SENSITIVE}"' in page.text
                tokens.append(csrf_field(page.text))
            sends = []
            for turn in range(3):
                for n, client in enumerate(clients):
                    decision = (
                        {"action": "accept"}
                        if (turn + n) % 2 == 0
                        else {"action": "dismiss", "reason": f"Not here ({turn}, {n})"}
                    )
                    sends.append(
                        client.post(
                            path, data={"csrftoken": tokens[n], "risk": SENSITIVE, **decision}
                        )
                    )
            answers = await asyncio.gather(*sends)
            statuses = [a.status_code for a in answers]
            assert sorted(statuses) == [303] + [409] * (len(answers) - 1), statuses
            for lost in (a for a in answers if a.status_code == 409):
                assert "a proposed risk is decided once" in lost.text
            [won] = [a for a in answers if a.status_code == 303]
        finally:
            for client in clients:
                await client.aclose()
    assert await _counts(database, dpia) == (1, 1)
    stored = (await stored_document(database, dpia)).to_doc()
    register = (
        list(stored.get("table:risks.register", type=Array))
        if "table:risks.register" in set(stored.keys())
        else []
    )
    assert len(register) == (1 if "accepted=" in won.headers["location"] else 0)
