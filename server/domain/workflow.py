"""The rules of review and sign-off (dpia-model.md), as pure functions.

Section states: empty → in progress → submitted → changes requested | reviewed → signed off
→ stale. "Empty" and "in progress" are read from the content; the others are recorded with
the hash of what was reviewed or signed, so a later edit reads as stale at once.

DPIA states move only along ``TRANSITIONS``, each allowed to some roles, some needing
reasons; the gates that look at sign-offs and content live in ``services.workflow``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from server.domain import wording
from server.domain.access import Role
from server.domain.content import WHOLE, Content, check_target
from server.domain.dpias import DpiaStatus as S
from server.domain.dpias import locked_message
from server.domain.errors import AccessDenied, DpiaLocked, InvalidInput
from server.domain.risk import residual_high_risks_of
from server.domain.templates import Template
from server.domain.verdicts import ALLOWED, Verdict, refused
from server.domain.wording import section_title


class SectionState(enum.StrEnum):
    EMPTY = "empty"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    REVIEWED = "reviewed"
    SIGNED_OFF = "signed_off"
    STALE = "stale"

    @property
    def label(self) -> str:
        return wording.SECTION_STATES[self.value]


class SectionAction(enum.StrEnum):
    SUBMIT = "submit"
    REQUEST_CHANGES = "request_changes"
    REVIEW = "review"
    REOPEN = "reopen"

    @property
    def label(self) -> str:
        return wording.SECTION_ACTIONS[self.value]


# action → (states it starts from, state it leads to, who may, reasons required)
SECTION_ACTIONS: dict[
    SectionAction, tuple[frozenset[SectionState], SectionState, frozenset[Role], bool]
] = {
    SectionAction.SUBMIT: (
        frozenset({SectionState.IN_PROGRESS, SectionState.CHANGES_REQUESTED, SectionState.STALE}),
        SectionState.SUBMITTED,
        frozenset({Role.OWNER, Role.EDITOR}),
        False,
    ),
    SectionAction.REQUEST_CHANGES: (
        frozenset({SectionState.SUBMITTED, SectionState.REVIEWED, SectionState.STALE}),
        SectionState.CHANGES_REQUESTED,
        frozenset({Role.OWNER, Role.DPO}),
        True,
    ),
    SectionAction.REVIEW: (
        frozenset({SectionState.SUBMITTED, SectionState.STALE}),
        SectionState.REVIEWED,
        frozenset({Role.OWNER, Role.DPO}),
        False,
    ),
    SectionAction.REOPEN: (
        frozenset({SectionState.SUBMITTED, SectionState.REVIEWED, SectionState.CHANGES_REQUESTED}),
        SectionState.IN_PROGRESS,
        frozenset({Role.OWNER, Role.EDITOR}),
        False,
    ),
}

# Sections that must be reviewed before DPO advice (rule 3): the assessment itself.
REVIEWED_BEFORE_ADVICE = (
    "screening",
    "need",
    "processing",
    "consultation",
    "necessity",
    "risks",
    "measures",
)


def awaiting_review(states: Mapping[str, SectionState]) -> list[str]:
    """The sections of the assessment not yet reviewed (or signed off): DPO advice waits
    for them (rule 3)."""
    return [
        s
        for s in REVIEWED_BEFORE_ADVICE
        if s in states and states[s] not in (SectionState.REVIEWED, SectionState.SIGNED_OFF)
    ]


def effective_section_state(
    recorded: SectionState | None, recorded_hash: str, current_hash: str, empty: bool
) -> SectionState:
    """What a section's state is now, given what was recorded and the content today."""
    if recorded in (SectionState.REVIEWED, SectionState.SIGNED_OFF, SectionState.SUBMITTED):
        if recorded_hash != current_hash:
            return (
                SectionState.STALE
                if recorded is not SectionState.SUBMITTED
                else (SectionState.IN_PROGRESS)
            )
        return recorded
    if recorded is SectionState.CHANGES_REQUESTED:
        return recorded
    return SectionState.EMPTY if empty else SectionState.IN_PROGRESS


def section_action(action: str, state: SectionState, role: Role, reasons: str) -> SectionState:
    """The state ``action`` leads to, or InvalidInput / AccessDenied saying why not."""
    try:
        chosen = SectionAction(action)
    except ValueError:
        raise InvalidInput(
            f"There is no section step {action[:30]!r}: choose "
            + ", ".join(a.value for a in SectionAction)
        ) from None
    starts, leads_to, roles, needs_reasons = SECTION_ACTIONS[chosen]
    if role not in roles:
        raise AccessDenied(
            wording.role_refused(
                role.value, f"take the step “{chosen.label}” on a section", (r.value for r in roles)
            )
        )
    if state not in starts:
        raise InvalidInput(
            f"A section that is {state.label.lower()} cannot take the step “{chosen.label}”"
        )
    if needs_reasons and not reasons.strip():
        raise InvalidInput("Say why: sending a section back needs reasons")
    return leads_to


def section_step_policy(
    action: str,
    section: str,
    states: Mapping[str, SectionState],
    role: Role,
    status: S,
    reasons: str,
) -> SectionState:
    """The state a section step leads to on a DPIA that is ``status``, given every section's
    state now (``states``), or why not: a locked DPIA takes no steps."""
    if status.is_locked:
        raise DpiaLocked(locked_message(status))
    if section not in states:
        raise InvalidInput(f"This DPIA has no section {section[:40]!r}")
    return section_action(action, states[section], role, reasons)


# -- the DPIA's workflow ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    source: frozenset[S]
    target: S
    roles: frozenset[Role]
    needs_reasons: bool = False
    name: str = ""

    @property
    def label(self) -> str:
        """The button's words: the transition's name as a sentence ("Send for review")."""
        return wording.sentence(self.name)


_OWNER = frozenset({Role.OWNER})
_AUTHORS = frozenset({Role.OWNER, Role.EDITOR})
_DPO = frozenset({Role.DPO})
_OPEN = frozenset(
    {S.DRAFT, S.IN_REVIEW, S.DPO_REVIEW, S.AWAITING_APPROVAL, S.IN_FORCE, S.UNDER_REVIEW}
)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(frozenset({S.DRAFT}), S.IN_REVIEW, _AUTHORS, name="send for review"),
    Transition(frozenset({S.IN_REVIEW}), S.DRAFT, _AUTHORS | _DPO, True, "send back to draft"),
    Transition(frozenset({S.IN_REVIEW}), S.DPO_REVIEW, _OWNER, name="ask for DPO advice"),
    Transition(frozenset({S.DPO_REVIEW}), S.IN_REVIEW, _DPO | _OWNER, True, "send back"),
    Transition(frozenset({S.DPO_REVIEW}), S.AWAITING_APPROVAL, _DPO | _OWNER, name="advice given"),
    Transition(frozenset({S.AWAITING_APPROVAL}), S.DPO_REVIEW, _OWNER, True, "send back"),
    Transition(frozenset({S.AWAITING_APPROVAL}), S.APPROVED, _OWNER, name="approve"),
    Transition(
        frozenset({S.AWAITING_APPROVAL}),
        S.APPROVED_WITH_CONDITIONS,
        _OWNER,
        True,
        "approve with conditions",
    ),
    Transition(frozenset({S.AWAITING_APPROVAL}), S.REJECTED, _OWNER, True, "reject"),
    Transition(
        frozenset({S.APPROVED, S.APPROVED_WITH_CONDITIONS, S.UNDER_REVIEW}),
        S.IN_FORCE,
        _OWNER,
        name="put in force",
    ),
    # Into "under review" only by starting a review (``domain.reviews``), which opens the
    # new version at the same time: never as a bare status change.
    Transition(frozenset({S.IN_FORCE, S.UNDER_REVIEW}), S.ARCHIVED, _OWNER, True, "archive"),
    Transition(_OPEN, S.ABANDONED, _OWNER, True, "abandon"),
)


def transition(current: S, target: str, role: Role, reasons: str) -> Transition:
    """The transition from ``current`` to ``target`` a ``role`` may make, or why not.

    "Superseded" is not here: it happens when a successor version is approved.
    """
    try:
        wanted = S(target)
    except ValueError:
        raise InvalidInput(f"There is no DPIA status {target[:30]!r}") from None
    candidates = [t for t in TRANSITIONS if t.target is wanted and current in t.source]
    if wanted is S.UNDER_REVIEW:
        raise InvalidInput(
            "A review starts with “Start review” on the document's review page: it opens a "
            "new version and keeps this one in force"
        )
    if not candidates:
        raise InvalidInput(
            f"A DPIA that is {current.label.lower()} cannot become {wanted.label.lower()}"
        )
    allowed = [t for t in candidates if role in t.roles]
    if not allowed:
        raise AccessDenied(
            wording.role_refused(
                role.value,
                f"move this DPIA to {wanted.label.lower()}",
                {r.value for t in candidates for r in t.roles},
            )
        )
    chosen = allowed[0]
    if chosen.needs_reasons and not reasons.strip():
        raise InvalidInput(f"Say why: to {chosen.name} needs reasons (they stay visible)")
    return chosen


def next_steps(current: S, role: Role) -> list[Transition]:
    return [t for t in TRANSITIONS if current in t.source and role in t.roles]


# -- sign-off kinds and decisions -----------------------------------------------------------


class SignOffKind(enum.StrEnum):
    """The ICO step-7 rows, a section's sign-off, and a party's approval."""

    SECTION = "section"
    ITEM = "item"
    MEASURES_APPROVED = "measures_approved"
    RESIDUAL_RISKS_APPROVED = "residual_risks_approved"
    DPO_ADVICE = "dpo_advice"
    DPO_ADVICE_DECISION = "dpo_advice_decision"
    CONSULTATION_REVIEWED = "consultation_reviewed"
    KEPT_UNDER_REVIEW = "kept_under_review"
    PARTY_APPROVAL = "party_approval"
    PRIOR_CONSULTATION = "prior_consultation"
    ENDORSEMENT = "endorsement"

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def fixed_target(self) -> str | None:
        return _KIND_TARGETS.get(self)


_KIND_LABELS = {
    SignOffKind.SECTION: "Section signed off",
    SignOffKind.ITEM: "Risk or measure signed off",
    SignOffKind.MEASURES_APPROVED: "Measures approved by",
    SignOffKind.RESIDUAL_RISKS_APPROVED: "Residual risks approved by",
    SignOffKind.DPO_ADVICE: "DPO advice provided",
    SignOffKind.DPO_ADVICE_DECISION: "DPO advice accepted or overruled by",
    SignOffKind.CONSULTATION_REVIEWED: "Consultation responses reviewed by",
    SignOffKind.KEPT_UNDER_REVIEW: "This DPIA will be kept under review by",
    SignOffKind.PARTY_APPROVAL: "Approved for the party by",
    SignOffKind.PRIOR_CONSULTATION: "Prior consultation with the ICO recorded by",
    SignOffKind.ENDORSEMENT: "Endorsement by the reviewing body",
}
_KIND_TARGETS = {
    SignOffKind.MEASURES_APPROVED: "measures",
    SignOffKind.RESIDUAL_RISKS_APPROVED: "risks",
    SignOffKind.DPO_ADVICE: "dpo_advice",
    SignOffKind.DPO_ADVICE_DECISION: "dpo_advice",
    SignOffKind.CONSULTATION_REVIEWED: "consultation",
    SignOffKind.KEPT_UNDER_REVIEW: "review",
    SignOffKind.PARTY_APPROVAL: "dpia",
    SignOffKind.PRIOR_CONSULTATION: "outcome",
    SignOffKind.ENDORSEMENT: "dpia",
}
# Records about the world, not changes to content: allowed while the DPIA is approved.
AFTER_APPROVAL = frozenset({SignOffKind.PRIOR_CONSULTATION})
STEP7_KINDS = [
    k
    for k in SignOffKind
    if k not in (SignOffKind.SECTION, SignOffKind.ITEM, SignOffKind.ENDORSEMENT)
]


class Decision(enum.StrEnum):
    APPROVE = "approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions"
    REJECT = "reject"
    ADVISE = "advise"
    ACCEPT = "accept"
    OVERRULE = "overrule"
    CONSULTED = "consulted"
    ENDORSE = "endorse"
    WITHHOLD = "withhold"

    @property
    def label(self) -> str:
        return wording.DECISIONS[self.value]

    @property
    def made(self) -> str:
        """The decision as a record says it once made ("Approved")."""
        return wording.DECISIONS_MADE[self.value]


class SignOffState(enum.StrEnum):
    VALID = "valid"
    STALE = "stale"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"

    @property
    def label(self) -> str:
        return wording.SIGNOFF_STATES[self.value]


_DECISIONS = {
    SignOffKind.DPO_ADVICE: {Decision.ADVISE},
    SignOffKind.DPO_ADVICE_DECISION: {Decision.ACCEPT, Decision.OVERRULE},
    SignOffKind.PRIOR_CONSULTATION: {Decision.CONSULTED},
    SignOffKind.ENDORSEMENT: {Decision.ENDORSE, Decision.WITHHOLD},
}
_APPROVALS = {Decision.APPROVE, Decision.APPROVE_WITH_CONDITIONS, Decision.REJECT}
# Who signs: the DPIA's owners and DPOs (``check_signoff``; pages offer the form to them).
SIGNERS = frozenset({Role.OWNER, Role.DPO})


def check_signoff(
    kind: SignOffKind,
    decision: str,
    role: Role,
    *,
    conditions: str,
    reasons: str,
    is_author: bool,
    accepts_high_risk: bool,
) -> Decision:
    """The decision of a sign-off if the rules allow it; InvalidInput or AccessDenied."""
    try:
        chosen = Decision(decision)
    except ValueError:
        raise InvalidInput(f"There is no decision {decision[:30]!r}") from None
    if chosen not in _DECISIONS.get(kind, _APPROVALS):
        allowed = " or ".join(sorted(d.label.lower() for d in _DECISIONS.get(kind, _APPROVALS)))
        raise InvalidInput(f"The decision on “{kind.label}” is {allowed}")
    if kind is SignOffKind.DPO_ADVICE:
        if role is not Role.DPO:
            raise AccessDenied("Only a DPO of this DPIA can give DPO advice")
        if is_author:
            raise AccessDenied(
                "Separation of duties: the author of a DPIA cannot sign it off as its DPO"
            )
    elif role not in SIGNERS:
        raise AccessDenied("Only owners and DPOs of this DPIA can sign off")
    if role is Role.DPO and is_author:
        raise AccessDenied(
            "Separation of duties: the author of a DPIA cannot sign it off as its DPO"
        )
    if chosen is Decision.CONSULTED and not reasons.strip():
        raise InvalidInput("Record the ICO's reference and response in the reasons")
    if chosen is Decision.OVERRULE and not reasons.strip():
        raise InvalidInput("Overruling DPO advice needs reasons, shown in every export")
    if chosen is Decision.REJECT and not reasons.strip():
        raise InvalidInput("A rejection needs reasons")
    if chosen is Decision.APPROVE_WITH_CONDITIONS and not conditions.strip():
        raise InvalidInput("Approving with conditions needs the conditions")
    if (
        kind is SignOffKind.RESIDUAL_RISKS_APPROVED
        and accepts_high_risk
        and chosen is not Decision.REJECT
        and not reasons.strip()
    ):
        raise InvalidInput("Accepting a residual high risk needs reasons")
    return chosen


@dataclass(frozen=True, slots=True)
class Signing:
    """What a sign-off records, once the rules allow it."""

    kind: SignOffKind
    target: str
    decision: Decision


def signable(kind: SignOffKind, status: S) -> bool:
    """Whether a DPIA that is ``status`` takes a sign-off of ``kind``: an open one any, an
    approved one only a record about the world (``AFTER_APPROVAL``), a closed one none."""
    return not status.is_locked or (
        kind in AFTER_APPROVAL and status in (S.APPROVED, S.APPROVED_WITH_CONDITIONS)
    )


def signing_policy(
    kind: str,
    decision: str,
    target: str,
    *,
    role: Role,
    status: S,
    template: Template,
    content: Content,
    states: Mapping[str, SectionState],
    conditions: str,
    reasons: str,
    is_author: bool,
    party: str,
) -> Signing:
    """Whether a signer of ``role`` may sign this, on a DPIA that is ``status``, with these
    contents and section ``states``; what it records, or InvalidInput / AccessDenied /
    DpiaLocked saying why not. ``party`` is the DPIA party the signer's organisation is
    ("" if none)."""
    try:
        signoff_kind = SignOffKind(kind)
    except ValueError:
        raise InvalidInput(f"There is no kind of sign-off {kind[:30]!r}") from None
    if not signable(signoff_kind, status):
        raise DpiaLocked(
            f"This DPIA is {status.label.lower()}: it cannot be signed again; start a new version"
        )
    if signoff_kind is SignOffKind.ENDORSEMENT:
        # Given only by a reviewing body's member, on the project's sign-off page
        # (``domain.parties.endorsement_policy``), never as a DPIA's own sign-off.
        raise AccessDenied(wording.NOT_A_REVIEWER)
    fixed = signoff_kind.fixed_target
    if fixed is not None:
        # A kind bound to a section the template lacks (a surveillance DPIA has no
        # "dpo_advice" section) binds the whole document instead.
        target = fixed if fixed == WHOLE or fixed in template.section_ids() else WHOLE
    check_target(template, content, target)  # refuses unknown targets
    if signoff_kind is SignOffKind.SECTION and states.get(target) not in (
        SectionState.REVIEWED,
        SectionState.SIGNED_OFF,
        SectionState.STALE,
    ):
        if target not in states:
            raise InvalidInput("Sign a risk or a measure as an item, not as a section")
        raise InvalidInput(
            "A section is signed off once reviewed; "
            f"“{section_title(template.sections, target)}” is {states[target].label.lower()}"
        )
    if signoff_kind is SignOffKind.ITEM and ":" not in target:
        raise InvalidInput("An item sign-off names a row: risks.register:R1, measures.plan:M1")
    if signoff_kind is SignOffKind.DPO_ADVICE:
        waiting = awaiting_review(states)
        if waiting:
            raise InvalidInput(
                "DPO advice can be given once every section is reviewed; not yet: "
                + ", ".join(section_title(template.sections, s) for s in waiting)
            )
    high = residual_high_risks_of(template.content, content)
    chosen = check_signoff(
        signoff_kind,
        decision,
        role,
        conditions=conditions,
        reasons=reasons,
        is_author=is_author,
        accepts_high_risk=bool(high),
    )
    if signoff_kind is SignOffKind.PARTY_APPROVAL and not party:
        raise AccessDenied("Only a signer of an organisation that is a party can approve")
    return Signing(signoff_kind, target, chosen)


def signer_policy(signer_user_id: int, user_id: int, state: SignOffState) -> Verdict:
    """Re-confirming or revoking a sign-off: its signer, while it stands (valid or stale)."""
    if signer_user_id != user_id:
        return refused(AccessDenied("Only the signer can re-confirm or revoke their sign-off"))
    if state in (SignOffState.REVOKED, SignOffState.SUPERSEDED):
        return refused(InvalidInput(f"This sign-off is {state.label.lower()} already"))
    return ALLOWED


class IgStep(enum.StrEnum):
    """Where the project stands in the LOTI/IGfL 7-step information-governance process."""

    GENERATE_IDEAS = "generate_ideas"
    REVIEW_CONCEPT = "review_concept"
    ASSESS_FEASIBILITY = "assess_feasibility"
    CO_CREATE_DPIA = "co_create_dpia"
    COMPLETE_ISA = "complete_isa"
    IMPLEMENT = "implement"
    EVALUATE_AND_LEARN = "evaluate_and_learn"

    @property
    def number(self) -> int:
        return list(IgStep).index(self) + 1

    @property
    def label(self) -> str:
        return f"{self.number}. {_IG_LABELS[self]}"

    @property
    def short_label(self) -> str:
        """The step's name without its number ("Co-create DPIA")."""
        return _IG_LABELS[self]

    @property
    def involved(self) -> str:
        return _IG_INVOLVED[self]


_IG_LABELS = {
    IgStep.GENERATE_IDEAS: "Generate ideas",
    IgStep.REVIEW_CONCEPT: "Review concept",
    IgStep.ASSESS_FEASIBILITY: "Assess feasibility",
    IgStep.CO_CREATE_DPIA: "Co-create DPIA",
    IgStep.COMPLETE_ISA: "Complete ISA",
    IgStep.IMPLEMENT: "Implement",
    IgStep.EVALUATE_AND_LEARN: "Evaluate and learn",
}
_IG_INVOLVED = {
    IgStep.GENERATE_IDEAS: "Service leads and the people the project is for; the IG team "
    "hears early so that data questions shape the idea.",
    IgStep.REVIEW_CONCEPT: "IG lead and data protection officer with the project sponsor: "
    "is a DPIA needed (screening), which organisations take part.",
    IgStep.ASSESS_FEASIBILITY: "Project team, IG lead, information security and legal: the "
    "lawful basis, the data needed for the outcome, and the technical route.",
    IgStep.CO_CREATE_DPIA: "Every party's project and IG leads write the DPIA together; "
    "each party's DPO advises.",
    IgStep.COMPLETE_ISA: "IG leads and signatories of every party agree the information "
    "sharing agreement that the DPIA supports.",
    IgStep.IMPLEMENT: "Project and service teams put the measures in place; risk owners "
    "track the action plan.",
    IgStep.EVALUATE_AND_LEARN: "Project sponsor, IG lead and DPO review the outcome and "
    "keep the DPIA under review.",
}


def ig_step_policy(role: Role, raw: str) -> IgStep:
    """The IG-process step an owner says the project is at, or why not."""
    if not role.can_manage:
        raise AccessDenied("Only the DPIA's owners can say where the project stands")
    return check_ig_step(raw)


def check_ig_step(raw: str) -> IgStep:
    try:
        return IgStep(raw)
    except ValueError:
        raise InvalidInput(
            f"There is no IG process step {raw[:30]!r}: choose "
            + ", ".join(s.value for s in IgStep)
        ) from None
