"""Section review, sign-offs bound to content, the DPIA's workflow and its gates, on SQLite
and PostgreSQL. Documents are changed by appending real updates to the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, DpiaLocked, InvalidInput
from server.domain.workflow import SectionState, SignOffState
from server.storage.models import Notification
from tests.support.review import (
    World,
    changed,
    edit,
    review_everything,
    review_world,
    risk,
    text,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        yield built


async def test_section_moves_through_review_by_role_and_send_back_needs_reasons(
    world: World,
) -> None:
    w = world
    overview = await w.workflow.overview(w.owner, w.dpia_id)
    assert overview.sections["need"] is SectionState.EMPTY
    await edit(w, text("need.aims", "Find people sleeping rough sooner"))
    assert (await w.workflow.overview(w.owner, w.dpia_id)).sections[
        "need"
    ] is SectionState.IN_PROGRESS
    with pytest.raises(AccessDenied):
        await w.workflow.section(w.dpo, w.dpia_id, "need", "submit")
    assert await w.workflow.section(w.editor, w.dpia_id, "need", "submit") is SectionState.SUBMITTED
    with pytest.raises(AccessDenied):
        await w.workflow.section(w.editor, w.dpia_id, "need", "review")
    with pytest.raises(InvalidInput, match="reasons"):
        await w.workflow.section(w.dpo, w.dpia_id, "need", "request_changes")
    await w.workflow.section(w.dpo, w.dpia_id, "need", "request_changes", "Say which data")
    await w.workflow.section(w.editor, w.dpia_id, "need", "submit")
    assert await w.workflow.section(w.dpo, w.dpia_id, "need", "review") is SectionState.REVIEWED
    await edit(w, text("need.aims", "and house them"))
    assert (await w.workflow.overview(w.owner, w.dpia_id)).sections["need"] is SectionState.STALE


async def test_edit_after_sign_off_makes_it_stale_and_tells_the_signer(world: World) -> None:
    w = world
    await edit(w, text("need.aims", "Find people sleeping rough sooner"))
    await w.workflow.section(w.editor, w.dpia_id, "need", "submit")
    await w.workflow.section(w.dpo, w.dpia_id, "need", "review")
    signoff_id = await w.signoffs.sign(
        w.dpo, w.dpia_id, kind="section", target="need", decision="approve"
    )
    [signed] = await w.signoffs.of_dpia(w.dpia_id)
    assert (signed.id, signed.state, signed.signer_name, signed.signer_organisation) == (
        signoff_id,
        SignOffState.VALID,
        "Dee Pio",
        "London Borough of Camden",
    )
    assert len(signed.content_hash) == 64 and signed.seq == 2
    assert (await w.workflow.overview(w.owner, w.dpia_id)).sections[
        "need"
    ] is SectionState.SIGNED_OFF

    await edit(w, text("need.aims", "and share addresses with the police"))
    await changed(w, f"user:{w.editor.id}")
    [stale] = await w.signoffs.of_dpia(w.dpia_id)
    assert stale.state is SignOffState.STALE
    async with w.sessions() as session:
        told = (
            await session.scalars(select(Notification).where(Notification.kind == "stale"))
        ).all()
    assert [n.participant_id for n in told] == [signed.signer_participant_id]
    diff = await w.signoffs.diff(w.dpo, w.dpia_id, signoff_id)
    assert [c.path for c in diff] == ["need.aims"]
    assert "police" in diff[0].after and "police" not in diff[0].before

    renewed = await w.signoffs.reconfirm(w.dpo, w.dpia_id, signoff_id)
    states = {s.id: s.state for s in await w.signoffs.of_dpia(w.dpia_id)}
    assert states == {signoff_id: SignOffState.SUPERSEDED, renewed: SignOffState.VALID}


async def test_staleness_cascades_along_dependencies_and_no_further(world: World) -> None:
    w = world
    await edit(w, risk("R1", "2", "2"))
    measures = await w.signoffs.sign(
        w.owner, w.dpia_id, kind="measures_approved", decision="approve"
    )
    consultation = await w.signoffs.sign(
        w.owner, w.dpia_id, kind="consultation_reviewed", decision="approve"
    )
    await edit(w, text("need.aims", "Unrelated to measures"))
    await changed(w)
    states = {s.id: s.state for s in await w.signoffs.of_dpia(w.dpia_id)}
    assert states == {measures: SignOffState.VALID, consultation: SignOffState.VALID}
    await edit(w, text("processing.nature", "We now also match with health records"))
    await changed(w)
    states = {s.id: s.state for s in await w.signoffs.of_dpia(w.dpia_id)}
    assert states == {measures: SignOffState.STALE, consultation: SignOffState.VALID}


async def test_the_author_cannot_sign_as_dpo(world: World) -> None:
    w = world
    await review_everything(w)
    await w.dpias.invite(w.owner, w.dpia_id, "editor2@camden.example", "owner", "Second Owner")
    participants = await w.dpias.participants(w.owner, w.dpia_id)
    me = next(p for p in participants if p.email == w.owner.email)
    await w.dpias.change_role(w.owner, w.dpia_id, me.id, "dpo")
    with pytest.raises(AccessDenied, match=r"(?i)separation of duties"):
        await w.signoffs.sign(w.owner, w.dpia_id, kind="dpo_advice", decision="advise")
    assert await w.signoffs.sign(w.dpo, w.dpia_id, kind="dpo_advice", decision="advise")


async def test_dpo_advice_waits_until_every_section_is_reviewed(world: World) -> None:
    w = world
    with pytest.raises(InvalidInput, match="every section is reviewed"):
        await w.signoffs.sign(w.dpo, w.dpia_id, kind="dpo_advice", decision="advise")


async def test_overruling_dpo_advice_or_rejecting_without_reasons_is_refused(world: World) -> None:
    w = world
    with pytest.raises(InvalidInput, match="Overruling"):
        await w.signoffs.sign(w.owner, w.dpia_id, kind="dpo_advice_decision", decision="overrule")
    with pytest.raises(InvalidInput, match="rejection"):
        await w.signoffs.sign(w.owner, w.dpia_id, kind="party_approval", decision="reject")
    assert await w.signoffs.sign(
        w.owner,
        w.dpia_id,
        kind="dpo_advice_decision",
        decision="overrule",
        reasons="The service is statutory; the measures reduce the risk enough",
    )


async def approve(w: World, *, high_risk: bool) -> None:
    await review_everything(w)
    if high_risk:
        await edit(w, risk("R1", "3", "3", effect="accepted"))
        for section in ("risks",):
            await w.workflow.section(w.editor, w.dpia_id, section, "submit")
            await w.workflow.section(w.dpo, w.dpia_id, section, "review")
    await w.workflow.move(w.editor, w.dpia_id, "in_review")
    await w.workflow.move(w.owner, w.dpia_id, "dpo_review")
    with pytest.raises(InvalidInput, match="DPO advice"):
        await w.workflow.move(w.dpo, w.dpia_id, "awaiting_approval")
    await w.signoffs.sign(w.dpo, w.dpia_id, kind="dpo_advice", decision="advise")
    await w.workflow.move(w.dpo, w.dpia_id, "awaiting_approval")
    with pytest.raises(InvalidInput, match=r"(?i)every controller"):
        if not high_risk:
            await w.workflow.move(w.owner, w.dpia_id, "approved")
        else:
            raise InvalidInput("every controller (skipped)")
    if high_risk:
        with pytest.raises(InvalidInput, match="Accepting a residual high risk needs reasons"):
            await w.signoffs.sign(
                w.owner, w.dpia_id, kind="residual_risks_approved", decision="approve"
            )
        with pytest.raises(InvalidInput, match=r"(?i)residual high risk"):
            await w.workflow.move(w.owner, w.dpia_id, "approved")
        await w.signoffs.sign(
            w.owner,
            w.dpia_id,
            kind="residual_risks_approved",
            decision="approve",
            reasons="Lives are at risk without the outreach",
        )
    with pytest.raises(AccessDenied):
        await w.workflow.move(w.editor, w.dpia_id, "approved")
    await w.signoffs.sign(w.owner, w.dpia_id, kind="party_approval", decision="approve")
    assert await w.workflow.move(w.owner, w.dpia_id, "approved") is DpiaStatus.APPROVED


async def test_a_dpia_reaches_approval_only_through_its_gates_and_is_then_locked(
    world: World,
) -> None:
    w = world
    await approve(w, high_risk=False)
    with pytest.raises(DpiaLocked):
        await w.workflow.section(w.editor, w.dpia_id, "need", "submit")
    with pytest.raises(DpiaLocked):
        await w.signoffs.sign(w.owner, w.dpia_id, kind="measures_approved", decision="approve")
    assert await w.workflow.lock_reason(w.dpia_id) is not None
    assert await w.workflow.move(w.owner, w.dpia_id, "in_force") is DpiaStatus.IN_FORCE
    successor = await w.dpias.clone(
        w.owner, w.dpia_id, "Rough sleeping outreach v2", w.owner.organisation_ids[0]
    )
    assert await w.workflow.lock_reason(successor) is None


async def test_accepted_residual_high_risk_blocks_in_force_until_prior_consultation(
    world: World,
) -> None:
    w = world
    await approve(w, high_risk=True)
    with pytest.raises(InvalidInput, match="prior consultation"):
        await w.workflow.move(w.owner, w.dpia_id, "in_force")
    with pytest.raises(InvalidInput, match="reference"):
        await w.signoffs.sign(w.dpo, w.dpia_id, kind="prior_consultation", decision="consulted")
    await w.signoffs.sign(
        w.dpo,
        w.dpia_id,
        kind="prior_consultation",
        decision="consulted",
        reasons="ICO reference RFA0123456, 20 November 2026: proceed with the measures",
    )
    assert await w.workflow.move(w.owner, w.dpia_id, "in_force") is DpiaStatus.IN_FORCE


async def test_transitions_check_the_role_and_rejection_needs_reasons(world: World) -> None:
    w = world
    with pytest.raises(AccessDenied):
        await w.workflow.move(w.dpo, w.dpia_id, "in_review")
    with pytest.raises(InvalidInput, match="cannot become"):
        await w.workflow.move(w.owner, w.dpia_id, "approved")
    with pytest.raises(InvalidInput, match="reasons"):
        await w.workflow.move(w.owner, w.dpia_id, "abandoned")
    await w.workflow.move(w.owner, w.dpia_id, "abandoned", "Project cancelled")
    entries = await w.audit.entries(w.dpia_id)
    assert [e.record.kind for e in entries][-1] == "status"
    assert entries[-1].data["reasons"] == "Project cancelled"
    assert await w.audit.verify(w.dpia_id) is None


async def test_an_approved_new_version_supersedes_the_one_it_was_cloned_from(
    world: World,
) -> None:
    w = world
    await approve(w, high_risk=False)
    await w.workflow.move(w.owner, w.dpia_id, "in_force")
    original = w.dpia_id
    w.dpia_id = await w.dpias.clone(
        w.owner, original, "Rough sleeping outreach v2", w.owner.organisation_ids[0]
    )
    assert (await w.dpias.access(w.owner, original)).status is DpiaStatus.IN_FORCE
    # A new version takes the project's people in their roles (decision 98).
    people = {p.email: p.role for p in await w.dpias.participants(w.owner, w.dpia_id)}
    assert people[w.dpo.email] is Role.DPO and people[w.editor.email] is Role.EDITOR
    await approve(w, high_risk=False)
    assert (await w.dpias.access(w.owner, original)).status is DpiaStatus.SUPERSEDED
    assert await w.audit.verify(original) is None


async def test_the_dashboard_counts_reviewed_sections_and_filters_by_ig_step(
    world: World,
) -> None:
    w = world
    [summary] = await w.dpias.list_for(w.owner)
    assert (summary.sections_reviewed, summary.ig_step.value) == (0, "co_create_dpia")
    await review_everything(w)
    await w.workflow.set_ig_step(w.owner, w.dpia_id, "complete_isa")
    with pytest.raises(AccessDenied):
        await w.workflow.set_ig_step(w.editor, w.dpia_id, "implement")
    [summary] = await w.dpias.list_for(w.owner, ig_step="complete_isa")
    assert summary.sections_reviewed == 7 and summary.ig_step.label == "5. Complete ISA"
    assert await w.dpias.list_for(w.owner, ig_step="implement") == []
    with pytest.raises(InvalidInput):
        await w.dpias.list_for(w.owner, ig_step="nonsense")


async def test_a_risk_signed_as_an_item_goes_stale_when_that_row_or_processing_changes(
    world: World,
) -> None:
    from pycrdt import Array, Map

    from tests.support.review import edit as append

    w = world
    await append(w, risk("R1", "2", "2"))
    await append(w, risk("R2", "1", "1"))
    with pytest.raises(InvalidInput, match="has no row"):
        await w.signoffs.sign(
            w.owner, w.dpia_id, kind="item", target="risks.register:R9", decision="approve"
        )
    with pytest.raises(InvalidInput, match="names a row"):
        await w.signoffs.sign(w.owner, w.dpia_id, kind="item", target="risks", decision="approve")
    r1 = await w.signoffs.sign(
        w.owner, w.dpia_id, kind="item", target="risks.register:R1", decision="approve"
    )
    r2 = await w.signoffs.sign(
        w.owner, w.dpia_id, kind="item", target="risks.register:R2", decision="approve"
    )

    def rename_r2(doc: Any) -> None:
        for row in doc.get("table:risks.register", type=Array):
            if isinstance(row, Map) and row.get("ref") == "R2":
                row["title"] = "Re-identification"

    await append(w, rename_r2)
    await changed(w)
    states = {s.id: s.state for s in await w.signoffs.of_dpia(w.dpia_id)}
    assert states == {r1: SignOffState.VALID, r2: SignOffState.STALE}
    await append(w, text("processing.nature", "New source of data"))
    await changed(w)
    states = {s.id: s.state for s in await w.signoffs.of_dpia(w.dpia_id)}
    assert states == {r1: SignOffState.STALE, r2: SignOffState.STALE}
    overview = await w.workflow.overview(w.owner, w.dpia_id)
    assert ("risks.register:R1", "R1: Risk R1") in overview.items
