"""A request nobody should send gets a 4xx that says what was wrong, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer
from tests.support.site import Site, csrf_field, seeded_server

pytestmark = pytest.mark.asyncio

# Deeper than any export needs and than Python's parser takes; within the 64 KiB API limit.
DEEP = 20_000
# Numbers that no database row can have: beyond SQLite's 64 bits, or digits int() refuses.
HUGE = "99999999999999999999"
NOT_NUMBERS = (HUGE, "9" * 400, "²")


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


def _json_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"], "content-type": "application/json"}


async def test_deeply_nested_json_is_refused_with_400_on_import_and_the_api(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    nested = b"[" * DEEP + b"]" * DEEP
    in_an_export = b'{"format": "opendpia.dpia", "content": ' + nested + b"}"

    api_import = await owner.post(
        "/api/dpias/import?lead=1", content=in_an_export, headers=_json_headers(owner)
    )
    assert api_import.status_code == 400, api_import.text
    assert api_import.json()["error"].startswith("The JSON is nested more than")

    form = await owner.get("/dpias/import")
    page_import = await owner.post(
        "/dpias/import",
        data={"csrftoken": csrf_field(form.text), "lead": "1"},
        files={"file": ("deep.json", in_an_export, "application/json")},
    )
    assert page_import.status_code == 400, page_import.text
    assert "The JSON is nested more than" in page_import.text

    comment = await owner.post(
        f"/api/dpias/{dpia_id}/comments",
        content=b'{"section": "need", "text": "hi", "x": ' + nested + b"}",
        headers=_json_headers(owner),
    )
    assert comment.status_code == 400, comment.text
    assert comment.json()["error"].startswith("The JSON is nested more than")


@pytest.mark.parametrize("number", NOT_NUMBERS, ids=["20 digits", "400 digits", "superscript"])
async def test_an_id_no_row_can_have_gets_a_4xx_in_every_path_and_query(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient, number: str
) -> None:
    dpia_id = server[1].dpia_id
    base = f"/dpias/{dpia_id}"
    for path in (
        f"{base}/versions/{number}",
        f"{base}/versions/1?compare={number}",
        f"{base}/signoffs/{number}",
        f"{base}/attachments/{number}",
        f"/api{base}/versions/{number}",
        f"/api{base}/versions/1?compare={number}",
        f"/api{base}/signoffs/{number}/diff",
        f"/dpias?organisation={number}",
    ):
        response = await owner.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)
        assert "must be a whole number" in response.text, path

    for path in (f"/api{base}/signoffs/{number}/reconfirm", f"/api{base}/signoffs/{number}/revoke"):
        response = await owner.post(path, json={}, headers=_json_headers(owner))
        assert response.status_code in (400, 404), (path, response.status_code)
        assert "must be a whole number" in response.json()["error"], path


async def test_an_id_no_row_can_have_in_a_form_or_a_json_body_gets_a_4xx(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    participants = await owner.get(f"/dpias/{dpia_id}/participants")
    token = csrf_field(participants.text)
    forms = [
        (f"/dpias/{dpia_id}/participants", {"action": "remove", "participant": HUGE}),
        (f"/dpias/{dpia_id}/participants", {"action": "role", "participant": HUGE, "role": "x"}),
        (f"/dpias/{dpia_id}/participants", {"action": "reviews", "participant": HUGE}),
        (f"/dpias/{dpia_id}/participants", {"action": "remove-party", "party": HUGE}),
        (
            f"/dpias/{dpia_id}/participants",
            {"action": "add-party", "party_role": "controller", "organisation": HUGE},
        ),
        (f"/dpias/{dpia_id}/inbound", {"action": "discard", "id": HUGE}),
        (f"/dpias/{dpia_id}/inbound", {"action": "resume", "id": HUGE}),
        (f"/dpias/{dpia_id}/restore", {"field": "need.aims", "seq": HUGE}),
        (f"/dpias/{dpia_id}/workflow", {"action": "revoke", "signoff": HUGE}),
        ("/dpias/new", {"title": "Overflow", "lead": HUGE, "origin": ""}),
    ]
    for path, data in forms:
        response = await owner.post(path, data={"csrftoken": token, **data})
        assert response.status_code in (400, 404), (path, data, response.status_code)
        assert "must be a whole number" in response.text, (path, data)

    bodies = [
        (f"/api/dpias/{dpia_id}/restore", {"field": "need.aims", "seq": int(HUGE)}),
        (
            f"/api/dpias/{dpia_id}/reviewers",
            {"section": "need", "participant": int(HUGE), "assigned": True},
        ),
    ]
    for path, body in bodies:
        response = await owner.post(path, json=body, headers=_json_headers(owner))
        assert response.status_code in (400, 404), (path, response.status_code)
        assert "must be a whole number" in response.json()["error"], path

    imported = await owner.post(
        f"/api/dpias/import?lead={HUGE}", content=b"{}", headers=_json_headers(owner)
    )
    assert imported.status_code in (400, 404) and "must be a whole number" in imported.text


async def test_an_export_whose_template_version_is_not_a_number_is_refused(
    owner: httpx.AsyncClient,
) -> None:
    export = (
        b'{"format": "opendpia.dpia", "version": 1, "title": "T", "content": {},'
        b' "template": {"id": "uk-dpia", "version": "one"}}'
    )
    response = await owner.post(
        "/api/dpias/import?lead=1", content=export, headers=_json_headers(owner)
    )
    assert response.status_code == 400, response.text
    assert "template version must be a whole number" in response.json()["error"]
