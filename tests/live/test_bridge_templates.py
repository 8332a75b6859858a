"""``opendpia bridge`` as its own process with organisations' templates (docs/template-library.md,
"Several processes"): a reply to a DPIA is read against the template *and version* the DPIA
follows, found in the database through the template library, never against whatever this
process happens to hold. A DPIA on version 1 of a template whose version 2 dropped a section
still gets a reply into that section; a DPIA made from a template published after the bridge
started gets its replies merged, and on approval its "This has changed:" reply raises a
review trigger."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import CurrentUser
from server.services.dpias import DpiaService
from server.services.template_library import TemplateLibrary
from server.storage.database import create_engine
from server.storage.models import AuditEvent, Dpia, Membership, User
from server.storage.updates import SqlUpdateStore
from tests.support.bridge import (
    PARTNER,
    PARTNER_NAME,
    Inspector,
    bridge_process,
    deliver,
    reply,
    reply_address,
    seed_bridge_site,
)
from tests.support.live import make_settings, reserved_port
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio
CAMERAS = {
    "id": "cameras",
    "title": "The cameras",
    "fields": [{"id": "where", "label": "Where they are", "kind": "richtext"}],
}


async def _publish(
    library: TemplateLibrary,
    organisation: int,
    template_id: str,
    change: Callable[[dict[str, Any]], None],
) -> int:
    """The template's draft (a new one after a published version), changed by ``change``,
    saved and published; the version published."""
    draft = await library.draft(organisation, template_id, "user:1")
    content = json.loads(draft.text)
    change(content)
    await library.save(organisation, template_id, json.dumps(content), "user:1")
    return await library.publish(organisation, template_id, "user:1")


def _add_cameras(content: dict[str, Any]) -> None:
    content["sections"].append(CAMERAS)


def _drop_cameras(content: dict[str, Any]) -> None:
    content["sections"] = [s for s in content["sections"] if s["id"] != "cameras"]


async def test_the_bridge_process_reads_each_dpia_against_its_own_template_version(
    sqlite_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url)
    engine = create_engine(sqlite_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    library = dpias.templates
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == site.site.emails["owner"]))
        assert user is not None
        org = await session.scalar(
            select(Membership.organisation_id).where(Membership.user_id == user.id)
        )
    assert org is not None
    owner = CurrentUser(user.id, user.email, user.name, (org,))

    async def dpia_on(template_id: str, version: int) -> tuple[str, int]:
        made = await dpias.create(
            owner,
            f"Cameras {template_id} v{version}",
            org,
            template_id=template_id,
            template_version=version,
        )
        partner = await dpias.invite(owner, made, PARTNER, "commenter", PARTNER_NAME)
        return made, partner

    # Before the bridge starts: a template whose version 2 drops the cameras section.
    dropping = await library.start(org, "uk-dpia", "Camden cameras", "user:1")
    assert await _publish(library, org, dropping, _add_cameras) == 1
    older, older_partner = await dpia_on(dropping, 1)
    assert await _publish(library, org, dropping, _drop_cameras) == 2

    port = reserved_port()
    env = {
        **os.environ,
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": sqlite_url,
        "OPENDPIA_BRIDGE_PORT": str(port),
        "OPENDPIA_SMTP_URL": "smtp://127.0.0.1:9",
        "OPENDPIA_LOG_LEVEL": "info",
    }
    inspector = Inspector(sqlite_url)
    try:
        async with bridge_process(env, port, tmp_path / "bridge.log"):
            # After it started: a template the bridge process has never loaded.
            later = await library.start(org, "uk-dpia", "Market cameras", "user:1")
            assert await _publish(library, org, later, _add_cameras) == 1
            newer, newer_partner = await dpia_on(later, 1)

            for n, (dpia_id, partner) in enumerate(
                ((older, older_partner), (newer, newer_partner)), start=1
            ):
                to = await reply_address(settings, partner, dpia_id, "cameras")
                sent = await deliver(port, reply(to, f"Only at the ward entrance ({n})."), [to])
                assert sent.data == 250, sent.data_message
                rows = await inspector.settled(n)
                assert rows[-1].outcome == "merged", (rows[-1].outcome, rows[-1].reason)
                [comment] = (await inspector.comments(dpia_id)).values()
                assert comment["section"] == "cameras", comment  # not the whole DPIA
                assert str(comment["text"]).startswith("Only at the ward entrance")

            # Approved, the newer DPIA takes "This has changed:" as a review trigger.
            async with sessions.begin() as session:
                await session.execute(
                    update(Dpia).where(Dpia.id == newer).values(status="approved")
                )
            to = await reply_address(settings, newer_partner, newer, "outcome")
            changed = reply(to, "This has changed: a new camera covers the car park.")
            assert (await deliver(port, changed, [to])).data == 250
            rows = await inspector.settled(3)
            assert rows[-1].outcome == "trigger", (rows[-1].outcome, rows[-1].reason)
            async with sessions() as session:
                raised = await session.scalar(
                    select(AuditEvent.data).where(
                        AuditEvent.dpia_id == newer, AuditEvent.kind == "review_trigger"
                    )
                )
            assert raised is not None and "car park" in json.loads(raised)["what"]
    finally:
        await inspector.close()
        await engine.dispose()
