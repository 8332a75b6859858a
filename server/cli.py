"""The ``opendpia`` command: serve, migrate, worker, bridge, administration, tokens.

The program sits above both packages: it is the one place that composes ``server`` with
``email_bridge`` (``server`` itself never imports the bridge).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server import cli_protection, logs
from server.domain.access import Role, TokenSigner
from server.settings import Settings, SettingsError

GC_YOUNG_THRESHOLD = 2_000  # allocations between young collections (Python's default: 700)

if TYPE_CHECKING:
    import uvicorn
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from server.bootstrap import Service
    from server.services.audit import AuditTrail
    from server.services.dpias import DpiaService
    from server.services.history import HistoryService
    from server.services.signoffs import SignOffService
    from server.web.runtime import Runtime


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

    user = commands.add_parser("create-user", help="create a user in an organisation")
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True)
    user.add_argument("--org", required=True, help="the organisation's code")
    user.add_argument("--admin", action="store_true", help="administrator of the organisation")
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    for name, what in (("suspend-user", "suspend"), ("reinstate-user", "reinstate")):
        person = commands.add_parser(name, help=f"{what} an account (its open editors follow)")
        person.add_argument("--email", required=True)

    commands.add_parser("demo", help="seed demo organisations, people and a DPIA (once)")
    commands.add_parser("worker", help="deliver the mail outbox (when serve does not)")
    commands.add_parser("bridge", help="receive email replies over SMTP/LMTP (when serve does not)")

    token = commands.add_parser("token", help="print a signed collaboration token")
    token.add_argument("--dpia", required=True, help="the document (DPIA) id")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.EDITOR.value)
    token.add_argument(
        "--principal",
        default="cli",
        help="who the token speaks for; user:<id> or participant:<id> makes it a person's",
    )
    token.add_argument("--ttl", type=int, help="lifetime in seconds (OPENDPIA_TOKEN_TTL_SECONDS)")

    audit = commands.add_parser("audit", help="check a DPIA's audit chain")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="verify the chain; name the first break")
    verify.add_argument("dpia", help="the DPIA's reference")

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
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)

    if args.command == "serve":
        return _serve(settings, args.host or settings.host, args.port or settings.port)
    if args.command == "migrate":
        from server.storage.database import migrate

        migrate(settings.database_url)
        print("database is at the latest schema")
        return 0
    if args.command == "worker":
        _tune_gc()
        return asyncio.run(_work(settings))
    if args.command == "bridge":
        _tune_gc()
        return asyncio.run(_bridge(settings))
    if args.command in ("suspend-user", "reinstate-user"):
        return asyncio.run(_suspend(settings, args.email, args.command == "reinstate-user"))
    if args.command in ("create-org", "create-user", "demo"):
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
    from server.services.accounts import AccountService
    from server.services.dpias import DpiaService
    from server.storage.database import create_engine
    from server.storage.redisbus import RedisBus
    from server.storage.updates import SqlUpdateStore

    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        user_id = await AccountService(sessions).set_active(email, active)
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
    from server.services.audit import AuditTrail
    from server.services.demo import DEMO_PASSWORD, ORGANISATIONS, PEOPLE, seed_demo
    from server.storage.database import create_engine, migrate
    from server.storage.updates import SqlUpdateStore

    if settings.migrate_on_start:
        await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions)
    try:
        if args.command == "create-org":
            await accounts.create_organisation(args.code, args.name)
            print(f"organisation {args.code.upper()} created")
        elif args.command == "create-user":
            password = (
                sys.stdin.readline().rstrip("\n")
                if args.password_stdin
                else getpass.getpass("Password (12 characters or more): ")
            )
            await accounts.create_user(args.email, args.name, password, args.org, admin=args.admin)
            print(f"user {args.email.strip().lower()} created")
        else:
            *_, signoffs = _record_services(settings, engine, sessions, AuditTrail(sessions))
            dpia_id = await seed_demo(sessions, SqlUpdateStore(engine), signoffs)
            url = f"http://{settings.host}:{settings.port}/login"
            if dpia_id is None:
                print(f"The demo exists already. Sign in at {url}")
            else:
                print(f"Demo ready: {dpia_id}. Sign in at {url} with any of:")
            names = dict(ORGANISATIONS)
            for person in PEOPLE:
                admin = "  (administrator: reads /dev/mail)" if person.admin else ""
                print(
                    f"  {person.email:<32} {person.role.label:<10} "
                    f"{names[person.organisation]:<36} password {DEMO_PASSWORD}{admin}"
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
            broken = await audit.verify(args.dpia)
            count = len(await audit.entries(args.dpia))
            if broken is not None:
                print(f"{args.dpia}: audit chain broken at {broken}", file=sys.stderr)
                return 1
            print(f"{args.dpia}: audit chain of {count} events holds")
            return 0
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


async def _work(settings: Settings) -> int:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.bootstrap import notification_service, outbox_worker
    from server.storage.database import create_engine, migrate

    if settings.migrate_on_start:
        await asyncio.to_thread(migrate, settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    worker = outbox_worker(settings, sessions)
    notifications = notification_service(settings, sessions, worker)
    logging.getLogger("opendpia").info("mail worker started")
    _serve_metrics(settings)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.run(asyncio.Event()))
            tasks.create_task(notifications.digests.run(asyncio.Event()))
    finally:
        await engine.dispose()
    return 0


def bridge_service(settings: Settings, *, embedded: bool = True) -> Service:
    """The email bridge as a service of the runtime (the CLI composes both packages)."""
    from email_bridge.service import Bridge
    from server.metrics import BRIDGE_MESSAGES

    def start(runtime: Runtime) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        bridge = Bridge(
            settings,
            runtime.inbound,
            runtime.usecases.comments,
            runtime.notifications,
            on_queued=runtime.notifications.queued,
            embedded=embedded,
            on_outcome=lambda outcome: BRIDGE_MESSAGES.labels(outcome=outcome).inc(),
        )
        return bridge.run

    return start


async def _bridge(settings: Settings) -> int:
    from server.bootstrap import open_runtime

    logging.getLogger("opendpia").info("email bridge starting")
    _serve_metrics(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with open_runtime(settings, [bridge_service(settings, embedded=False)], web=False):
        await stop.wait()
    return 0


def _tune_gc() -> None:
    """Keep the cyclic garbage collector's pauses short in a long-running process.

    Everything loaded at startup (modules, templates, metadata) is frozen out of the
    collector's full scans, and the young generation is collected after 2,000 allocations
    rather than 700, so fewer messages in flight are promoted. With Python's defaults, a
    process holding a thousand rooms stopped for 100 to 200 ms at each full collection,
    every few seconds (bench/README.md has the runs behind the numbers chosen).
    """
    import gc

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def _serve_metrics(settings: Settings) -> None:
    """Commands without a web server (worker, bridge) expose /metrics on their own port."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    config = uvicorn_config(settings, host=host, port=port)
    _tune_gc()  # once the application is built: what it loaded is frozen too
    uvicorn.Server(config).run()
    return 0


def uvicorn_config(settings: Settings, **overrides: object) -> uvicorn.Config:
    """The uvicorn configuration the server runs with (tests use it too)."""
    import uvicorn

    from server.bootstrap import create_app

    services = [bridge_service(settings)] if settings.bridge_in_process else []
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        # Behind a proxy that terminates TLS, its X-Forwarded-Proto and X-Forwarded-For make
        # request.url.scheme https (wss URLs for the editor) and request.client the browser
        # (per-address sign-in throttling), but only from the addresses trusted here.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        # The sans-I/O websockets implementation is the cheapest per message (bench/README).
        "ws": "websockets-sansio",
        "ws_max_size": settings.max_frame_bytes,
        "ws_ping_interval": settings.ws_ping_seconds,
        "ws_ping_timeout": settings.ws_ping_seconds,
        "lifespan": "on",
        "log_level": settings.log_level,
        "log_config": None,  # keep the root configuration (and its redaction filter)
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    options.update(overrides)
    return uvicorn.Config(create_app(settings, services), **options)  # type: ignore[arg-type]
