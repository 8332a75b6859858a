"""The data protection commands of ``opendpia`` (decisions 92-95): retention, deleting a
DPIA, erasing a person and a subject access export.

Each runs the use case through a runtime of its own (``open_runtime(web=False)``), as the
deployment's administrator: whoever can run commands on the server can read the database.
With a shared bus, the web processes' open connections are told; without one, a running
server's rooms that had the DPIA loaded keep what they showed until they unload.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.settings import Settings

COMMANDS = ("retention", "delete-dpia", "erase-person", "subject-access")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = commands.add_parser("retention", help="retention of closed DPIAs")
    steps = retention.add_subparsers(dest="retention_command", required=True)
    steps.add_parser("run", help="archive closed DPIAs whose retention ended; list them")
    months = steps.add_parser("set", help="set an organisation's retention period")
    months.add_argument("--org", required=True, help="the organisation's code")
    months.add_argument("--months", required=True, help="whole months, or 'default'")

    delete = commands.add_parser("delete-dpia", help="delete a draft, or an expired closed DPIA")
    delete.add_argument("dpia", help="the DPIA's reference")
    delete.add_argument("--as", dest="email", required=True, help="an owner's email")
    delete.add_argument("--yes", action="store_true", help="confirm: nothing is deleted without")

    erase = commands.add_parser("erase-person", help="replace a person with a pseudonym")
    erase.add_argument("email")
    erase.add_argument("--yes", action="store_true", help="confirm: nothing changes without")

    access = commands.add_parser("subject-access", help="export everything held about someone")
    access.add_argument("email")
    access.add_argument("--zip", dest="zip_path", help="write a ZIP (JSON and attachments) here")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from server.bootstrap import open_runtime
    from server.domain.errors import DomainError
    from server.domain.protection import check_retention_months
    from server.usecases.protection import ConfirmationNeeded

    async with open_runtime(settings, web=False) as runtime:
        protection = runtime.usecases.protection
        try:
            if args.command == "retention" and args.retention_command == "set":
                value = None if args.months == "default" else check_retention_months(args.months)
                await protection.retention.set_months(
                    args.org.upper(), value, actor=f"cli:{login_name()}", channel="cli"
                )
                months = await protection.retention.months_of(args.org.upper())
                print(f"{args.org.upper()} keeps closed DPIAs for {months} months")
            elif args.command == "retention":
                waiting = await protection.archive_expired()
                for view in waiting:
                    print(f"{view.dpia_id}\texpired {view.expires_at:%Y-%m-%d}\tawaits deletion")
                print(f"{len(waiting)} DPIAs wait for an owner to confirm deletion")
            elif args.command == "delete-dpia":
                user = await runtime.accounts.user_by_email(args.email)
                if user is None:
                    print(f"opendpia: no active user {args.email}", file=sys.stderr)
                    return 2
                gone = await protection.delete(user, args.dpia, confirmed=args.yes)
                print(f"{gone.reference} deleted ({gone.rule}); its tombstone stays")
            elif args.command == "erase-person":
                report = await protection.erase(None, args.email, confirmed=args.yes)
                changed = ", ".join(f"{t} {n}" for t, n in sorted(report.records.items()))
                print(f"erased: now {report.pseudonym} in {len(report.dpias)} DPIAs ({changed})")
                for where in report.still_named:
                    print(f"typed text still names them (the owners' to edit): {where}")
            else:
                export = await protection.export_person(args.email)
                if args.zip_path:
                    await asyncio.to_thread(Path(args.zip_path).write_bytes, export.to_zip())
                    print(f"written to {args.zip_path}")
                else:
                    sys.stdout.buffer.write(export.to_json() + b"\n")
            return 0
        except ConfirmationNeeded as needed:
            print(f"opendpia: nothing changed: {needed} (add --yes)", file=sys.stderr)
            return 1
        except DomainError as error:
            print(f"opendpia: {error}", file=sys.stderr)
            return 2


def login_name() -> str:
    """Who runs the command, as the administration's audit chain names them."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
