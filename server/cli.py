"""The ``opendpia`` command: serve, migrate, token."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from server import logs
from server.domain.access import Role, TokenSigner
from server.settings import Settings, SettingsError

if TYPE_CHECKING:
    import uvicorn


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opendpia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server (and, embedded, everything)")
    serve.add_argument("--host", help="address to listen on (default: OPENDPIA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: OPENDPIA_PORT)")

    commands.add_parser("migrate", help="upgrade the database to the latest schema")

    token = commands.add_parser("token", help="print a signed collaboration token")
    token.add_argument("--dpia", required=True, help="the document (DPIA) id")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.EDITOR.value)
    token.add_argument("--principal", default="cli", help="who the token speaks for")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (OPENDPIA_TOKEN_TTL_SECONDS)")

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)

    if args.command == "serve":
        return _serve(settings, args.host or settings.host, args.port or settings.port)
    if args.command == "migrate":
        from server.storage.database import migrate

        migrate(settings.database_url)
        print("database is at the latest schema")
        return 0
    signer = TokenSigner(settings.secret_key)
    try:
        print(
            signer.issue(
                principal=args.principal,
                document_id=args.dpia,
                role=Role(args.role),
                ttl_seconds=args.ttl or settings.token_ttl_seconds,
            )
        )
    except ValueError as error:
        print(f"opendpia: {error}", file=sys.stderr)
        return 2
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    config = uvicorn_config(settings, host=host, port=port)
    uvicorn.Server(config).run()
    return 0


def uvicorn_config(settings: Settings, **overrides: object) -> uvicorn.Config:
    """The uvicorn configuration the server runs with (tests use it too)."""
    import uvicorn

    from server.bootstrap import create_app

    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
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
    return uvicorn.Config(create_app(settings), **options)  # type: ignore[arg-type]
