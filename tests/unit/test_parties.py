"""The pure rules of sign-off by every party (domain.parties): who signs for which party in
which capacity, what each party still owes, when an agreement is approved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.errors import AccessDenied, InvalidInput
from server.domain.parties import (
    Capacity,
    Party,
    Signature,
    SignatureState,
    all_signed,
    check_capacities,
    choose_signing,
    endorsement_decision,
    format_capacities,
    health_data_of,
    parse_capacities,
    reminder_due,
    required_capacities,
    reviewing_member,
    signature_status,
)
from server.domain.workflow import Decision

ISA = {
    "signatories": {
        "controller": ["dpo", "siro"],
        "joint_controller": ["dpo", "siro"],
        "health": ["caldicott_guardian"],
    }
}
DPIA = {"signatories": {"controller": ["dpo"], "joint_controller": ["dpo"]}}
CAMDEN = Party(1, 10, "Camden", "controller")
ISLINGTON = Party(2, 20, "Islington", "joint_controller")
PROCESSOR = Party(3, 30, "Data Ltd", "processor")
IGFL = Party(4, 40, "IGfL", "reviewing_body")
OUTSIDE = Party(5, None, "Hackney (by email)", "joint_controller")
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def signature(
    organisation: int,
    capacity: str,
    *,
    valid: bool = True,
    stale: bool = False,
    decision: str = "approve",
    name: str = "Signer",
) -> Signature:
    return Signature(1, organisation, capacity, name, decision, NOW, valid, stale)


def test_required_capacities_come_from_the_template_and_health_adds_the_caldicott_guardian() -> (
    None
):
    assert required_capacities(ISA, "controller", health_data=False) == (
        Capacity.DPO,
        Capacity.SIRO,
    )
    assert required_capacities(ISA, "joint_controller", health_data=True) == (
        Capacity.DPO,
        Capacity.SIRO,
        Capacity.CALDICOTT_GUARDIAN,
    )
    assert required_capacities(ISA, "processor", health_data=True) == ()
    assert required_capacities({}, "controller", health_data=True) == ()


def test_health_data_is_read_from_the_isa_data_section_only_when_true() -> None:
    assert health_data_of({"data": {"health_data": True}})
    assert not health_data_of({"data": {"health_data": "yes"}})
    assert not health_data_of({"need": {}})


def test_each_required_signature_is_outstanding_until_that_party_signs_in_that_capacity() -> None:
    required = signature_status([CAMDEN, ISLINGTON, PROCESSOR, IGFL], DPIA, [], health_data=False)
    assert [(r.party.name, r.capacity, r.state) for r in required] == [
        ("Camden", Capacity.DPO, SignatureState.OUTSTANDING),
        ("Islington", Capacity.DPO, SignatureState.OUTSTANDING),
    ]
    assert not all_signed(required)


def test_one_partys_signature_never_stands_for_another() -> None:
    required = signature_status(
        [CAMDEN, ISLINGTON], DPIA, [signature(10, "dpo", name="Cam DPO")], health_data=False
    )
    states = {r.party.name: (r.state, r.signed_by) for r in required}
    assert states == {
        "Camden": (SignatureState.SIGNED, "Cam DPO"),
        "Islington": (SignatureState.OUTSTANDING, ""),
    }
    assert not all_signed(required)


def test_a_signature_in_another_capacity_does_not_count() -> None:
    required = signature_status([CAMDEN], DPIA, [signature(10, "siro")], health_data=False)
    assert [r.state for r in required] == [SignatureState.OUTSTANDING]


def test_approved_only_when_every_party_signed_every_required_capacity() -> None:
    signatures = [signature(10, "dpo"), signature(20, "dpo")]
    assert all_signed(signature_status([CAMDEN, ISLINGTON], DPIA, signatures, health_data=False))
    isa = signature_status([CAMDEN, ISLINGTON], ISA, signatures, health_data=False)
    assert not all_signed(isa)
    assert [r.capacity for r in isa if r.state is SignatureState.OUTSTANDING] == [
        Capacity.SIRO,
        Capacity.SIRO,
    ]


def test_a_stale_signature_reads_stale_and_a_rejection_never_counts_as_signed() -> None:
    stale = signature_status(
        [CAMDEN], DPIA, [signature(10, "dpo", valid=False, stale=True)], health_data=False
    )
    assert [r.state for r in stale] == [SignatureState.STALE]
    assert not all_signed(stale)
    rejected = signature_status(
        [CAMDEN], DPIA, [signature(10, "dpo", decision="reject")], health_data=False
    )
    assert [r.state for r in rejected] == [SignatureState.OUTSTANDING]


def test_a_party_not_on_this_deployment_stays_outstanding_and_no_requirement_is_not_approved() -> (
    None
):
    required = signature_status([OUTSIDE], DPIA, [signature(0, "dpo")], health_data=False)
    assert [r.state for r in required] == [SignatureState.OUTSTANDING]
    assert not all_signed(signature_status([PROCESSOR], DPIA, [], health_data=False))


def test_a_person_in_one_party_with_one_role_signs_without_choosing() -> None:
    choice = choose_signing(
        [CAMDEN, ISLINGTON], {10: frozenset({Capacity.DPO})}, organisation_id=None, capacity=""
    )
    assert (choice.party, choice.capacity) == (CAMDEN, Capacity.DPO)


def test_a_person_in_two_parties_must_choose_and_gets_only_the_one_chosen() -> None:
    held = {10: frozenset({Capacity.DPO}), 20: frozenset({Capacity.DPO})}
    with pytest.raises(InvalidInput, match="choose which"):
        choose_signing([CAMDEN, ISLINGTON], held, organisation_id=None, capacity="dpo")
    choice = choose_signing([CAMDEN, ISLINGTON], held, organisation_id=20, capacity="dpo")
    assert choice.party is ISLINGTON


def test_signing_for_a_party_one_is_not_a_member_of_is_refused() -> None:
    with pytest.raises(AccessDenied, match="not a member of Islington"):
        choose_signing(
            [CAMDEN, ISLINGTON], {10: frozenset({Capacity.DPO})}, organisation_id=20, capacity=""
        )


def test_a_capacity_not_held_is_refused_naming_the_party() -> None:
    with pytest.raises(AccessDenied, match="do not hold the role Senior information risk owner"):
        choose_signing(
            [CAMDEN], {10: frozenset({Capacity.DPO})}, organisation_id=10, capacity="siro"
        )
    with pytest.raises(AccessDenied, match="no signatory role"):
        choose_signing([CAMDEN], {10: frozenset()}, organisation_id=None, capacity="")


def test_a_reviewing_body_and_a_non_party_cannot_be_signed_for() -> None:
    with pytest.raises(InvalidInput, match="not a party"):
        choose_signing(
            [CAMDEN, IGFL], {40: frozenset({Capacity.DPO})}, organisation_id=40, capacity="dpo"
        )
    with pytest.raises(AccessDenied, match="not a member of any organisation"):
        choose_signing([CAMDEN], {99: frozenset({Capacity.DPO})}, organisation_id=None, capacity="")


def test_endorsement_is_endorse_or_withhold_and_withholding_needs_reasons() -> None:
    assert endorsement_decision("endorse", "") is Decision.ENDORSE
    with pytest.raises(InvalidInput, match="needs reasons"):
        endorsement_decision("withhold", "  ")
    assert endorsement_decision("withhold", "Retention unclear") is Decision.WITHHOLD
    with pytest.raises(InvalidInput):
        endorsement_decision("approve", "")


def test_only_a_member_of_an_invited_reviewing_body_endorses() -> None:
    assert reviewing_member([CAMDEN, IGFL], {40}, {40}) is IGFL
    with pytest.raises(AccessDenied):
        reviewing_member([CAMDEN, IGFL], {40}, {10})
    with pytest.raises(AccessDenied):
        reviewing_member([CAMDEN, IGFL], set(), {40})  # no longer marked a reviewing body


def test_capacities_are_checked_and_stored_in_a_fixed_order() -> None:
    chosen = check_capacities(["caldicott_guardian", "dpo"])
    assert format_capacities(chosen) == "dpo,caldicott_guardian"
    assert parse_capacities("dpo,unknown, siro") == {Capacity.DPO, Capacity.SIRO}
    with pytest.raises(InvalidInput, match="no signatory role"):
        check_capacities(["chief"])


def test_a_person_is_reminded_at_most_once_a_day() -> None:
    assert reminder_due(None, NOW)
    assert not reminder_due(NOW - timedelta(hours=23), NOW)
    assert reminder_due(NOW - timedelta(hours=24), NOW)
