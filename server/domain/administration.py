"""Administration: who may manage organisations and their people, and the rules every
administrative action keeps, as pure functions returning verdicts.

Two standings exist. A *deployment administrator* (a flag on the account, given with
``opendpia grant-deployment-admin``) manages every organisation: creates them, renames
them, decides whether their DPIAs may take in partners from outside. An *organisation
administrator* (the ``admin`` role of a membership) manages that organisation's people:
invites them, changes their role, suspends and reinstates them. Neither standing is a role
on any DPIA: administering an organisation grants no access to its DPIAs' content.

Someone without the standing a page needs gets "not found", as for a DPIA they do not take
part in: they cannot learn which organisations exist.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from server.domain import wording
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, InvalidInput
from server.domain.verdicts import ALLOWED, Verdict, refused

# One chain for the whole deployment's administration (docs/decisions.md): organisations come
# and go and change code, so a chain per organisation would need a key that outlives both.
ADMIN_CHAIN = "administration"
NOT_FOUND = "There is no such organisation, or you do not administer it."


class OrgRole(enum.StrEnum):
    """A person's role in their organisation (not on a DPIA)."""

    MEMBER = "member"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return wording.ORG_ROLES[self.value]


class AdminChannel(enum.StrEnum):
    """Where an administrative action came from, as the audit chain records it."""

    BROWSER = "browser"
    CLI = "cli"


def check_org_role(raw: str) -> OrgRole:
    try:
        return OrgRole(raw.strip())
    except ValueError:
        raise InvalidInput("Choose a role: member or administrator") from None


@dataclass(frozen=True, slots=True)
class Standing:
    """What one actor may administer: everything (deployment), or some organisations."""

    deployment_admin: bool
    administers: frozenset[int]

    def administers_any(self) -> bool:
        return self.deployment_admin or bool(self.administers)


def deployment_policy(standing: Standing) -> Verdict:
    """Listing, creating and editing organisations: deployment administrators."""
    if not standing.deployment_admin:
        return refused(DocumentNotFound("There is no such page."))
    return ALLOWED


def organisation_policy(standing: Standing, organisation_id: int) -> Verdict:
    """Managing one organisation's people and seeing its DPIAs: its administrators, and
    deployment administrators."""
    if standing.deployment_admin or organisation_id in standing.administers:
        return ALLOWED
    return refused(DocumentNotFound(NOT_FOUND))


def suspend_scope_policy(standing: Standing, person_organisations: Collection[int]) -> Verdict:
    """Suspension is of an account, which may belong to several organisations: an
    organisation administrator suspends only someone every one of whose organisations they
    administer; anyone else is for a deployment administrator."""
    if standing.deployment_admin or set(person_organisations) <= standing.administers:
        return ALLOWED
    return refused(
        AccessDenied(
            "This person also belongs to another organisation: ask a deployment "
            "administrator to suspend or reinstate them"
        )
    )


def admin_kept_policy(
    role: OrgRole, active: bool, new_role: OrgRole, new_active: bool, active_admins: int
) -> Verdict:
    """A member of ``role`` (``active`` or suspended) becomes ``new_role``/``new_active``
    while the organisation has ``active_admins`` active administrators: an organisation
    that has an administrator keeps one, so nobody (least of all the last administrator
    themselves) can leave it without anyone to manage its people."""
    was_admin = role is OrgRole.ADMIN and active
    stays_admin = new_role is OrgRole.ADMIN and new_active
    if was_admin and not stays_admin and active_admins <= 1:
        return refused(
            Conflict(
                "This is the organisation's last administrator: make someone else an "
                "administrator first"
            )
        )
    return ALLOWED


def deployment_admin_kept_policy(was: bool, stays: bool, active_deployment_admins: int) -> Verdict:
    """An active deployment administrator who would stop being one (suspended, or the
    standing revoked) while there are ``active_deployment_admins``: the deployment keeps
    one, so that organisations can still be managed in the browser."""
    if was and not stays and active_deployment_admins <= 1:
        return refused(
            Conflict(
                "This is the last deployment administrator: make someone else one first "
                "(opendpia grant-deployment-admin)"
            )
        )
    return ALLOWED


def readable_change(data: Mapping[str, object]) -> list[tuple[str, str]]:
    """An audit event's recorded values (its "before" or "after") as a person reads them:
    labels for the names, and for roles and flags, in the order they were recorded."""
    readable = []
    for key, value in data.items():
        if isinstance(value, bool):
            yes, no = wording.ADMIN_FLAGS.get(key, ("Yes", "No"))
            shown = yes if value else no
        elif key == "role" and isinstance(value, str):
            shown = wording.label(wording.ORG_ROLES, value)
        else:
            shown = str(value)
        readable.append((wording.label(wording.ADMIN_FIELDS, key), shown))
    return readable


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def outside_partner_policy(
    *,
    allowed: bool,
    email: str,
    invitee_organisations: Collection[int],
    party_organisations: Collection[int],
    party_domains: Collection[str] = (),
) -> Verdict:
    """Inviting ``email`` to a DPIA whose lead organisation ``allowed`` outside partners
    or not.

    Where they are not allowed, an invitee must be inside the DPIA's parties: an account in
    one of the parties' organisations (the lead included), or an address at one of the
    parties' email domains (``party_domains``: the organisations' own domains, where they
    are recorded). Everyone else (an email-only partner elsewhere, an account of an
    organisation that is not a party) is refused, with the way forward.
    """
    if allowed:
        return ALLOWED
    if set(invitee_organisations) & set(party_organisations):
        return ALLOWED
    if email_domain(email) in {d.lower() for d in party_domains}:
        return ALLOWED
    return refused(
        AccessDenied(
            "The lead organisation does not allow partners from outside the DPIA's "
            "parties: add their organisation as a party first, or ask your administrator"
        )
    )
