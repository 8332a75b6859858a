"""The ``opendpia`` commands that administer an installation and its records.

Accounts and organisations (``create-org``, ``create-user``, ``grant-deployment-admin``,
``suspend-user``, ``reinstate-user``, ``set-sign-in``, ``demo``), and a DPIA's record
(``audit`` verifies its chains, ``export`` and ``import`` carry it between installations).
Each is written as the command-line actor through the same services the web uses.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from server import cli_protection
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from server.services.admin_records import Actor
    from server.services.administration import Administration
    from server.services.audit import AuditTrail
    from server.services.dpias import DpiaService
    from server.services.history import HistoryService
    from server.services.signoffs import SignOffService


async def suspend(settings: Settings, email: str, active: bool) -> int:
    """Suspend or reinstate an account, then tell every web process to decide its open
    connections again (over the Redis bus; an embedded process, with nothing to carry the
    news, decides again within OPENDPIA_ACCESS_RECHECK_SECONDS)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.domain.bus import BusKind
    from server.domain.errors import DomainError
    from server.services.dpias import DpiaService
    from server.storage.database import create_engine
    from server.storage.redisbus import RedisBus
    from server.storage.updates import SqlUpdateStore

    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        administration = _administration(settings, sessions)
        user_id = await administration.user_id(email)
        await administration.set_active(_cli_actor(), user_id, active)
        documents = await DpiaService(sessions, SqlUpdateStore(engine)).documents_of(user_id)
    except DomainError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    print(f"{email.strip().lower()} is {'reinstated' if active else 'suspended'}")
    if settings.redis_url:
        bus = RedisBus(settings.redis_url, prefix=settings.redis_prefix)
        try:
            for dpia_id in documents:
                await bus.publish_now(dpia_id, BusKind.ACCESS, b"")
        finally:
            await bus.close()
        print(f"the open connections to {len(documents)} DPIAs were told")
    elif not active and documents:
        print(
            "without a shared bus, open editors close within "
            f"{settings.access_recheck_seconds:g} s (OPENDPIA_ACCESS_RECHECK_SECONDS)"
        )
    return 0


async def administer(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.domain.errors import DomainError
    from server.services.accounts import AccountService
    from server.services.admin_audit import AdminAuditTrail
    from server.services.audit import AuditTrail
    from server.services.demo import (
        DEMO_IDP,
        DEMO_PASSWORD,
        JUST_IN_TIME,
        ORGANISATIONS,
        PEOPLE,
        seed_demo,
    )
    from server.storage.database import create_engine, migrate
    from server.storage.updates import SqlUpdateStore
    from server.usecases.demo import (
        PROJECT_PEOPLE,
        PROJECT_TITLE,
        REVIEWING_BODY,
        seed_demo_project,
    )

    if settings.migrate_on_start:
        await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    administration, actor = _administration(settings, sessions), _cli_actor()
    try:
        if args.command == "create-org":
            created = await administration.create_organisation(
                actor, args.code, args.name, outside_partners=not args.no_outside_partners
            )
            print(f"organisation {created.code} created")
        elif args.command == "create-user":
            organisation = await administration.organisation(actor, args.org)
            password = (
                None
                if args.no_password
                else sys.stdin.readline().rstrip("\n")
                if args.password_stdin
                else getpass.getpass("Password (12 characters or more): ")
            )
            role = "admin" if args.admin else "member"
            await administration.invite(
                actor, organisation.id, args.email, args.name, role, password=password
            )
            if args.break_glass:
                await AccountService(sessions).set_break_glass(args.email, True)
            if args.deployment_admin:
                await administration.set_deployment_admin(actor, args.email, True)
            print(f"user {args.email.strip().lower()} created")
        elif args.command == "grant-deployment-admin":
            await administration.set_deployment_admin(actor, args.email, not args.revoke)
            what = "no longer manages" if args.revoke else "now manages"
            print(f"{args.email.strip().lower()} {what} every organisation")
        elif args.command == "set-sign-in":
            from server.services.signin import SignInDirectory

            saved = await SignInDirectory(
                sessions, on_change=AdminAuditTrail(sessions).append
            ).save(
                args.org,
                actor="cli",
                channel="cli",
                issuer=args.issuer,
                client_id=args.client_id,
                client_secret=sys.stdin.readline().strip()
                if args.client_secret_stdin
                else args.client_secret,
                domains=" ".join(args.domain),
                tenant=args.tenant,
                jit=args.jit,
                admin_group=args.admin_group,
                forbid_passwords=args.forbid_passwords,
            )
            print(
                f"{saved.organisation_code} signs in through {saved.issuer} for "
                f"{', '.join(saved.domains)}; redirect URI to register: "
                f"{settings.base_url.rstrip('/')}/login/oidc/callback"
            )
        else:
            *_, signoffs = _record_services(settings, engine, sessions, AuditTrail(sessions))
            idp = args.idp or DEMO_IDP
            store = SqlUpdateStore(engine)
            dpia_id = await seed_demo(sessions, store, signoffs, idp)
            project = await seed_demo_project(
                sessions,
                store,
                signoffs,
                base_url=settings.base_url,
                mail_from=settings.mail_from,
                password=DEMO_PASSWORD,
            )
            await store.close()
            url = f"http://{settings.host}:{settings.port}/login"
            if dpia_id is None and project is None:
                print(f"The demo exists already. Sign in at {url}")
            else:
                print(f"Demo ready. Sign in at {url} with any of:")
            names = dict(ORGANISATIONS) | {REVIEWING_BODY[0]: REVIEWING_BODY[1]}
            for person in PEOPLE + PROJECT_PEOPLE:
                if person.provider_login:
                    continue
                admin = "  (administrator: /admin, /dev/mail)" if person.admin else ""
                print(
                    f"  {person.email:<32} {person.role.label:<10} "
                    f"{names[person.organisation]:<36} password {DEMO_PASSWORD}{admin}"
                )
            print(
                f"Single sign-on: {names['ISL']} signs its people in through its own OpenID "
                f"provider at {idp} (make run starts it). Type only the email on the sign-in "
                "page, then sign in at the provider's page with:"
            )
            for person in [p for p in PEOPLE if p.provider_login] + [JUST_IN_TIME]:
                note = (
                    "edits the demo DPIA; administers Islington through the provider's group"
                    if person.admin
                    else "no OpenDPIA account yet: the first sign-in makes one"
                )
                print(
                    f"  {person.email:<32} login {person.provider_login:<4} "
                    f"password {DEMO_PASSWORD}  ({note})"
                )
            print(
                f"The project {PROJECT_TITLE!r} is at step 5: its DPIA and ISA drafted from "
                "steps 1-3, the trust's DPO has signed the DPIA. Sign in as "
                "dpo@camden.example to sign it for Camden (Projects, then Sign-off); "
                f"{PROJECT_PEOPLE[0].email} reviews it for the steering group."
            )
            if settings.uses_dev_mailbox:
                print(
                    f"Mail the app sends is caught, not delivered: read it at "
                    f"http://{settings.host}:{settings.port}/dev/mail (signed in as the "
                    "administrator above)."
                )
        return 0
    except DomainError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def _record_services(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
) -> tuple[DpiaService, HistoryService, SignOffService]:
    """The sign-off service and what it stands on, for the commands that run without the
    web app (``demo``, ``export``, ``import``)."""
    from server.services.dpias import DpiaService
    from server.services.history import HistoryService
    from server.services.notifications import NotificationService
    from server.services.signoffs import SignOffService
    from server.storage.updates import SqlUpdateStore

    store = SqlUpdateStore(engine)
    dpias = DpiaService(sessions, store)
    history = HistoryService(sessions, store, audit)
    notifications = NotificationService(
        sessions,
        base_url=settings.base_url,
        mail_from=settings.mail_from,
        secret_key=settings.secret_key,
    )
    return dpias, history, SignOffService(sessions, dpias, history, audit, notifications)


async def record(settings: Settings, args: argparse.Namespace) -> int:
    """``audit verify``, ``import`` and ``export``: the record, outside the web app."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.domain.errors import DomainError
    from server.services.accounts import AccountService
    from server.services.audit import AuditTrail
    from server.services.exports import ExportService
    from server.storage.database import create_engine, migrate

    if settings.migrate_on_start:
        await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    audit = AuditTrail(sessions)
    try:
        if args.command == "audit":
            return await _verify(sessions, audit, args.dpia)
        accounts = AccountService(sessions)
        user = await accounts.user_by_email(args.email)
        if user is None:
            print(f"opendpia: no active user {args.email}", file=sys.stderr)
            return 2
        dpias, history, signoffs = _record_services(settings, engine, sessions, audit)
        exports = ExportService(sessions, dpias, history, signoffs, audit)
        if args.command == "export":
            data, _, _ = await exports.export(user, args.dpia, args.format)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return 0
        raw = (
            sys.stdin.buffer.read()
            if args.file == "-"
            else await asyncio.to_thread(Path(args.file).read_bytes)
        )
        lead = await accounts.organisation_id(args.org)
        dpia_id = await exports.import_json(user, raw, lead)
        print(dpia_id)
        return 0
    except (DomainError, OSError) as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def _administration(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Administration:
    """Organisations and people, for the commands that change them (each change audited
    with the channel ``cli``)."""
    from server.services.admin_audit import AdminAuditTrail
    from server.services.administration import Administration
    from server.services.passwords import PasswordResets
    from server.services.signin import SignInDirectory

    passwords = PasswordResets(sessions, base_url=settings.base_url, mail_from=settings.mail_from)
    audit = AdminAuditTrail(sessions)
    signin = SignInDirectory(sessions, on_change=audit.append)
    return Administration(sessions, passwords, audit, signs_in_elsewhere=signin.signs_in_elsewhere)


def _cli_actor() -> Actor:
    """Whoever runs the command, as a deployment administrator (they hold the database)."""
    from server.services.admin_records import Actor

    return Actor.command_line(cli_protection.login_name())


async def _verify(
    sessions: async_sessionmaker[AsyncSession], audit: AuditTrail, which: str | None
) -> int:
    """``audit verify [DPIA | admin]``: one chain, or every chain (the administration's and
    each DPIA's); exit 1 naming the first broken link of each chain that does not hold."""
    from sqlalchemy import select

    from server.services.admin_audit import AdminAuditTrail
    from server.storage.models import Dpia

    admin = AdminAuditTrail(sessions)
    if which is None:
        async with sessions() as session:
            chains = [admin.chain, *(await session.scalars(select(Dpia.id).order_by(Dpia.id)))]
    else:
        chains = [admin.chain if which in ("admin", admin.chain) else which]
    failed = 0
    for chain in chains:
        if chain == admin.chain:
            broken, count = await admin.verify(), len(await admin.entries())
        else:
            broken, count = await audit.verify(chain), len(await audit.entries(chain))
        if broken is not None:
            print(f"{chain}: audit chain broken at {broken}", file=sys.stderr)
            failed += 1
        else:
            print(f"{chain}: audit chain of {count} events holds")
    return 1 if failed else 0
