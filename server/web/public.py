"""Pages anyone may read without signing in: the accessibility statement, and the page
for an address that does not exist.

The statement is a duty of the Public Sector Bodies (Websites and Mobile Applications)
Accessibility Regulations 2018 for the councils that run OpenDPIA; it follows GOV.UK's
sample statement and says how the service was tested, so that it is evidence rather than a
claim. Whom to tell about a problem is the deploying organisation's, from
``OPENDPIA_ACCESSIBILITY_CONTACT``.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from server.domain import wording
from server.storage.database import is_unreachable
from server.web.auth import current_user, runtime_of
from server.web.middleware import REQUEST_ID
from server.web.rendering import page

log = logging.getLogger("opendpia.web")
# How long a client is asked to wait before trying again when the database is unreachable.
RETRY_AFTER_SECONDS = 5

# When the statement was prepared and last reviewed: change it with the statement.
PREPARED = "2 December 2026"


async def _signed_in(request: Request) -> None:
    """Show the signed-in header on a public page, for someone who is signed in."""
    user = await current_user(request)
    if user is not None:
        request.state.user = user
        request.state.unread = await runtime_of(request).notifications.inbox.unread(user)


async def accessibility(request: Request) -> Response:
    await _signed_in(request)
    settings = runtime_of(request).settings
    return page(
        request,
        "accessibility.html",
        contact=settings.accessibility_contact,
        base_url=settings.base_url,
        prepared=PREPARED,
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """A page in the site's look (with its footer and language) for an unknown address a
    browser asked for, rather than Starlette's bare text; files, the API and clients that
    do not ask for HTML keep the plain answer."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    wants_page = "text/html" in request.headers.get("accept", "")
    if not wants_page or request.url.path.startswith(("/static/", "/api/")):
        return PlainTextResponse("Not Found", status_code=status)
    await _signed_in(request)
    message = (
        "There is no page at this address. Check it, or start again from your DPIAs."
        if status == 404
        else (exc.detail if isinstance(exc, HTTPException) else "Something is wrong.")
    )
    return page(request, "error.html", status, message=message, status=status)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """503, not 500, when the database could not be reached or its connection broke (a
    restart, a failover, no pooled connection free): nothing was done, and trying again in
    a moment works. Any other database error goes on to ``server_error``."""
    if not is_unreachable(exc):
        raise exc
    log.warning("%s %s: the database is unreachable: %r", request.method, request.url.path, exc)
    response = _problem(request, 503, wording.DATABASE_UNAVAILABLE)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """The page of an error nothing else handled, with the reference its log line has."""
    reference = str(request.scope.get(REQUEST_ID) or "none")
    return _problem(request, 500, wording.SERVER_ERROR.format(reference=reference))


def _problem(request: Request, status: int, message: str) -> Response:
    """An error in the form the client reads: JSON for the API, the site's page for a
    browser (without the signed-in header, which needs the database), else plain text."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    if "text/html" in request.headers.get("accept", ""):
        return page(request, "error.html", status, message=message, status=status)
    return PlainTextResponse(message, status_code=status)


routes = [Route("/accessibility", accessibility)]
