"""The editor, the PDF, the Word file and a past version draw the same heat maps.

One DPIA holds rated risks, risks with no rating before or after measures, and two risks
in one cell. Each of the four renderings is read back as a person sees it
(tests/support/heatmaps.py: header labels, each cell's level, refs and colour, the "Not
yet rated" list) and compared cell by cell with what the ratings say, written out by hand
below. Then ratings change: the open editor follows live, a new export and the new
version's page follow, and the old version's page still shows what it showed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pycrdt import Array, Map

from server.domain.risk import RiskMatrix
from server.domain.templates import load_template
from tests.browser.conftest import AXE, artifact, keep_screenshot, sign_in
from tests.support.heatmaps import Cell, CellKey, Drawn, read_docx, read_dom, read_pdf
from tests.support.live import LiveServer
from tests.support.site import Site, signed_in
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio
MATRIX = RiskMatrix.from_template(load_template().content)

# What the template says, written out rather than computed: labels, levels and colours.
LIKELIHOOD = {"1": "Remote", "2": "Possible", "3": "Probable"}
SEVERITY = {"1": "Minimal", "2": "Significant", "3": "Severe"}
LEVEL = {  # score → (label, fill)
    1: ("Low", "#1e6b34"),
    2: ("Low", "#1e6b34"),
    3: ("Medium", "#f2c12e"),
    4: ("Medium", "#f2c12e"),
    6: ("High", "#b3261e"),
    9: ("High", "#b3261e"),
}
ROWS = ("Severe", "Significant", "Minimal")  # severity down the rows, worst first
COLUMNS = ("Remote", "Possible", "Probable")  # likelihood across

RISKS = [
    # rated before measures, not after (the demo's R1)
    {"ref": "R1", "likelihood": "2", "severity": "3"},
    # rated before and after, sharing both cells with R4
    {
        "ref": "R2",
        "likelihood": "3",
        "severity": "3",
        "residual_likelihood": "1",
        "residual_severity": "2",
    },
    # half a rating before measures: unrated there; rated after
    {"ref": "R3", "likelihood": "1", "residual_likelihood": "2", "residual_severity": "2"},
    {
        "ref": "R4",
        "likelihood": "3",
        "severity": "3",
        "residual_likelihood": "1",
        "residual_severity": "2",
    },
    # an override with a reason changes the risk's level, never where it sits
    {
        "ref": "R5",
        "likelihood": "1",
        "severity": "1",
        "override_level": "high",
        "override_reason": "Records of children",
    },
]
EXPECTED = {
    "inherent": ({("2", "3"): ("R1",), ("3", "3"): ("R2", "R4"), ("1", "1"): ("R5",)}, ("R3",)),
    "residual": ({("1", "2"): ("R2", "R4"), ("2", "2"): ("R3",)}, ("R1", "R5")),
}
# R1 is rated after measures, R2 moves, R4 loses its severity (unrated before measures).
CHANGES: dict[str, dict[str, str | None]] = {
    "R1": {"residual_likelihood": "1", "residual_severity": "3"},
    "R2": {"residual_likelihood": "2", "residual_severity": "1"},
    "R4": {"severity": None},
}
EXPECTED_AFTER = {
    "inherent": ({("2", "3"): ("R1",), ("3", "3"): ("R2",), ("1", "1"): ("R5",)}, ("R3", "R4")),
    "residual": (
        {("1", "3"): ("R1",), ("2", "1"): ("R2",), ("1", "2"): ("R4",), ("2", "2"): ("R3",)},
        ("R5",),
    ),
}


def expected(spec: dict[str, tuple[dict[CellKey, tuple[str, ...]], tuple[str, ...]]]) -> Drawn:
    from tests.support.heatmaps import DrawnMap

    captions = {"inherent": "Before measures", "residual": "After measures (residual)"}
    drawn: Drawn = {}
    for map_id, (placed, unrated) in spec.items():
        cells = {}
        for likelihood in LIKELIHOOD:
            for severity in SEVERITY:
                label, fill = LEVEL[int(likelihood) * int(severity)]
                cells[(likelihood, severity)] = Cell(
                    label, placed.get((likelihood, severity), ()), fill
                )
        drawn[map_id] = DrawnMap(captions[map_id], ROWS, COLUMNS, cells, unrated)
    return drawn


def differences(name: str, got: Drawn, want: Drawn) -> list[str]:
    """Every cell (and axis, caption, unrated list) where ``got`` differs, said plainly."""
    found = []
    for map_id, map_want in want.items():
        map_got = got.get(map_id)
        if map_got is None:
            found.append(f"{name}: no {map_id} map")
            continue
        for what in ("caption", "rows", "columns", "unrated"):
            if getattr(map_got, what) != getattr(map_want, what):
                found.append(
                    f"{name} {map_id} {what}: {getattr(map_got, what)} != {getattr(map_want, what)}"
                )
        for key, cell in map_want.cells.items():
            if map_got.cells.get(key) != cell:
                where = f"{LIKELIHOOD[key[0]]} x {SEVERITY[key[1]]}"
                found.append(f"{name} {map_id} {where}: {map_got.cells.get(key)} != {cell}")
    return found


async def _write(live: LiveServer, dpia_id: str, change: Any) -> None:
    writer = await YClient.connect(live.url(dpia_id, saved=True))
    try:
        change(writer.doc.get("table:risks.register", type=Array))
        await writer.wait_saved()
    finally:
        await writer.close()


def _add(rows: Array[Any]) -> None:
    for risk in RISKS:
        rows.append(Map({"id": f"id-{risk['ref']}", "title": f"Risk {risk['ref']}", **risk}))


def _change(rows: Array[Any]) -> None:
    for row in rows:
        for key, value in CHANGES.get(str(row.get("ref")), {}).items():
            if value is None:
                del row[key]
            else:
                row[key] = value


async def _renderings(
    page: Any, client: httpx.AsyncClient, dpia_id: str, seq: int, tag: str
) -> dict[str, Drawn]:
    """The editor's maps (``page`` has it open), the exports', and version ``seq``'s."""
    shown = {"editor": await read_dom(page, MATRIX)}
    pdf = await client.get(f"/dpias/{dpia_id}/export.pdf")
    assert pdf.status_code == 200, pdf.text
    shown["pdf"], image = read_pdf(pdf.content, MATRIX)
    image.save(artifact(f"heatmap-pdf-{tag}.png"))
    word = await client.get(f"/dpias/{dpia_id}/export.docx")
    assert word.status_code == 200
    shown["word"] = read_docx(word.content, MATRIX)
    version = await page.context.new_page()
    await version.goto(f"{str(client.base_url).rstrip('/')}/dpias/{dpia_id}/versions/{seq}")
    shown["version"] = await read_dom(version, MATRIX)
    await keep_screenshot(version.locator(".heatmaps"), f"heatmap-version-{tag}.png")
    await version.locator("#h-risks").scroll_into_view_if_needed()
    await keep_screenshot(version, f"version-risks-{tag}.png")
    await version.close()
    return shown


async def _seq(client: httpx.AsyncClient, dpia_id: str) -> int:
    response = await client.get(f"/api/dpias/{dpia_id}/workflow")
    assert response.status_code == 200
    return int(response.json()["seq"])


async def test_editor_pdf_word_and_past_version_draw_the_same_heat_maps_cell_by_cell(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    await _write(live, dpia, _add)
    client = await signed_in(base, seeded.emails["owner"])
    page = await sign_in(browser, base, seeded.emails["owner"])
    try:
        await page.goto(f"{base}/dpias/{dpia}#risks")
        await page.locator('a.section-link[data-section="risks"]').click()
        await page.wait_for_selector('table[data-heatmap="residual"][data-unrated="R1 R5"]')
        first = await _seq(client, dpia)

        shown = await _renderings(page, client, dpia, first, "before-change")
        await keep_screenshot(page.locator("#risk-heatmaps"), "heatmap-editor.png")
        want = expected(EXPECTED)
        problems = [p for name, got in shown.items() for p in differences(name, got, want)]
        assert problems == [], "\n".join(problems)

        await _write(live, dpia, _change)
        # the open editor follows at once, without a reload
        await page.wait_for_selector('table[data-heatmap="residual"][data-unrated="R5"]')
        latest = await _seq(client, dpia)
        assert latest > first
        shown = await _renderings(page, client, dpia, latest, "after-change")
        await keep_screenshot(page.locator("#risk-heatmaps"), "heatmap-editor-after-change.png")
        want = expected(EXPECTED_AFTER)
        problems = [p for name, got in shown.items() for p in differences(name, got, want)]
        assert problems == [], "\n".join(problems)

        # the past version still shows what was rated then
        old = await page.context.new_page()
        await old.goto(f"{base}/dpias/{dpia}/versions/{first}")
        problems = differences("old version", await read_dom(old, MATRIX), expected(EXPECTED))
        assert problems == [], "\n".join(problems)
    finally:
        await client.aclose()
        await page.context.close()


async def test_the_filled_heat_maps_pass_axe_in_the_editor_and_on_a_past_version(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    await _write(live, dpia, _add)
    client = await signed_in(base, seeded.emails["owner"])
    page = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    try:
        seq = await _seq(client, dpia)
        found = {}
        for name, path in (
            ("editor", f"/dpias/{dpia}#risks"),
            ("version", f"/dpias/{dpia}/versions/{seq}"),
        ):
            await page.goto(base + path)
            if name == "editor":
                await page.locator('a.section-link[data-section="risks"]').click()
            await page.wait_for_selector('table[data-heatmap="residual"][data-unrated="R1 R5"]')
            await page.add_script_tag(path=str(AXE))
            result = await page.evaluate(
                "async () => await axe.run(document.querySelector('.heatmaps'))"
            )
            found[name] = [
                {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:5]}
                for v in result["violations"]
            ]
        assert found == {"editor": [], "version": []}, found
    finally:
        await client.aclose()
        await page.context.close()
