"""Small ASGI middleware: request ids, request body limits and security headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import logs

MAX_BODY_BYTES = 256 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def describe_size(size: int) -> str:
    """``4 MiB``, ``1.5 MiB``, ``256 KiB``: a limit as people read it."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MiB"
    return f"{size // 1024} KiB"


class BodyLimit:
    """Answers 413 to an HTTP request whose body is larger than ``limit`` bytes.

    ``paths`` gives exact paths (the imports) their own limit and message.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        paths: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.paths = dict(paths or {})
        self.message = (
            f"The request is larger than {describe_size(limit)}, the most OpenDPIA accepts "
            "here; send less."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, message = self.paths.get(scope["path"], (self.limit, self.message))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, message)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, message)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, message: str) -> None:
    body = message.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A page that sets its own policy (the sign-in page's form may lead to an
                # identity provider) keeps it; the others get the default.
                headers = list(message.get("headers", []))
                own = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in SECURITY_HEADERS if h[0] not in own]
            await send(message)

        await self.app(scope, receive, with_headers)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# The scope key under which a request's id is kept (the log's context ends with the request).
REQUEST_ID = "opendpia.request_id"


class RequestIds:
    """Gives each HTTP request and WebSocket an id for the logs (``X-Request-ID``).

    A proxy's id is kept when it looks like one; the id is echoed on HTTP responses.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        token = logs.request_id.set(rid)
        document = logs.document_id.set(None)
        scope[REQUEST_ID] = rid  # for the page of an error that escapes this middleware

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        # Not on an error: it is logged further out (uvicorn, in this task), and its log
        # line must carry the id its error page gives as the reference.
        logs.request_id.reset(token)
        logs.document_id.reset(document)
