"""What administration reads and who acts: the records ``services.administration`` answers
with and the ``Actor`` every change is made by (kept apart so the service stays readable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.domain.administration import AdminChannel, OrgRole, Standing
from server.domain.dpias import DpiaStatus
from server.storage.models import Organisation, User


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an administrative action, from where, with what standing."""

    label: str  # as the audit chain records it: "user:<id>" or "cli:<login>"
    channel: AdminChannel
    standing: Standing
    name: str = ""  # shown in an invitation's email
    user_id: int | None = None

    @classmethod
    def command_line(cls, login: str) -> Actor:
        return cls(f"cli:{login[:60]}", AdminChannel.CLI, Standing(True, frozenset()), login)


@dataclass(frozen=True, slots=True)
class OrganisationView:
    id: int
    code: str
    name: str
    outside_partners: bool
    people: int = 0
    reviewing_body: bool = False  # a reviewing forum, as IGfL is (issue 16)


@dataclass(frozen=True, slots=True)
class PersonView:
    id: int
    name: str
    email: str
    role: OrgRole
    active: bool
    deployment_admin: bool
    # The capacities they sign for the organisation in: dpo, siro, caldicott_guardian.
    signatory_roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrganisationDpia:
    id: str
    title: str
    status: DpiaStatus
    lead: bool


def organisation_view(org: Organisation, people: int = 0) -> OrganisationView:
    return OrganisationView(
        org.id, org.code, org.name, org.outside_partners, people, org.reviewing_body
    )


def org_data(org: Organisation) -> dict[str, Any]:
    return {"code": org.code, "name": org.name, "outside_partners": org.outside_partners}


def person_view(user: User, role: str, signatory_roles: str = "") -> PersonView:
    return PersonView(
        user.id,
        user.name,
        user.email,
        OrgRole(role),
        user.active,
        user.deployment_admin,
        tuple(p for p in signatory_roles.split(",") if p),
    )
