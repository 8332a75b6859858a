"""The rules of single sign-on (``domain.signin``): who a token names, whom it may link to."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.domain.errors import InvalidInput
from server.domain.signin import (
    Identity,
    LinkOutcome,
    ProviderSettings,
    SignInRefused,
    check_domains,
    check_identity,
    check_issuer,
    identity_from_claims,
    link_outcome,
    membership_role,
    password_allowed,
)

CAMDEN = ProviderSettings(
    organisation_id=1,
    organisation_code="CAM",
    organisation_name="Camden",
    issuer="https://login.microsoftonline.com/t1/v2.0",
    client_id="app",
    client_secret="s3cret-value-long-enough",
    tenant="t1",
    jit=True,
    admin_group="admins",
    forbid_passwords=False,
    domains=("camden.gov.uk",),
)
ANN = Identity("oid-ann", "ann@camden.gov.uk", False, "Ann", "t1", ("admins",))


def test_the_stable_subject_is_entras_oid_before_sub() -> None:
    claims = {"sub": "pairwise-sub", "oid": "oid-1", "email": "A@Camden.gov.uk", "tid": "t1"}
    identity = identity_from_claims(claims)
    assert (identity.subject, identity.email, identity.tenant) == ("oid-1", "a@camden.gov.uk", "t1")
    assert identity_from_claims({"sub": "s", "email": "a@camden.gov.uk"}).subject == "s"


def test_entras_preferred_username_stands_in_for_a_missing_email() -> None:
    identity = identity_from_claims({"sub": "s", "preferred_username": "ann@camden.gov.uk"})
    assert identity.email == "ann@camden.gov.uk" and identity.email_verified is False
    assert identity.name == "ann"  # no name claim: the address's local part


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "a@camden.gov.uk"},
        {"sub": "", "email": "a@b.uk"},
        {"sub": "s"},
        {"sub": "s", "email": 5},
    ],
)
def test_a_token_without_a_subject_or_an_email_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(SignInRefused):
        identity_from_claims(claims)


def test_only_true_email_verified_counts_and_groups_must_be_strings() -> None:
    identity = identity_from_claims(
        {"sub": "s", "email": "a@b.uk", "email_verified": "true", "groups": ["g", 3, None]}
    )
    assert identity.email_verified is False and identity.groups == ("g",)


def test_the_tenant_and_the_domain_must_be_the_organisations() -> None:
    check_identity(ANN, CAMDEN)
    with pytest.raises(SignInRefused, match="another organisation's directory"):
        check_identity(replace(ANN, tenant="t2"), CAMDEN)
    with pytest.raises(SignInRefused, match="not an address of Camden"):
        check_identity(replace(ANN, email="ann@gmail.example"), CAMDEN)
    check_identity(replace(ANN, tenant="any"), replace(CAMDEN, tenant=""))  # not pinned


def test_an_existing_account_is_linked_only_when_the_provider_vouches_for_the_address() -> None:
    def outcome(identity: Identity, settings: ProviderSettings, member: bool = True) -> LinkOutcome:
        return link_outcome(
            identity, settings, known=False, email_account=True, email_account_is_member=member
        )

    unpinned = replace(CAMDEN, tenant="")
    assert outcome(ANN, CAMDEN) is LinkOutcome.LINK  # Entra, its own tenant pinned
    assert outcome(replace(ANN, email_verified=True), unpinned) is LinkOutcome.LINK
    with pytest.raises(SignInRefused, match="did not confirm"):
        outcome(ANN, unpinned)
    with pytest.raises(SignInRefused, match="exists outside Camden"):
        outcome(replace(ANN, email_verified=True), CAMDEN, member=False)


def test_a_known_subject_signs_in_and_an_unknown_one_is_provisioned_only_with_jit() -> None:
    def outcome(settings: ProviderSettings, known: bool) -> LinkOutcome:
        return link_outcome(
            ANN, settings, known=known, email_account=False, email_account_is_member=False
        )

    assert outcome(replace(CAMDEN, jit=False), True) is LinkOutcome.KNOWN
    assert outcome(CAMDEN, False) is LinkOutcome.PROVISION
    with pytest.raises(SignInRefused, match="invite you"):
        outcome(replace(CAMDEN, jit=False), False)


def test_the_admin_group_decides_the_role_only_when_it_is_set() -> None:
    assert membership_role(ANN, CAMDEN, "member") == "admin"
    assert membership_role(replace(ANN, groups=()), CAMDEN, "admin") == "member"
    assert membership_role(replace(ANN, groups=()), replace(CAMDEN, admin_group=""), "admin") == (
        "admin"
    )
    assert membership_role(ANN, replace(CAMDEN, admin_group=""), None) == "member"


def test_passwords_forbidden_leave_break_glass_accounts_theirs() -> None:
    assert password_allowed(forbidden=False, break_glass=False)
    assert not password_allowed(forbidden=True, break_glass=False)
    assert password_allowed(forbidden=True, break_glass=True)


def test_domains_and_issuers_are_checked() -> None:
    assert check_domains(" @Camden.gov.uk, camden.gov.uk\nnhs.net ") == ("camden.gov.uk", "nhs.net")
    for bad in ("camden", "a b@c", "-x_.uk"):
        with pytest.raises(InvalidInput):
            check_domains(bad)
    assert check_issuer("https://idp.example/realms/x/") == "https://idp.example/realms/x"
    assert check_issuer("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    for bad in ("http://idp.example", "ftp://x", "https://", "https://x/?q=1", "x" * 600):
        with pytest.raises(InvalidInput):
            check_issuer(bad)


def test_the_secret_is_shown_masked() -> None:
    assert CAMDEN.masked_secret.endswith("ough") and "s3cret" not in CAMDEN.masked_secret
    assert replace(CAMDEN, client_secret="short").masked_secret == "••••••••"
