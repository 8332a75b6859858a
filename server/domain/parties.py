"""Sign-off by every party, reviewing bodies' endorsement, and adoption (issue 16), as pure
rules.

A project's agreement (its DPIA, its ISA) is approved only when every controller and joint
controller party has signed in each capacity the document's template requires
(``"signatories"``: party role → capacities; ``"health"`` capacities are required of
controllers too when the ISA's ``data.health_data`` is true). A signature is a sign-off
for ONE party organisation in ONE capacity, and both are read from the signer's
membership (``memberships.signatory_roles``), never taken from a form on trust:
``choose_signing`` checks what a form asks for against what the person holds.

Errors raised here are the domain's (``InvalidInput``, ``AccessDenied``); messages come
from ``wording``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.domain import wording
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.workflow import Decision


class Capacity(enum.StrEnum):
    """The role a member signs for their organisation in."""

    DPO = "dpo"
    SIRO = "siro"
    CALDICOTT_GUARDIAN = "caldicott_guardian"

    @property
    def label(self) -> str:
        return wording.CAPACITIES[self.value]


# What an endorsement's sign-off records as its capacity (not a membership's role).
REVIEWER = "reviewer"
REVIEWING_BODY = "reviewing_body"
# The party roles whose signatures make an agreement approved.
SIGNING_ROLES = ("controller", "joint_controller")


def parse_capacities(raw: str) -> frozenset[Capacity]:
    """The capacities a stored ``signatory_roles`` value names (unknown words ignored: a
    newer installation's role is not a crash)."""
    known = {c.value for c in Capacity}
    return frozenset(Capacity(p.strip()) for p in raw.split(",") if p.strip() in known)


def check_capacities(raw: Iterable[str]) -> frozenset[Capacity]:
    """The capacities an administrator chose, or InvalidInput naming the unknown one."""
    chosen = set()
    for value in raw:
        try:
            chosen.add(Capacity(value.strip()))
        except ValueError:
            raise InvalidInput(
                f"There is no signatory role {value[:30]!r}: choose "
                + ", ".join(c.label for c in Capacity)
            ) from None
    return frozenset(chosen)


def format_capacities(capacities: Iterable[Capacity]) -> str:
    """The stored form, in a fixed order so before/after compare as text."""
    chosen = set(capacities)
    return ",".join(c.value for c in Capacity if c in chosen)


def required_capacities(
    template: Mapping[str, Any], party_role: str, *, health_data: bool
) -> tuple[Capacity, ...]:
    """The capacities a party of ``party_role`` must sign in, from the template's
    ``signatories``; only controllers and joint controllers sign."""
    if party_role not in SIGNING_ROLES:
        return ()
    table = template.get("signatories") or {}
    names = list(table.get(party_role) or [])
    if health_data:
        names += [n for n in table.get("health") or [] if n not in names]
    return tuple(Capacity(n) for n in names if n in {c.value for c in Capacity})


def health_data_of(content: Mapping[str, Any]) -> bool:
    """Whether the document says health data is involved (the ISA's ``data.health_data``)."""
    data = content.get("data")
    return isinstance(data, Mapping) and data.get("health_data") is True


# -- who signs for which party --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """A project party as the rules see it (``organisation_id`` None: not on this
    deployment, it signs outside the tool)."""

    id: int
    organisation_id: int | None
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class SigningChoice:
    party: Party
    capacity: Capacity


def signing_options(
    parties: Sequence[Party], held: Mapping[int, frozenset[Capacity]]
) -> list[SigningChoice]:
    """Every (party, capacity) a person may sign for: parties that are their organisations
    (``held``: organisation id → the capacities they hold there), not a reviewing body."""
    return [
        SigningChoice(party, capacity)
        for party in parties
        if party.organisation_id is not None
        and party.role != REVIEWING_BODY
        and party.organisation_id in held
        for capacity in sorted(held[party.organisation_id], key=list(Capacity).index)
    ]


def choose_signing(
    parties: Sequence[Party],
    held: Mapping[int, frozenset[Capacity]],
    *,
    organisation_id: int | None,
    capacity: str,
) -> SigningChoice:
    """The one party and capacity a signature is for. ``organisation_id`` and ``capacity``
    are what a form asked (either may be missing when there is one choice); each is checked
    against the person's memberships and roles: a party they are not a member of, or a role
    they do not hold there, is refused saying so."""
    signing = [p for p in parties if p.organisation_id is not None and p.role != REVIEWING_BODY]
    if organisation_id is not None:
        party = next((p for p in signing if p.organisation_id == organisation_id), None)
        if party is None:
            raise InvalidInput("That organisation is not a party that signs this project")
        if organisation_id not in held:
            raise AccessDenied(wording.not_your_party(party.name))
        candidates = [SigningChoice(party, c) for c in held[organisation_id]]
    else:
        candidates = signing_options(signing, held)
        if not any(p.organisation_id in held for p in signing):
            raise AccessDenied(wording.NOT_A_PARTY)
    if capacity:
        wanted = next((c for c in Capacity if c.value == capacity), None)
        if wanted is None:
            raise InvalidInput(
                f"There is no signatory role {capacity[:30]!r}: choose "
                + ", ".join(c.label for c in Capacity)
            )
        matching = [c for c in candidates if c.capacity is wanted]
        if not matching:
            mine = [p for p in signing if p.organisation_id in held]
            named = [p for p in mine if p.organisation_id == organisation_id] or mine
            where = named[0].name if len(named) == 1 else "any party to this project"
            raise AccessDenied(wording.capacity_refused(wanted.value, where))
        candidates = matching
    if not candidates:
        raise AccessDenied(wording.NOT_A_SIGNATORY)
    if len(candidates) > 1:
        raise InvalidInput(wording.CHOOSE_PARTY)
    return candidates[0]


def party_decision(decision: str) -> Decision:
    """A party signs approve or reject (reasons checked by ``check_signoff``)."""
    if decision not in (Decision.APPROVE.value, Decision.REJECT.value):
        raise InvalidInput("A party's signature approves or rejects the agreement")
    return Decision(decision)


def endorsement_decision(decision: str, reasons: str) -> Decision:
    """A reviewing body endorses, or withholds with reasons."""
    if decision not in (Decision.ENDORSE.value, Decision.WITHHOLD.value):
        raise InvalidInput("An endorsement is given or withheld: choose endorse or withhold")
    chosen = Decision(decision)
    if chosen is Decision.WITHHOLD and not reasons.strip():
        raise InvalidInput(wording.WITHHOLD_NEEDS_REASONS)
    return chosen


def reviewing_member(
    parties: Sequence[Party], reviewing_bodies: Iterable[int], memberships: Iterable[int]
) -> Party:
    """The reviewing body party a person endorses for: an organisation marked a reviewing
    body, invited to the project as one, and theirs."""
    bodies, mine = set(reviewing_bodies), set(memberships)
    for party in parties:
        if (
            party.role == REVIEWING_BODY
            and party.organisation_id in bodies
            and party.organisation_id in mine
        ):
            return party
    raise AccessDenied(wording.NOT_A_REVIEWER)


# -- the status of every party's signatures --------------------------------------------------


class SignatureState(enum.StrEnum):
    SIGNED = "signed"
    STALE = "stale"
    OUTSTANDING = "outstanding"

    @property
    def label(self) -> str:
        return wording.PARTY_SIGNATURE_STATES[self.value]


@dataclass(frozen=True, slots=True)
class Signature:
    """A recorded party signature, with whether it still binds the content (``valid``:
    not stale, revoked or superseded)."""

    id: int
    party_organisation_id: int
    capacity: str
    signer_name: str
    decision: str
    signed_at: datetime
    valid: bool
    stale: bool


@dataclass(frozen=True, slots=True)
class RequiredSignature:
    party: Party
    capacity: Capacity
    state: SignatureState
    signature: Signature | None  # the signature counted (signed) or the last stale one

    @property
    def signed_by(self) -> str:
        return self.signature.signer_name if self.signature else ""

    @property
    def signed_at(self) -> datetime | None:
        return self.signature.signed_at if self.signature else None


def signature_status(
    parties: Sequence[Party],
    template: Mapping[str, Any],
    signatures: Sequence[Signature],
    *,
    health_data: bool,
) -> list[RequiredSignature]:
    """For each party and required capacity: signed (by a valid approving signature for THAT
    party's organisation in THAT capacity), stale (the last one went stale) or outstanding.
    A rejection never counts as signed. A party not on this deployment has no organisation
    to sign through and stays outstanding (it signs outside the tool)."""
    result = []
    for party in parties:
        for capacity in required_capacities(template, party.role, health_data=health_data):
            mine = [
                s
                for s in signatures
                if party.organisation_id is not None
                and s.party_organisation_id == party.organisation_id
                and s.capacity == capacity.value
            ]
            valid = [s for s in mine if s.valid and s.decision == Decision.APPROVE.value]
            stale = [s for s in mine if s.stale]
            if valid:
                result.append(RequiredSignature(party, capacity, SignatureState.SIGNED, valid[-1]))
            elif stale:
                result.append(RequiredSignature(party, capacity, SignatureState.STALE, stale[-1]))
            else:
                result.append(RequiredSignature(party, capacity, SignatureState.OUTSTANDING, None))
    return result


def all_signed(required: Sequence[RequiredSignature]) -> bool:
    """Approved: at least one signature is required and every one is signed."""
    return bool(required) and all(r.state is SignatureState.SIGNED for r in required)


def reminder_due(last: datetime | None, now: datetime) -> bool:
    """A person is reminded of a document at most once a day."""
    return last is None or (now - last).total_seconds() >= 24 * 3600
