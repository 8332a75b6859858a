"""The rules of administration, as pure functions: who may manage what, an organisation
keeps an administrator, and a lead organisation that forbids outside partners keeps them out."""

from __future__ import annotations

import pytest

from server.domain.administration import (
    OrgRole,
    Standing,
    admin_kept_policy,
    check_org_role,
    deployment_admin_kept_policy,
    deployment_policy,
    organisation_policy,
    outside_partner_policy,
    readable_change,
    suspend_scope_policy,
)
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, InvalidInput

DEPLOYMENT = Standing(True, frozenset())
CAMDEN_ADMIN = Standing(False, frozenset({1}))
NOBODY = Standing(False, frozenset())


def test_only_deployment_administrators_manage_organisations() -> None:
    assert deployment_policy(DEPLOYMENT).allowed
    for standing in (CAMDEN_ADMIN, NOBODY):
        assert isinstance(deployment_policy(standing).refusal, DocumentNotFound)


def test_an_organisation_is_managed_by_its_administrators_and_deployment_administrators() -> None:
    assert organisation_policy(CAMDEN_ADMIN, 1).allowed
    assert organisation_policy(DEPLOYMENT, 2).allowed
    refusal = organisation_policy(CAMDEN_ADMIN, 2).refusal
    assert isinstance(refusal, DocumentNotFound)
    assert not organisation_policy(NOBODY, 1).allowed


def test_suspending_someone_of_another_organisation_too_needs_a_deployment_administrator() -> None:
    assert suspend_scope_policy(CAMDEN_ADMIN, [1]).allowed
    assert isinstance(suspend_scope_policy(CAMDEN_ADMIN, [1, 2]).refusal, AccessDenied)
    assert suspend_scope_policy(DEPLOYMENT, [1, 2]).allowed


@pytest.mark.parametrize(
    ("new_role", "new_active"),
    [(OrgRole.MEMBER, True), (OrgRole.ADMIN, False), (OrgRole.MEMBER, False)],
)
def test_the_last_active_administrator_cannot_be_demoted_or_suspended(
    new_role: OrgRole, new_active: bool
) -> None:
    verdict = admin_kept_policy(OrgRole.ADMIN, True, new_role, new_active, 1)
    assert isinstance(verdict.refusal, Conflict)
    assert "last administrator" in str(verdict.refusal)
    assert admin_kept_policy(OrgRole.ADMIN, True, new_role, new_active, 2).allowed


def test_members_and_suspended_administrators_change_freely() -> None:
    assert admin_kept_policy(OrgRole.MEMBER, True, OrgRole.MEMBER, False, 1).allowed
    assert admin_kept_policy(OrgRole.MEMBER, True, OrgRole.ADMIN, True, 0).allowed
    # A suspended administrator is not counted, so reinstating or demoting them is free.
    assert admin_kept_policy(OrgRole.ADMIN, False, OrgRole.MEMBER, False, 1).allowed
    assert admin_kept_policy(OrgRole.ADMIN, False, OrgRole.ADMIN, True, 1).allowed


def test_an_organisation_role_is_member_or_admin() -> None:
    assert check_org_role(" admin ") is OrgRole.ADMIN
    with pytest.raises(InvalidInput):
        check_org_role("owner")


def _outside(
    allowed: bool, email: str, theirs: set[int], domains: frozenset[str] = frozenset()
) -> bool:
    return outside_partner_policy(
        allowed=allowed,
        email=email,
        invitee_organisations=theirs,
        party_organisations={1, 2},
        party_domains=domains,
    ).allowed


def test_a_lead_that_allows_outside_partners_lets_anyone_be_invited() -> None:
    assert _outside(True, "jo@charity.example", set())


def test_a_lead_that_forbids_them_refuses_an_email_only_partner_elsewhere() -> None:
    verdict = outside_partner_policy(
        allowed=False,
        email="jo@charity.example",
        invitee_organisations=(),
        party_organisations={1, 2},
    )
    assert isinstance(verdict.refusal, AccessDenied)
    assert "add their organisation as a party" in str(verdict.refusal)


def test_a_lead_that_forbids_them_refuses_an_account_of_an_organisation_not_a_party() -> None:
    assert not _outside(False, "sam@police.example", {3})


def test_people_of_the_parties_stay_welcome_when_outsiders_are_not() -> None:
    assert _outside(False, "ann@camden.example", {1})
    assert _outside(False, "bob@nlft.example", {2, 3})
    assert _outside(False, "new.starter@NLFT.example", set(), frozenset({"nlft.example"}))
    assert not _outside(False, "x@nlft.example.evil", set(), frozenset({"nlft.example"}))


def test_an_audit_events_values_read_as_words() -> None:
    assert readable_change(
        {"email": "ann@camden.example", "role": "admin", "active": False, "link_sent": True}
    ) == [
        ("Email", "ann@camden.example"),
        ("Role", "Administrator"),
        ("State", "Suspended"),
        ("Password link emailed", "Yes"),
    ]
    assert readable_change({"outside_partners": True}) == [("Outside partners", "Allowed")]


def test_the_deployment_keeps_an_active_deployment_administrator() -> None:
    refusal = deployment_admin_kept_policy(True, False, 1).refusal
    assert isinstance(refusal, Conflict) and "grant-deployment-admin" in str(refusal)
    assert deployment_admin_kept_policy(True, False, 2).allowed
    assert deployment_admin_kept_policy(False, False, 1).allowed  # not one, or suspended
    assert deployment_admin_kept_policy(True, True, 1).allowed
