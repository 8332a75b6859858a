"""Exports: JSON round-trips through import, the PDF renders, Word and CSV carry the record."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.exports import artifact
from tests.support.review import (
    World,
    changed,
    edit,
    measure,
    review_everything,
    review_world,
    risk,
    text,
    value,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        await edit(built, text("need.aims", "Find people sleeping rough sooner", "Second *para*"))
        await edit(
            built, value("screening.triggers", ["vulnerable-subjects", "matching-combining"])
        )
        await edit(built, value("processing.children_vulnerable", True))
        await edit(built, risk("R1", "3", "3", residual_likelihood="1", residual_severity="3"))
        await edit(built, risk("R2", "2", "1"))
        await edit(built, measure("M1"))
        await built.dpias.add_party(built.owner, built.dpia_id, "processor", name="Outreach CIC")
        yield built


async def test_json_export_import_export_is_identical(world: World) -> None:
    w = world
    first, media_type, _ = await w.exports.export(w.owner, w.dpia_id, "json")
    assert media_type == "application/json"
    copy = await w.exports.import_json(w.owner, first, w.owner.organisation_ids[0])
    assert copy != w.dpia_id
    second, _, _ = await w.exports.export(w.owner, copy, "json")
    assert second == first
    data = json.loads(first)
    assert data["content"]["need"]["aims"][1]["content"][0]["text"] == "Second *para*"
    assert data["parties"][-1] == {"name": "Outreach CIC", "role": "processor"}


async def test_the_command_line_imports_an_export_into_an_equal_dpia(
    world: World,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from server.cli import main

    w = world
    first, _, _ = await w.exports.export(w.owner, w.dpia_id, "json")
    path = tmp_path / "dpia.json"
    path.write_bytes(first)
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    code = await asyncio.to_thread(
        main, ["import", str(path), "--as", w.owner.email, "--org", "CAM"]
    )
    assert code == 0
    copy = capsys.readouterr().out.strip()
    assert (await w.exports.export(w.owner, copy, "json"))[0] == first


async def test_an_export_that_does_not_fit_is_refused_with_a_reason(world: World) -> None:
    from server.domain.errors import InvalidInput

    w = world
    good = json.loads((await w.exports.export(w.owner, w.dpia_id, "json"))[0])
    for broken, reason in (
        (b"not json", "not JSON"),
        (json.dumps({**good, "format": "other"}).encode(), "not an OpenDPIA"),
        (json.dumps({**good, "content": {"nowhere": {}}}).encode(), "nowhere"),
    ):
        with pytest.raises(InvalidInput, match=reason):
            await w.exports.import_json(w.owner, broken, w.owner.organisation_ids[0])


async def test_the_pdf_renders_a_page_that_is_not_blank(world: World) -> None:
    import pypdfium2

    w = world
    await review_everything(w)
    signed = await w.signoffs.sign(
        w.dpo, w.dpia_id, kind="section", target="need", decision="approve"
    )
    await w.signoffs.sign(w.owner, w.dpia_id, kind="measures_approved", decision="approve")
    await edit(w, text("need.aims", "Changed after signing"))
    await changed(w)
    data, media_type, _ = await w.exports.export(w.owner, w.dpia_id, "pdf")
    assert media_type == "application/pdf" and data.startswith(b"%PDF")
    pdf = pypdfium2.PdfDocument(data)
    texts = [page.get_textpage().get_text_range() for page in pdf]
    # the page with the heat maps (the cover and the sign-offs come first)
    index = next(i for i, t in enumerate(texts) if "Risk heat maps" in t)
    assert "Before measures" in texts[index] and "After measures" in texts[index]
    whole = " ".join(" ".join(t.split()) for t in texts)
    assert "Measures approved by Olive Owner" in whole
    assert "State STALE: changed since signed" in whole
    assert "Matches the current content No: changed since signed" in whole
    image = pdf[index].render(scale=1.5).to_pil()
    # Kept for a person to look at (var/test-artifacts, like the browser screenshots).
    await asyncio.to_thread(image.save, artifact("export-pdf-heatmaps.png"))
    grey = image.convert("L")
    histogram = grey.histogram()
    dark = sum(histogram[:128])
    assert dark > 0.005 * grey.width * grey.height  # text and the heat map, not a blank page
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    red = sum(n for n, (r, g, b) in colours if r > 150 and g < 80 and b < 80)
    assert red > 500  # the high-risk cells of the heat map are drawn
    assert signed


async def test_word_and_csv_carry_the_sign_off_table_and_the_action_plan(world: World) -> None:
    import docx

    w = world
    await w.signoffs.sign(w.owner, w.dpia_id, kind="measures_approved", decision="approve")
    await edit(w, risk("R3", "1", "1"))
    await changed(w)
    data, _, name = await w.exports.export(w.owner, w.dpia_id, "docx")
    assert name.endswith(".docx")
    document = docx.Document(io.BytesIO(data))
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    headings = [p.text for p in document.paragraphs if p.style.name == "Heading 2"]
    assert "Measures approved by Olive Owner" in headings
    assert "STALE: changed since signed" in cells and "No: changed since signed" in cells
    plan, media_type, _ = await w.exports.export(w.owner, w.dpia_id, "csv")
    assert media_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(plan.decode("utf-8-sig"))))
    assert [(r["Ref"], r["Measure"], r["Type"], r["Approved"]) for r in rows] == [
        ("M1", "Role-based access", "Technical", "")
    ]
    kinds = [e.record.kind for e in await w.audit.entries(w.dpia_id)]
    assert kinds.count("export") == 2
