"""The workflow guides (issue 13), over real HTTP: "Send for review" shows what is still
empty or stale and changes nothing until confirmed; each role is offered only the steps
it may take, the likely one first; removing a participant or a party asks first; a past
version is compared with the current one and offers restore only where it differs."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from pycrdt import XmlFragment

from server.domain.templates import append_paragraphs
from tests.support.live import LiveServer
from tests.support.site import Site, seeded_server, session_socket

pytestmark = pytest.mark.asyncio
NEED = "Step 1: the need for a DPIA"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url, change_quiet_seconds=0.2) as served:
        yield served


@pytest.fixture
def people(clients: dict[str, httpx.AsyncClient]) -> dict[str, httpx.AsyncClient]:
    """Everyone on the seeded site, signed in (``clients``, tests/live/conftest.py)."""
    return clients


async def post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    return await client.post(path, data={"csrftoken": client.cookies["csrftoken"], **data})


async def status_of(client: httpx.AsyncClient, dpia: str) -> str:
    return str((await client.get(f"/api/dpias/{dpia}/workflow")).json()["status"])


async def write(
    live: LiveServer, dpia: str, client: httpx.AsyncClient, path: str, words: str
) -> int:
    """Write ``words`` into a rich-text field as ``client``; the version it makes."""
    socket = await session_socket(live.port, dpia, client)
    try:
        await socket.wait_synced()
        append_paragraphs(socket.doc.get(f"field:{path}", type=XmlFragment), [words])
        await socket.wait_saved()
    finally:
        await socket.close()
    return int((await client.get(f"/api/dpias/{dpia}/workflow")).json()["seq"])


def options(page: str, select_id: str) -> list[str]:
    """The visible texts of a <select>'s options, in order."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"no select #{select_id}"
    return [html.unescape(o) for o in re.findall(r"<option[^>]*>([^<]*)</option>", found[1])]


async def test_send_for_review_lists_what_is_empty_and_moves_only_once_confirmed(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia, editor = site.dpia_id, people["editor"]
    await write(live, dpia, editor, "need.aims", "Find people sooner")
    workflow = (await editor.get(f"/dpias/{dpia}/workflow")).text
    assert f'action="/dpias/{dpia}/workflow/confirm"' in workflow  # the button asks first

    unconfirmed = await post(editor, f"/dpias/{dpia}/workflow", action="status", status="in_review")
    assert unconfirmed.status_code == 200
    check = html.unescape(unconfirmed.text)
    assert "before you send for review" in check
    assert "Screening: is a DPIA needed?" in check  # empty: named by its title
    assert "Empty" in check
    need = check.split(f">{NEED}</a>", 1)[1].split("</tr>", 1)[0]  # written in part:
    assert "Why a DPIA is needed" in need  # its unanswered questions are listed,
    assert "What the project aims to achieve" not in need  # not the answered one
    assert await status_of(editor, dpia) == "draft"  # nothing changed
    shown = await editor.get(f"/dpias/{dpia}/workflow/confirm?status=in_review")
    assert shown.status_code == 200 and "Screening: is a DPIA needed?" in html.unescape(shown.text)
    assert await status_of(editor, dpia) == "draft"

    confirmed = await post(
        editor, f"/dpias/{dpia}/workflow", action="status", status="in_review", confirm="yes"
    )
    assert confirmed.status_code == 303
    assert await status_of(editor, dpia) == "in_review"
    # A viewer may not send it: the check page refuses as the move would.
    assert (
        await people["viewer"].get(f"/dpias/{dpia}/workflow/confirm?status=draft")
    ).status_code == 400


async def test_each_role_is_offered_only_its_steps_with_the_likely_one_first(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia = site.dpia_id
    await write(live, dpia, people["owner"], "need.aims", "Find people sooner")
    pages = {
        role: (await c.get(f"/dpias/{dpia}/workflow")).text
        for role, c in people.items()
        if role != "outsider"
    }
    # An author is offered "Send for review"; a DPO, commenter or viewer is not.
    for role in ("owner", "editor"):
        assert "Send for review → In review" in pages[role], role
    for role in ("dpo", "commenter", "viewer"):
        assert "Send for review" not in pages[role], role
        assert "There is no step for you to take on the DPIA" in pages[role]
    # A written section: authors may submit it; nobody else is offered a step on it.
    assert options(pages["editor"], "step-need") == ["Submit for review"]
    for role in ("dpo", "commenter", "viewer"):
        assert 'id="step-need"' not in pages[role], role
    assert 'id="step-screening"' not in pages["editor"]  # empty: nothing to submit

    submitted = await post(
        people["editor"], f"/dpias/{dpia}/workflow", action="section", section="need", step="submit"
    )
    assert submitted.status_code == 303
    dpo = (await people["dpo"].get(f"/dpias/{dpia}/workflow")).text
    assert options(dpo, "step-need") == ["Mark as reviewed", "Request changes"]
    editor = (await people["editor"].get(f"/dpias/{dpia}/workflow")).text
    assert options(editor, "step-need") == ["Reopen for editing"]
    # Signing: a DPO's advice and "Advise" lead for a DPO; an owner signs sections first;
    # others are offered no form at all.
    assert options(dpo, "kind")[0] == "DPO advice provided"
    assert options(dpo, "decision")[0] == "Advise"
    owner = (await people["owner"].get(f"/dpias/{dpia}/workflow")).text
    assert options(owner, "kind")[0] == "A section (once reviewed)"
    assert "DPO advice provided" not in options(owner, "kind")
    assert options(owner, "decision")[0] == "Approve"
    for role in ("editor", "commenter", "viewer"):
        page = (await people[role].get(f"/dpias/{dpia}/workflow")).text
        assert 'id="kind"' not in page, role
        assert 'id="step-need"' not in page or role == "editor", role
    # What is offered is what the rule allows: the DPO's first step is taken.
    reviewed = await post(
        people["dpo"], f"/dpias/{dpia}/workflow", action="section", section="need", step="review"
    )
    assert reviewed.status_code == 303


async def test_removing_a_participant_or_a_party_asks_first_and_a_bare_post_changes_nothing(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    _, site = server
    dpia, owner = site.dpia_id, people["owner"]
    path = f"/dpias/{dpia}/participants"
    page = (await owner.get(path)).text
    viewer = page.split(site.emails["viewer"], 1)[1].split('name="participant" value="', 1)[1]
    viewer_id = viewer.split('"', 1)[0]
    assert f'action="{path}/remove"' in page

    asked = await owner.get(f"{path}/remove?participant={viewer_id}")
    assert asked.status_code == 200
    question = html.unescape(asked.text)
    assert "Remove Viewer Person from Shared DPIA?" in question
    assert "takes part as a viewer" in question
    bare = await post(owner, path, action="remove", participant=viewer_id)
    assert bare.status_code == 200 and "Remove Viewer Person" in html.unescape(bare.text)
    assert site.emails["viewer"] in (await owner.get(path)).text  # still there
    done = await post(owner, path, action="remove", participant=viewer_id, confirm="yes")
    assert done.status_code == 303
    assert site.emails["viewer"] not in (await owner.get(path)).text

    added = await post(
        owner, path, action="add-party", party_role="processor", party_name="Acme Ltd"
    )
    assert added.status_code == 303
    page = (await owner.get(path)).text
    party_id = page.split("Acme Ltd", 1)[1].split('name="party" value="', 1)[1].split('"', 1)[0]
    asked = await owner.get(f"{path}/remove?party={party_id}")
    assert "Remove Acme Ltd as a party" in html.unescape(asked.text)
    assert "a party as processor" in html.unescape(asked.text)
    bare = await post(owner, path, action="remove-party", party=party_id)
    assert bare.status_code == 200 and "Acme Ltd" in (await owner.get(path)).text
    done = await post(owner, path, action="remove-party", party=party_id, confirm="yes")
    assert done.status_code == 303 and "Acme Ltd" not in (await owner.get(path)).text
    # Only owners are asked (and may remove): an editor is refused the question.
    refused = await people["editor"].get(f"{path}/remove?participant={viewer_id}")
    assert refused.status_code == 403


async def test_a_past_version_compares_with_the_current_and_restores_only_what_differs(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia, owner = site.dpia_id, people["owner"]
    past = await write(live, dpia, owner, "need.aims", "Find people sooner")
    current = await write(live, dpia, owner, "processing.nature", "Matching two lists")
    assert current > past
    page = html.unescape((await owner.get(f"/dpias/{dpia}/versions/{past}")).text)
    assert f"Differences between version {past} and the current version ({current})" in page
    assert (
        f'id="compare" name="compare" type="number" min="1" max="{current}" value="{current}"'
        in page
    )
    restorable = re.findall(r'name="field" value="([^"]+)"', page)
    assert restorable == ["processing.nature"]  # need.aims is the same now: nothing to restore
    restored = await post(owner, f"/dpias/{dpia}/restore", field="processing.nature", seq=str(past))
    assert restored.status_code == 303
    again = html.unescape((await owner.get(f"/dpias/{dpia}/versions/{past}")).text)
    assert re.findall(r'name="field" value="([^"]+)"', again) == []
    assert "nothing to restore" in again
    # Another version can still be compared, by asking.
    other = html.unescape((await owner.get(f"/dpias/{dpia}/versions/{past}?compare=1")).text)
    assert f"Differences between version {past} and version 1" in other
