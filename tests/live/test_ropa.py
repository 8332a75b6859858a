"""The record of processing activities over real HTTP and WebSockets, on SQLite and
PostgreSQL: a filled DPIA's processing operations read as the ICO's columns in the CSV and
the JSON, an entry added and edited by hand, an entry confirmed, flagged when its DPIA is
edited and cleared when confirmed again, and everyone but the organisation's
administrators and DPOs refused."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.domain.ropa import COLUMNS
from tests.support.live import WAIT_SECONDS, LiveServer
from tests.support.ropa import add_keepers, fill, set_retention
from tests.support.site import Site, csrf_field, seeded_server, signed_in

pytestmark = pytest.mark.asyncio
ROPA = "/organisations/CAM/ropa"


@pytest.fixture
def server(database_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(database_url, change_quiet_seconds=0.2) as served:
        yield served


async def record(client: httpx.AsyncClient, query: str = "") -> dict[str, Any]:
    response = await client.get(f"{ROPA}.json{query}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def by_reference(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["reference"]: e for e in data["entries"]}


async def test_the_record_reads_a_filled_dpia_as_the_ico_columns_in_csv_and_json(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    add_keepers(live)
    await fill(live, site, clients["owner"])
    dee = await signed_in(f"http://127.0.0.1:{live.port}", "dee@camden.example")
    try:
        response = await dee.get(f"{ROPA}.csv")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        header, body = rows[0], rows[1:]
        ico = [c.label for c in COLUMNS]
        assert header[: len(ico)] == ico
        assert "Categories of individuals" in header and "Retention schedule" in header
        assert len(body) == 2
        p1 = dict(zip(header, body[0], strict=True))
        assert p1["Reference"] == f"{site.dpia_id} P1"
        assert p1["Processing activity"] == (
            "Outreach teams check who the street-health team has seen"
        )
        assert p1["Name and contact details of the controller"] == "London Borough of Camden"
        assert p1["Data protection officer"] == "Dee Dpo <dee@camden.example>"
        assert p1["Purposes of the processing"].startswith("Find people who need help sooner")
        assert p1["Categories of individuals"] == "People sleeping rough"
        assert p1["Categories of personal data"] == "Name, date of birth, last seen location"
        assert p1["Categories of recipients"] == "Camden outreach team; NHS street-health team"
        assert p1["Transfers to third countries and safeguards"].startswith("UK only")
        assert p1["Retention schedule"] == "12 months after last contact"
        assert p1["Technical and organisational security measures"] == (
            "Role-based access\nMonthly access review"
        )
        assert p1["Lawful basis (Article 6)"] == "6(1)(e) Public task"
        assert p1["Special category or criminal offence condition (Article 9 or 10)"].startswith(
            "9(2)(h)"
        )
        assert p1["Special category data (Article 9)"] == "Yes"
        assert f"/dpias/{site.dpia_id}" in p1["Link to the DPIA"]
        assert p1["State"] == "unconfirmed"

        data = await record(dee)
        assert [c["id"] for c in data["columns"]] == [c.id for c in COLUMNS]
        entries = by_reference(data)
        assert entries[f"{site.dpia_id} P2"]["lawful_basis"] == "6(1)(f) Legitimate interests"
        assert entries[f"{site.dpia_id} P1"]["source"] == "dpia"

        page = await dee.get(ROPA)
        assert page.status_code == 200
        assert "Outreach teams check who the street-health team has seen" in page.text
        found = await record(dee, "?q=monthly+counts")
        assert [e["reference"] for e in found["entries"]] == [f"{site.dpia_id} P2"]
    finally:
        await dee.aclose()


async def test_a_hand_entry_is_added_edited_and_only_its_organisation_sees_it(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, _site = server
    add_keepers(live)
    base = f"http://127.0.0.1:{live.port}"
    dee = await signed_in(base, "dee@camden.example")
    nadia = await signed_in(base, "nadia@nlft.example")
    try:
        form = await dee.get(f"{ROPA}/new")
        assert form.status_code == 200
        token = csrf_field(form.text)
        refused = await dee.post(f"{ROPA}/new", data={"csrftoken": token, "purposes": "Pay"})
        assert refused.status_code == 400 and "Name the processing activity" in refused.text
        added = await dee.post(
            f"{ROPA}/new",
            data={
                "csrftoken": token,
                "activity": "Staff payroll",
                "purposes": "Paying staff",
                "individuals": "Employees",
                "retention": "6 years after leaving",
                "lawful_basis": "6(1)(b) Contract",
            },
        )
        assert added.status_code == 303, added.text
        entry_url = added.headers["location"].split("?")[0]
        entry = by_reference(await record(dee, "?source=hand"))
        assert list(entry) == ["CAM-R1"]
        assert entry["CAM-R1"]["activity"] == "Staff payroll"
        assert entry["CAM-R1"]["controller"] == "London Borough of Camden"
        assert entry["CAM-R1"]["state"] == "hand"
        assert entry["CAM-R1"]["updated_by"] == "Dee Dpo"

        edit = await dee.get(f"{entry_url}?edit=1")
        assert edit.status_code == 200 and "Staff payroll" in edit.text
        edited = await dee.post(
            entry_url,
            data={
                "csrftoken": csrf_field(edit.text),
                "activity": "Staff payroll",
                "retention": "7 years",
            },
        )
        assert edited.status_code == 303
        assert by_reference(await record(dee))["CAM-R1"]["retention"] == "7 years"

        # The trust's administrator keeps the trust's record: none of Camden's entries.
        theirs = await nadia.get("/organisations/NLFT/ropa.json")
        assert theirs.status_code == 200 and theirs.json()["entries"] == []
        for path in (ROPA, f"{ROPA}.csv", f"{ROPA}.json", entry_url, f"{ROPA}/new"):
            assert (await nadia.get(path)).status_code == 403, path
            assert (await clients["outsider"].get(path)).status_code == 403, path
            # A member of Camden who is neither administrator nor DPO is refused too.
            assert (await clients["owner"].get(path)).status_code == 403, path
        chooser = await nadia.get("/ropa")
        assert chooser.headers["location"] == "/organisations/NLFT/ropa"
        page = (await nadia.get("/organisations/NLFT/ropa/new")).text
        post = await nadia.post(
            f"{ROPA}/new", data={"csrftoken": csrf_field(page), "activity": "Theirs"}
        )
        assert post.status_code == 403
        assert "Theirs" not in (await dee.get(ROPA)).text
        # Nonsense in the address or the filters is a clear answer, never a 500.
        for path, status in (
            ("/organisations/no%20such!/ropa", 404),
            ("/organisations/ZZZ/ropa.json", 404),
            (f"{ROPA}/entries/hand%3A999", 404),
            (f"{ROPA}/entries/dpia%3A%00%3Ax", 404),
            (f"{ROPA}?state=bogus&source=bogus&q=" + "x" * 5000, 200),
        ):
            assert (await dee.get(path)).status_code == status, path
    finally:
        await dee.aclose()
        await nadia.aclose()


async def test_an_entry_is_flagged_when_its_dpia_changes_after_confirmation_until_confirmed(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    add_keepers(live)
    owner = clients["owner"]
    await fill(live, site, owner)
    dee = await signed_in(f"http://127.0.0.1:{live.port}", "dee@camden.example")
    reference = f"{site.dpia_id} P1"
    try:
        page = await dee.get(ROPA)
        link = page.text.split(reference, 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
        entry = await dee.get(link)
        assert entry.status_code == 200 and "Not yet confirmed" in entry.text
        confirmed = await dee.post(link, data={"csrftoken": csrf_field(entry.text)})
        assert confirmed.status_code == 303
        first = by_reference(await record(dee))[reference]
        assert first["state"] == "confirmed"
        assert first["confirmed_by"] == "Dee Dpo"
        assert first["confirmed_status"] == "draft"
        assert first["confirmed_version"] == first["dpia_version"]

        await set_retention(live, site, owner, "6 months after last contact")
        async with asyncio.timeout(WAIT_SECONDS):
            while (now := by_reference(await record(dee))[reference])["state"] != "changed":
                await asyncio.sleep(0.1)
        assert now["retention"] == "6 months after last contact"
        assert now["dpia_version"] > first["confirmed_version"]
        assert by_reference(await record(dee))[f"{site.dpia_id} P2"]["state"] == "unconfirmed"
        listing = (await dee.get(f"{ROPA}?state=changed")).text
        assert 'id="ropa-changed"' in listing and reference in listing
        shown = await dee.get(link)
        assert "The DPIA changed since this entry was confirmed" in shown.text
        assert "12 months after last contact" in shown.text  # what was confirmed
        compare = (
            f"/dpias/{site.dpia_id}/versions/{first['confirmed_version']}"
            f"?compare={now['dpia_version']}"
        )
        assert f'href="{compare.replace("&", "&amp;")}"' in shown.text
        assert (await owner.get(compare)).status_code == 200  # the DPIA's participants read it

        again = await dee.post(link, data={"csrftoken": csrf_field(shown.text)})
        assert again.status_code == 303
        cleared = by_reference(await record(dee))[reference]
        assert cleared["state"] == "confirmed"
        assert cleared["confirmed_version"] == now["dpia_version"]
        assert 'id="ropa-changed"' not in (await dee.get(ROPA)).text
    finally:
        await dee.aclose()
