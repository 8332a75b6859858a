"""The ``opendpia`` command: serve, migrate, worker, bridge, administration, tokens.

The program sits above both packages: it is the one place that composes ``server`` with
``email_bridge`` (``server`` itself never imports the bridge).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from server import cli_protection, cli_serve, logs
from server.cli_bridge import run_child
from server.domain.access import Role, TokenSigner
from server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from server.services.admin_records import Actor
    from server.services.administration import Administration
    from server.services.audit import AuditTrail
    from server.services.dpias import DpiaService
    from server.services.history import HistoryService
    from server.services.signoffs import SignOffService


def build_parser() -> argparse.ArgumentParser:
    """The command line (tests check deployment files against its subcommands)."""
    parser = argparse.ArgumentParser(prog="opendpia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server (and, embedded, everything)")
    serve.add_argument("--host", help="address to listen on (default: OPENDPIA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: OPENDPIA_PORT)")

    commands.add_parser("migrate", help="upgrade the database to the latest schema")

    org = commands.add_parser("create-org", help="create an organisation")
    org.add_argument("--code", required=True, help="2 to 12 letters or digits, e.g. CAM")
    org.add_argument("--name", required=True)
    org.add_argument(
        "--no-outside-partners",
        action="store_true",
        help="its DPIAs may invite only people of their parties",
    )

    user = commands.add_parser("create-user", help="create a user in an organisation")
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True)
    user.add_argument("--org", required=True, help="the organisation's code")
    user.add_argument("--admin", action="store_true", help="administrator of the organisation")
    user.add_argument(
        "--deployment-admin", action="store_true", help="manages every organisation, too"
    )
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user.add_argument(
        "--no-password",
        action="store_true",
        help="no local password: the person signs in through the organisation's provider",
    )
    user.add_argument(
        "--break-glass",
        action="store_true",
        help="the password works even where the organisation forbids passwords",
    )

    sso = commands.add_parser(
        "set-sign-in", help="sign an organisation's people in with its OpenID provider"
    )
    sso.add_argument("org", help="the organisation's code")
    sso.add_argument("--issuer", required=True, help="the provider's issuer (discovery) URL")
    sso.add_argument("--client-id", required=True)
    sso.add_argument("--client-secret", help="the client secret (omitted: keep the stored one)")
    sso.add_argument(
        "--client-secret-stdin",
        action="store_true",
        help="read the client secret from standard input (kept out of the process list)",
    )
    sso.add_argument(
        "--domain", action="append", required=True, help="an email domain (repeat for more)"
    )
    sso.add_argument("--tenant", default="", help="Entra ID: the only tenant (tid) accepted")
    sso.add_argument("--jit", action="store_true", help="create accounts at first sign-in")
    sso.add_argument("--admin-group", default="", help="groups claim value of administrators")
    sso.add_argument(
        "--forbid-passwords", action="store_true", help="no passwords but break-glass ones"
    )

    for name, what in (("suspend-user", "suspend"), ("reinstate-user", "reinstate")):
        person = commands.add_parser(name, help=f"{what} an account (its open editors follow)")
        person.add_argument("--email", required=True)

    grant = commands.add_parser(
        "grant-deployment-admin", help="let an account manage every organisation"
    )
    grant.add_argument("email")
    grant.add_argument("--revoke", action="store_true", help="take the standing away instead")

    demo = commands.add_parser("demo", help="seed demo organisations, people and a DPIA (once)")
    demo.add_argument(
        "--idp",
        help="issuer of the demo organisation's OpenID provider (make run starts one at "
        "http://127.0.0.1:8090)",
    )
    commands.add_parser("worker", help="deliver the mail outbox (when serve does not)")
    bridge = commands.add_parser(
        "bridge", help="receive email replies over SMTP/LMTP (when serve does not)"
    )
    # serve's own bridge child: its end of the link to serve (not for people to use)
    bridge.add_argument("--child-fd", type=int, default=None, help=argparse.SUPPRESS)
    bridge.add_argument("--listen", default="", help=argparse.SUPPRESS)

    token = commands.add_parser("token", help="print a signed collaboration token")
    token.add_argument("--dpia", required=True, help="the document (DPIA) id")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.EDITOR.value)
    token.add_argument(
        "--principal",
        default="cli",
        help="who the token speaks for; user:<id> or participant:<id> makes it a person's",
    )
    token.add_argument("--ttl", type=int, help="lifetime in seconds (OPENDPIA_TOKEN_TTL_SECONDS)")

    audit = commands.add_parser("audit", help="check the audit chains")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="verify chains; name the first break")
    verify.add_argument(
        "dpia",
        nargs="?",
        help="a DPIA's reference, or 'admin' for the administration's chain (default: all)",
    )

    imported = commands.add_parser("import", help="create a DPIA from a JSON export")
    imported.add_argument("file", help="the JSON export ('-' for standard input)")
    imported.add_argument("--as", dest="email", required=True, help="the user who will own it")
    imported.add_argument("--org", required=True, help="code of the lead organisation")

    exported = commands.add_parser("export", help="write a DPIA's record to standard output")
    exported.add_argument("dpia", help="the DPIA's reference")
    exported.add_argument("--as", dest="email", required=True, help="a participant's email")
    exported.add_argument("--format", choices=["json", "csv", "pdf", "docx"], default="json")

    cli_protection.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # serve's bridge child takes serve's settings as they are (a test's, too).
        child = args.command == "bridge" and args.child_fd is not None
        settings = Settings.from_env(os.environ, check=not child)
    except SettingsError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)

    if args.command == "serve":
        return cli_serve.serve(settings, args.host or settings.host, args.port or settings.port)
    if args.command == "migrate":
        from server.storage.database import migrate

        migrate(settings.database_url)
        print("database is at the latest schema")
        return 0
    if args.command == "worker":
        cli_serve.tune_gc()
        return asyncio.run(cli_serve.work(settings))
    if args.command == "bridge":
        cli_serve.tune_gc()
        if args.child_fd is not None:
            return asyncio.run(run_child(settings, args.child_fd, args.listen))
        return asyncio.run(cli_serve.bridge(settings))
    if args.command in ("suspend-user", "reinstate-user"):
        return asyncio.run(_suspend(settings, args.email, args.command == "reinstate-user"))
    if args.command in (
        "create-org",
        "create-user",
        "grant-deployment-admin",
        "demo",
        "set-sign-in",
    ):
        return asyncio.run(_administer(settings, args))
    if args.command in ("audit", "import", "export"):
        return asyncio.run(_record(settings, args))
    if args.command in cli_protection.COMMANDS:
        return asyncio.run(cli_protection.run(settings, args))
    signer = TokenSigner(settings.secret_key)
    # A token that stands in for a person lives as briefly as the page's tokens do, unless
    # asked otherwise; it is checked against the person's current access on every use.
    for_a_person = args.principal.startswith(("user:", "participant:"))
    default_ttl = settings.person_token_seconds if for_a_person else settings.token_ttl_seconds
    try:
        print(
            signer.issue(
                principal=args.principal,
                document_id=args.dpia,
                role=Role(args.role),
                ttl_seconds=args.ttl or default_ttl,
            )
        )
    except ValueError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    return 0


async def _suspend(settings: Settings, email: str, active: bool) -> int:
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


async def _administer(settings: Settings, args: argparse.Namespace) -> int:
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


async def _record(settings: Settings, args: argparse.Namespace) -> int:
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
    except DomainError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    except OSError as error:
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
