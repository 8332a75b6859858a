"""The ``opendpia`` command: serve, migrate, worker, bridge, administration, tokens.

The program sits above both packages: it is the one place that composes ``server`` with
``email_bridge`` (``server`` itself never imports the bridge).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from server import cli_admin, cli_protection, cli_serve, logs
from server.cli_bridge import run_child
from server.domain.access import Role, TokenSigner
from server.settings import Settings, SettingsError


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
        return asyncio.run(
            cli_admin.suspend(settings, args.email, args.command == "reinstate-user")
        )
    if args.command in (
        "create-org",
        "create-user",
        "grant-deployment-admin",
        "demo",
        "set-sign-in",
    ):
        return asyncio.run(cli_admin.administer(settings, args))
    if args.command in ("audit", "import", "export"):
        return asyncio.run(cli_admin.record(settings, args))
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
