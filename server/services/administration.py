"""Organisations and their people, changed by administrators, each change chained in the
administration's audit trail in the same transaction.

Every method takes an ``Actor``: who acts (for the audit chain), through which channel, and
with what ``Standing``; the policies of ``domain.administration`` decide with that
standing, so the browser and the command line keep the same rules (the command line acts
as a deployment administrator: whoever runs it can reach the database anyway). Audit data
says what changed, before and after; never a password or a link.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.administration import (
    NOT_FOUND,
    OrgRole,
    Standing,
    admin_kept_policy,
    check_org_role,
    deployment_admin_kept_policy,
    deployment_policy,
    organisation_policy,
    suspend_scope_policy,
)
from server.domain.dpias import DpiaStatus
from server.domain.errors import Conflict, DocumentNotFound, InvalidInput
from server.domain.parties import check_capacities, format_capacities
from server.domain.people import check_name, check_org_code, check_password, normalise_email
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import (
    Actor,
    OrganisationDpia,
    OrganisationView,
    PersonView,
    org_data,
    organisation_view,
    person_view,
)
from server.services.passwords import PasswordResets
from server.storage.database import writer_turn
from server.storage.models import Dpia, DpiaParty, Membership, Organisation, User, UserSession


async def organisation_by_code(session: AsyncSession, code: str, not_found: str) -> Organisation:
    """The organisation of ``code``; DocumentNotFound(``not_found``) for a malformed code or
    one that names no organisation (the caller's message says what the person may not see)."""
    try:
        code = check_org_code(code)
    except InvalidInput:
        raise DocumentNotFound(not_found) from None
    org = await session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise DocumentNotFound(not_found)
    return org


class Administration:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: PasswordResets,
        audit: AdminAuditTrail,
        *,
        hasher: PasswordHasher | None = None,
        signs_in_elsewhere: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._passwords = passwords
        self.audit = audit
        self._hasher = hasher or PasswordHasher()
        # Whether an organisation's people sign in with its identity provider (no password
        # to set, so no link to send); none does until single sign-on is configured.
        self._elsewhere = signs_in_elsewhere

    async def standing(self, user_id: int) -> Standing:
        async with self._sessions() as session:
            deployment = await session.scalar(
                select(User.deployment_admin).where(User.id == user_id)
            )
            administers = await session.scalars(
                select(Membership.organisation_id).where(
                    Membership.user_id == user_id, Membership.role == OrgRole.ADMIN.value
                )
            )
            return Standing(bool(deployment), frozenset(administers))

    # -- organisations -------------------------------------------------------------------

    async def organisations(self, actor: Actor) -> list[OrganisationView]:
        """Every organisation for a deployment administrator, else those they administer."""
        query = select(Organisation, func.count(Membership.user_id)).outerjoin(Membership)
        if not actor.standing.deployment_admin:
            query = query.where(Organisation.id.in_(actor.standing.administers))
        async with self._sessions() as session:
            rows = await session.execute(
                query.group_by(Organisation.id).order_by(Organisation.name)
            )
            return [organisation_view(org, count) for org, count in rows]

    async def organisation(self, actor: Actor, code: str) -> OrganisationView:
        """One organisation the actor may manage; DocumentNotFound for any other."""
        async with self._sessions() as session:
            org = await organisation_by_code(session, code, NOT_FOUND)
        organisation_policy(actor.standing, org.id).require()
        return organisation_view(org)

    async def create_organisation(
        self, actor: Actor, code: str, name: str, *, outside_partners: bool = True
    ) -> OrganisationView:
        deployment_policy(actor.standing).require()
        org = Organisation(
            code=check_org_code(code),
            name=check_name(name, "name"),
            outside_partners=outside_partners,
            created_at=_now(),
        )
        async with self._changing() as session:
            await self._code_free(session, org.code)
            session.add(org)
            await session.flush()
            await self._record(session, actor, "organisation_created", org.id, after=org_data(org))
        return organisation_view(org)

    async def update_organisation(
        self, actor: Actor, code: str, *, new_code: str, name: str, outside_partners: bool
    ) -> OrganisationView:
        deployment_policy(actor.standing).require()
        current = await self.organisation(actor, code)
        new_code, name = check_org_code(new_code), check_name(name, "name")
        async with self._changing() as session:
            org = await session.get_one(Organisation, current.id, with_for_update=True)
            before = org_data(org)
            if new_code != org.code:
                await self._code_free(session, new_code)
            org.code, org.name, org.outside_partners = new_code, name, outside_partners
            if org_data(org) != before:
                await self._record(
                    session, actor, "organisation_changed", org.id, before, org_data(org)
                )
        return organisation_view(org)

    async def _code_free(self, session: AsyncSession, code: str) -> None:
        if await session.scalar(select(Organisation.id).where(Organisation.code == code)):
            raise Conflict(f"An organisation with code {code} exists: choose another code")

    # -- people ----------------------------------------------------------------------------

    async def people(self, actor: Actor, organisation_id: int) -> list[PersonView]:
        organisation_policy(actor.standing, organisation_id).require()
        async with self._sessions() as session:
            rows = await session.execute(
                select(User, Membership.role, Membership.signatory_roles)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.organisation_id == organisation_id)
                .order_by(User.name, User.id)
            )
            return [person_view(user, role, roles) for user, role, roles in rows]

    async def person(self, actor: Actor, organisation_id: int, user_id: int) -> PersonView:
        """A person of the organisation; DocumentNotFound for anyone else."""
        for person in await self.people(actor, organisation_id):
            if person.id == user_id:
                return person
        raise DocumentNotFound("There is no such person in this organisation.")

    async def invite(
        self,
        actor: Actor,
        organisation_id: int,
        email: str,
        name: str,
        role: str = "member",
        *,
        password: str | None = None,
    ) -> int:
        """A new account in the organisation. Without a ``password`` the person is emailed
        a link to choose one (unless the organisation signs in with its own provider, where
        the account waits for their first sign-in). Answers the account's id."""
        organisation_policy(actor.standing, organisation_id).require()
        email, name, org_role = normalise_email(email), check_name(name), check_org_role(role)
        secret = check_password(password) if password is not None else secrets.token_urlsafe(32)
        password_hash = self._hasher.hash(secret)
        send_link = password is None and not (
            self._elsewhere is not None and await self._elsewhere(organisation_id)
        )
        async with self._changing() as session:
            if await session.scalar(select(User.id).where(User.email == email)):
                raise Conflict(f"There is an account for {email} already")
            org = await session.get_one(Organisation, organisation_id)
            user = User(
                email=email, name=name, password_hash=password_hash, active=True, created_at=_now()
            )
            session.add(user)
            await session.flush()
            session.add(Membership(user_id=user.id, organisation_id=org.id, role=org_role.value))
            after = {"email": email, "name": name, "role": org_role.value, "link_sent": send_link}
            await self._record(session, actor, "person_invited", org.id, after=after)
            if send_link:
                self._passwords.issue(
                    session,
                    user,
                    invited_by=actor.name or "An administrator",
                    organisation=org.name,
                )
        if send_link:
            self._passwords.queued()
        return user.id

    async def change_role(
        self, actor: Actor, organisation_id: int, user_id: int, role: str
    ) -> PersonView:
        organisation_policy(actor.standing, organisation_id).require()
        new_role = check_org_role(role)
        async with self._changing() as session:
            user, membership = await self._membership(session, organisation_id, user_id)
            old_role = OrgRole(membership.role)
            if old_role is new_role:
                return person_view(user, membership.role, membership.signatory_roles)
            admins = await self._active_admins(session, organisation_id)
            admin_kept_policy(old_role, user.active, new_role, user.active, admins).require()
            membership.role = new_role.value
            await self._record(
                session,
                actor,
                "role_changed",
                organisation_id,
                {"email": user.email, "role": old_role.value},
                {"email": user.email, "role": new_role.value},
            )
            return person_view(user, membership.role, membership.signatory_roles)

    async def set_signatory_roles(
        self, actor: Actor, organisation_id: int, user_id: int, roles: Iterable[str]
    ) -> PersonView:
        """Record which capacities a member signs for the organisation in (DPO, SIRO,
        Caldicott Guardian): its administrators' say, chained with before and after."""
        organisation_policy(actor.standing, organisation_id).require()
        chosen = format_capacities(check_capacities(roles))
        async with self._changing() as session:
            user, membership = await self._membership(session, organisation_id, user_id)
            before = membership.signatory_roles or ""
            if before != chosen:
                membership.signatory_roles = chosen
                await self._record(
                    session,
                    actor,
                    "signatory_roles_changed",
                    organisation_id,
                    {"email": user.email, "signatory_roles": before},
                    {"email": user.email, "signatory_roles": chosen},
                )
            return person_view(user, membership.role, chosen)

    async def set_reviewing_body(self, actor: Actor, code: str, reviewing: bool) -> None:
        """Mark an organisation as a reviewing forum (deployment administrators)."""
        deployment_policy(actor.standing).require()
        current = await self.organisation(actor, code)
        async with self._changing() as session:
            org = await session.get_one(Organisation, current.id, with_for_update=True)
            if org.reviewing_body != reviewing:
                before = org.reviewing_body
                org.reviewing_body = reviewing
                await self._record(
                    session,
                    actor,
                    "reviewing_body_changed",
                    org.id,
                    {"code": org.code, "reviewing_body": before},
                    {"code": org.code, "reviewing_body": reviewing},
                )

    async def set_active(
        self, actor: Actor, user_id: int, active: bool, organisation_id: int | None = None
    ) -> PersonView:
        """Suspend (or reinstate) an account: a suspension ends its sessions, and it cannot
        sign in until reinstated. The caller tells the rooms (``usecases.administration``)."""
        if organisation_id is not None:
            organisation_policy(actor.standing, organisation_id).require()
        else:
            deployment_policy(actor.standing).require()
        async with self._changing() as session:
            user = await session.get(User, user_id, with_for_update=True)
            memberships = (
                (await session.scalars(select(Membership).where(Membership.user_id == user_id)))
                .unique()
                .all()
            )
            if user is None or (
                organisation_id is not None
                and organisation_id not in {m.organisation_id for m in memberships}
            ):
                raise DocumentNotFound("There is no such person in this organisation.")
            suspend_scope_policy(actor.standing, [m.organisation_id for m in memberships]).require()
            if user.active == active:
                return person_view(user, _role_in(memberships, organisation_id))
            deployment_admins = await self._active_deployment_admins(session)
            was = user.deployment_admin and user.active
            deployment_admin_kept_policy(was, was and active, deployment_admins).require()
            for membership in memberships:
                admins = await self._active_admins(session, membership.organisation_id)
                role = OrgRole(membership.role)
                admin_kept_policy(role, user.active, role, active, admins).require()
            user.active = active
            if not active:
                await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
            await self._record(
                session,
                actor,
                "person_reinstated" if active else "person_suspended",
                organisation_id if organisation_id is not None else _first(memberships),
                {"email": user.email, "active": not active},
                {"email": user.email, "active": active},
            )
            return person_view(user, _role_in(memberships, organisation_id))

    async def user_id(self, email: str) -> int:
        async with self._sessions() as session:
            found = await session.scalar(
                select(User.id).where(User.email == email.strip().lower()[:254])
            )
        if found is None:
            raise InvalidInput(f"There is no account for {email.strip()[:100]}")
        return found

    async def set_deployment_admin(self, actor: Actor, email: str, granted: bool) -> None:
        deployment_policy(actor.standing).require()
        user_id = await self.user_id(email)
        async with self._changing() as session:
            user = await session.get_one(User, user_id)
            if user.deployment_admin == granted:
                return
            deployment_admins = await self._active_deployment_admins(session)
            deployment_admin_kept_policy(user.active, granted, deployment_admins).require()
            user.deployment_admin = granted
            await self._record(
                session,
                actor,
                "deployment_admin_granted" if granted else "deployment_admin_revoked",
                None,
                {"email": user.email, "deployment_admin": not granted},
                {"email": user.email, "deployment_admin": granted},
            )

    async def actor_names(self, labels: list[str]) -> dict[str, str]:
        """People's names for the audit chain's ``user:<id>`` actors."""
        ids = {int(n) for kind, _, n in (a.partition(":") for a in labels) if kind == "user"}
        async with self._sessions() as session:
            rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
            return {f"user:{row.id}": row.name for row in rows}

    async def dpias(self, actor: Actor, organisation_id: int) -> list[OrganisationDpia]:
        """The DPIAs the organisation leads or is a party to (their titles and status, not
        their content: administering grants no access to it)."""
        organisation_policy(actor.standing, organisation_id).require()
        party = select(DpiaParty.dpia_id).where(DpiaParty.organisation_id == organisation_id)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Dpia)
                .where(or_(Dpia.lead_organisation_id == organisation_id, Dpia.id.in_(party)))
                .order_by(Dpia.created_at.desc(), Dpia.id)
            )
            return [
                OrganisationDpia(
                    d.id, d.title, DpiaStatus(d.status), d.lead_organisation_id == organisation_id
                )
                for d in rows
            ]

    # -- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _changing(self) -> AsyncIterator[AsyncSession]:
        """The transaction of one change. The audit chain's head is locked first, so that
        administrative changes take turns: two administrators demoting each other at once
        cannot both count the other as the one who stays. A clash on a unique value (a code,
        an email) made meanwhile by something else is a Conflict, not a crash."""
        try:
            # SQLite ignores FOR UPDATE: there, this process's writers take turns instead.
            async with writer_turn(self._sessions), self._sessions.begin() as session:
                await self.audit.lock(session)
                yield session
        except IntegrityError:
            raise Conflict(
                "This changed at the same time elsewhere: reload the page and try again"
            ) from None

    async def _membership(
        self, session: AsyncSession, organisation_id: int, user_id: int
    ) -> tuple[User, Membership]:
        membership = await session.get(Membership, (user_id, organisation_id), with_for_update=True)
        user = await session.get(User, user_id)
        if membership is None or user is None:
            raise DocumentNotFound("There is no such person in this organisation.")
        return user, membership

    async def _active_deployment_admins(self, session: AsyncSession) -> int:
        count = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.deployment_admin.is_(True), User.active.is_(True))
        )
        return count or 0

    async def _active_admins(self, session: AsyncSession, organisation_id: int) -> int:
        count = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.organisation_id == organisation_id,
                Membership.role == OrgRole.ADMIN.value,
                User.active.is_(True),
            )
        )
        return count or 0

    async def _record(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: str,
        organisation_id: int | None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self.audit.append(
            session,
            kind,
            actor=actor.label,
            channel=actor.channel.value,
            organisation_id=organisation_id,
            data={"before": before or {}, "after": after or {}},
        )


def _role_in(memberships: Any, organisation_id: int | None) -> str:
    for membership in memberships:
        if organisation_id is None or membership.organisation_id == organisation_id:
            return str(membership.role)
    return OrgRole.MEMBER.value


def _first(memberships: Any) -> int | None:
    return min((m.organisation_id for m in memberships), default=None)


def _now() -> datetime:
    return datetime.now(UTC)
