"""The policy of each action, as pure functions: who may, in which state, or why not."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc

from server.domain.access import Role
from server.domain.comments import (
    CommentFacts,
    check_comment,
    check_reply,
    comment_policy,
    require_comment,
    resolve_policy,
)
from server.domain.content import WHOLE, document_content, restore_policy
from server.domain.dpias import (
    DpiaStatus,
    inbound_mail_policy,
    locked_message,
    manage_policy,
    owner_kept_policy,
)
from server.domain.errors import (
    AccessDenied,
    CommentNotFound,
    Conflict,
    DocumentNotFound,
    DpiaLocked,
    InvalidInput,
)
from server.domain.templates import load_template
from server.domain.workflow import (
    Decision,
    IgStep,
    SectionState,
    SignOffKind,
    SignOffState,
    awaiting_review,
    ig_step_policy,
    section_step_policy,
    signer_policy,
    signing_policy,
)

TEMPLATE = load_template()
OPEN = [s for s in DpiaStatus if not s.is_locked]
LOCKED = [s for s in DpiaStatus if s.is_locked]


# -- comments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.EDITOR, Role.COMMENTER, Role.DPO])
@pytest.mark.parametrize("status", [*OPEN, None])
def test_every_role_but_viewer_may_comment_on_an_open_dpia(
    role: Role, status: DpiaStatus | None
) -> None:
    verdict = comment_policy(role, status)
    assert verdict.allowed and verdict.refusal is None
    verdict.require()  # does not raise


def test_a_viewer_is_refused_with_a_message_naming_the_role_and_what_to_do() -> None:
    verdict = comment_policy(Role.VIEWER, DpiaStatus.DRAFT)
    assert not verdict.allowed
    assert isinstance(verdict.refusal, AccessDenied)
    assert str(verdict.refusal) == (
        "You take part in this DPIA as a viewer, who cannot comment; ask an owner for another role"
    )
    with pytest.raises(AccessDenied, match="viewer"):
        verdict.require()


@pytest.mark.parametrize("status", LOCKED)
@pytest.mark.parametrize("role", list(Role))
def test_a_locked_dpia_refuses_every_commenter_with_the_lock_message(
    role: Role, status: DpiaStatus
) -> None:
    verdict = comment_policy(role, status)
    assert isinstance(verdict.refusal, DpiaLocked)
    assert str(verdict.refusal) == locked_message(status)
    assert "new version" in str(verdict.refusal)


def test_a_comment_goes_on_a_section_a_field_of_it_or_the_whole_dpia() -> None:
    assert check_comment(TEMPLATE, "need", None, "  Why?\x07 ") == "Why?"
    assert check_comment(TEMPLATE, "need", "aims", "Which aims?") == "Which aims?"
    assert check_comment(TEMPLATE, WHOLE, None, "About it all") == "About it all"
    with pytest.raises(InvalidInput, match="has no section"):
        check_comment(TEMPLATE, "nowhere", None, "hi")
    with pytest.raises(InvalidInput, match="has no field"):
        check_comment(TEMPLATE, "need", "nothing", "hi")
    with pytest.raises(InvalidInput, match="has no section"):
        check_comment(TEMPLATE, WHOLE, "aims", "a field of the whole DPIA is no field")
    with pytest.raises(InvalidInput, match="needs some text"):
        check_comment(TEMPLATE, "need", None, " \x00 ")
    with pytest.raises(InvalidInput, match="at most"):
        check_comment(TEMPLATE, "need", None, "x" * 5001)


def test_a_reply_is_cleaned_and_kept_to_the_limits_of_a_comment() -> None:
    assert check_reply("  Agreed.\x07 ") == "Agreed."
    with pytest.raises(InvalidInput, match="A reply needs some text"):
        check_reply(" \x00 ")
    with pytest.raises(InvalidInput, match="A reply is at most 5000"):
        check_reply("x" * 5001)


@pytest.mark.parametrize("resolved", [True, False])
@pytest.mark.parametrize("role", [Role.OWNER, Role.EDITOR, Role.DPO])
def test_owners_editors_and_the_dpo_resolve_and_reopen_anyone_s_comment(
    role: Role, resolved: bool
) -> None:
    assert resolve_policy(role, DpiaStatus.DRAFT, is_author=False, resolved=resolved).allowed


@pytest.mark.parametrize("resolved", [True, False])
def test_a_commenter_resolves_and_reopens_only_their_own_comment(resolved: bool) -> None:
    own = resolve_policy(Role.COMMENTER, DpiaStatus.DRAFT, is_author=True, resolved=resolved)
    other = resolve_policy(Role.COMMENTER, DpiaStatus.DRAFT, is_author=False, resolved=resolved)
    assert own.allowed
    assert isinstance(other.refusal, AccessDenied)
    verb = "resolve" if resolved else "reopen"
    assert str(other.refusal) == (
        f"You take part in this DPIA as a commenter, who can {verb} only your own comments; "
        "ask its author, an owner, an editor or the DPO"
    )


@pytest.mark.parametrize("is_author", [True, False])
def test_a_viewer_resolves_nothing_not_even_a_comment_written_before_a_demotion(
    is_author: bool,
) -> None:
    verdict = resolve_policy(Role.VIEWER, DpiaStatus.DRAFT, is_author=is_author, resolved=True)
    assert isinstance(verdict.refusal, AccessDenied)


@pytest.mark.parametrize("status", LOCKED)
@pytest.mark.parametrize("role", list(Role))
def test_a_locked_dpia_refuses_resolving_to_everyone_with_the_lock_message(
    role: Role, status: DpiaStatus
) -> None:
    verdict = resolve_policy(role, status, is_author=True, resolved=True)
    assert isinstance(verdict.refusal, DpiaLocked)
    assert str(verdict.refusal) == locked_message(status)


def test_an_unknown_comment_is_a_not_found_error_naming_the_id() -> None:
    facts = CommentFacts("c-1", "need", 3, (), False)
    assert require_comment(facts, "c-1") is facts
    with pytest.raises(CommentNotFound, match="There is no comment 'c-nope' on this DPIA"):
        require_comment(None, "c-nope")
    assert issubclass(CommentNotFound, DocumentNotFound)  # so every channel maps it to 404


# -- restoring a field ------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_owners_and_editors_restore_and_only_while_open(role: Role) -> None:
    assert restore_policy(role, DpiaStatus.DRAFT).allowed is role.can_write
    refusal = restore_policy(role, DpiaStatus.DRAFT).refusal
    if not role.can_write:
        assert isinstance(refusal, AccessDenied) and "owners and editors" in str(refusal)
    locked = restore_policy(role, DpiaStatus.APPROVED).refusal
    assert isinstance(locked, DpiaLocked) and "approved" in str(locked)


# -- participants -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_owners_manage_participants_and_read_inbound_mail(role: Role) -> None:
    assert manage_policy(role).allowed is (role is Role.OWNER)
    assert inbound_mail_policy(role).allowed is (role is Role.OWNER)
    if role is not Role.OWNER:
        assert isinstance(manage_policy(role).refusal, AccessDenied)
        assert "inbound mail" in str(inbound_mail_policy(role).refusal)


def test_the_last_owner_can_be_neither_demoted_nor_removed() -> None:
    for new_role in (Role.EDITOR, Role.VIEWER, None):
        refusal = owner_kept_policy(Role.OWNER, new_role, 1).refusal
        assert isinstance(refusal, Conflict) and "at least one owner" in str(refusal)
        assert owner_kept_policy(Role.OWNER, new_role, 2).allowed
    assert owner_kept_policy(Role.OWNER, Role.OWNER, 1).allowed
    assert owner_kept_policy(Role.EDITOR, None, 1).allowed


# -- the workflow -----------------------------------------------------------------------------


def _states(**overrides: SectionState) -> dict[str, SectionState]:
    return {s: overrides.get(s, SectionState.IN_PROGRESS) for s in TEMPLATE.section_ids()}


def test_a_section_step_follows_the_role_the_state_and_the_lock() -> None:
    states = _states(need=SectionState.SUBMITTED)
    assert (
        section_step_policy("review", "need", states, Role.DPO, DpiaStatus.DRAFT, "")
        is SectionState.REVIEWED
    )
    with pytest.raises(AccessDenied, match="An editor cannot take the step “Mark as reviewed”"):
        section_step_policy("review", "need", states, Role.EDITOR, DpiaStatus.DRAFT, "")
    with pytest.raises(InvalidInput, match="has no section"):
        section_step_policy("review", "nowhere", states, Role.DPO, DpiaStatus.DRAFT, "")
    with pytest.raises(InvalidInput, match="needs reasons"):
        section_step_policy("request_changes", "need", states, Role.DPO, DpiaStatus.DRAFT, "")
    with pytest.raises(DpiaLocked, match="approved"):
        section_step_policy("review", "need", states, Role.DPO, DpiaStatus.APPROVED, "")


def test_dpo_advice_waits_for_every_section_of_the_assessment_to_be_reviewed() -> None:
    assert awaiting_review(_states(need=SectionState.REVIEWED))[:2] == ["screening", "processing"]
    assessment = ("screening", "need", "processing", "consultation", "necessity", "risks")
    done = {s: SectionState.SIGNED_OFF for s in (*assessment, "measures")}
    assert awaiting_review(_states(**done)) == []
    assert awaiting_review(_states(**{**done, "risks": SectionState.STALE})) == ["risks"]


def test_only_owners_set_the_ig_step_and_only_to_a_step() -> None:
    assert ig_step_policy(Role.OWNER, "implement") is IgStep.IMPLEMENT
    with pytest.raises(AccessDenied, match="owners"):
        ig_step_policy(Role.DPO, "implement")
    with pytest.raises(InvalidInput, match="no IG process step"):
        ig_step_policy(Role.OWNER, "step eight")


def _sign(kind: str, decision: str, target: str = "", **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "role": Role.OWNER,
        "status": DpiaStatus.DRAFT,
        "template": TEMPLATE,
        "content": document_content(Doc(), TEMPLATE),
        "states": _states(),
        "conditions": "",
        "reasons": "",
        "is_author": False,
        "party": "London Borough of Camden",
    }
    return signing_policy(kind, decision, target, **{**arguments, **overrides})


def test_signing_names_what_is_recorded_with_fixed_targets_filled_in() -> None:
    signing = _sign("measures_approved", "approve", "ignored")
    assert (signing.kind, signing.target, signing.decision) == (
        SignOffKind.MEASURES_APPROVED,
        "measures",
        Decision.APPROVE,
    )
    reviewed = _sign("section", "approve", "need", states=_states(need=SectionState.REVIEWED))
    assert reviewed.target == "need"


def test_signing_refuses_what_the_rules_forbid() -> None:
    with pytest.raises(InvalidInput, match="no kind of sign-off"):
        _sign("autograph", "approve")
    with pytest.raises(DpiaLocked, match="cannot be signed again"):
        _sign("party_approval", "approve", status=DpiaStatus.APPROVED)
    with pytest.raises(InvalidInput, match="once reviewed"):
        _sign("section", "approve", "need")
    with pytest.raises(InvalidInput, match="names a row"):
        _sign("item", "approve", "risks")
    with pytest.raises(InvalidInput, match="every section is reviewed"):
        _sign("dpo_advice", "advise", role=Role.DPO)
    with pytest.raises(AccessDenied, match="party"):
        _sign("party_approval", "approve", party="")
    with pytest.raises(AccessDenied, match="owners and DPOs"):
        _sign("measures_approved", "approve", role=Role.EDITOR)


def test_a_prior_consultation_is_recorded_after_approval_but_nothing_else_is() -> None:
    recorded = _sign(
        "prior_consultation", "consulted", reasons="ICO ref 1", status=DpiaStatus.APPROVED
    )
    assert recorded.kind is SignOffKind.PRIOR_CONSULTATION
    with pytest.raises(DpiaLocked):
        _sign("prior_consultation", "consulted", reasons="ICO", status=DpiaStatus.IN_FORCE)


def test_only_the_signer_reconfirms_or_revokes_and_only_a_standing_sign_off() -> None:
    assert signer_policy(7, 7, SignOffState.VALID).allowed
    assert signer_policy(7, 7, SignOffState.STALE).allowed
    other = signer_policy(7, 8, SignOffState.VALID).refusal
    assert isinstance(other, AccessDenied) and "Only the signer" in str(other)
    for state in (SignOffState.REVOKED, SignOffState.SUPERSEDED):
        done = signer_policy(7, 7, state).refusal
        assert isinstance(done, InvalidInput) and f"{state.value} already" in str(done)
