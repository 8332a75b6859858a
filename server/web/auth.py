"""The session cookie and the signed-in user of a request."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from server.services.accounts import CurrentUser
from server.web.runtime import Runtime

SESSION_COOKIE = "opendpia_session"


def runtime_of(connection: HTTPConnection) -> Runtime:
    runtime: Runtime = connection.state.runtime
    return runtime


async def current_user(connection: HTTPConnection) -> CurrentUser | None:
    secret = connection.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    return await runtime_of(connection).accounts.user_for_session(secret)


def same_origin(connection: HTTPConnection) -> bool:
    """False when a browser says the request comes from another site (WebSocket hijacking)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not a browser, or a same-origin navigation
    return urlsplit(origin).netloc == connection.headers.get("host", "")


async def sessions_ended(runtime: Runtime, user_id: int) -> None:
    """A person's sessions ended (signed out, a new password): every connection they opened
    with one is decided again, and closed, in every process."""
    for dpia_id in await runtime.dpias.documents_of(user_id):
        await runtime.rooms.access_changed(dpia_id)
