"""What a handler starts from, resolved once per request.

A page or API route declares what it needs with one decorator and receives it typed:

- ``user_page`` / ``user_api``: a ``UserRequest`` (the request, the runtime, the signed-in
  user); a page sends a visitor who is not signed in to sign in, the API answers 401.
- ``dpia_page`` / ``dpia_api``: a ``DpiaRequest``, which adds the user's standing on the
  DPIA named by the path (``{dpia_id}``) as a use-case ``Member``; someone who does not
  take part gets 404, never 403 (decision 15).
- ``json_api``: only the error mapping, for a route that authenticates otherwise (the
  comments API also takes API tokens).

A domain error raised anywhere in the handler becomes the error page, or the JSON error,
with the status of ``web.errors``; handlers catch one only to show it inside a form.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server import logs
from server.domain.errors import DomainError, InvalidToken
from server.domain.protection import delete_policy
from server.services.accounts import CurrentUser
from server.services.dpias import Access
from server.usecases.participants import Member
from server.web.auth import current_user, runtime_of
from server.web.rendering import json_error, render_error
from server.web.runtime import Runtime

Endpoint = Callable[[Request], Awaitable[Response]]
Context = TypeVar("Context", bound="UserRequest")


@dataclass(frozen=True, slots=True)
class UserRequest:
    request: Request
    runtime: Runtime
    user: CurrentUser


@dataclass(frozen=True, slots=True)
class DpiaRequest(UserRequest):
    member: Member  # the user and their standing on the DPIA of the path

    @property
    def access(self) -> Access:
        return self.member.access

    @property
    def dpia_id(self) -> str:
        return self.member.dpia_id


async def signed_in(request: Request) -> CurrentUser | Response:
    """The signed-in user (and the header's unread count), or the way to sign in."""
    user = await current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    request.state.user = user
    runtime = runtime_of(request)
    request.state.unread = await runtime.notifications.inbox.unread(user)
    # The header links to administration for those who administer anything.
    request.state.administers = (await runtime.administration.standing(user.id)).administers_any()
    return user


async def api_user(request: Request, unknown: str = "Sign in first") -> CurrentUser:
    user = await current_user(request)
    if user is None:
        raise InvalidToken(unknown)
    return user


async def user_request(request: Request, user: CurrentUser) -> UserRequest:
    return UserRequest(request, runtime_of(request), user)


async def dpia_request(request: Request, user: CurrentUser) -> DpiaRequest:
    """The user's standing on the DPIA of the path; DocumentNotFound if they take no part."""
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    logs.document_id.set(dpia_id[:100])
    member = await runtime.usecases.participants.member(user, dpia_id)
    return DpiaRequest(request, runtime, user, member)


async def retention_context(context: DpiaRequest) -> dict[str, Any]:
    """What ``_retention.html`` shows: the DPIA's retention, and whether the user may delete
    it now (asking the rule, never deciding here)."""
    retention = await context.runtime.usecases.protection.retention.view(context.dpia_id)
    now = datetime.now(UTC)
    try:
        delete_policy(context.access.role, context.access.status, retention.expired(now))
        deletable = True
    except DomainError:
        deletable = False
    return {
        "retention": retention,
        "retention_expired": retention.expired(now),
        "deletable": deletable,
    }


def json_api(handler: Endpoint) -> Endpoint:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except DomainError as error:
            return json_error(error)

    return endpoint


def _page(
    resolve: Callable[[Request, CurrentUser], Awaitable[Context]],
    handler: Callable[[Context], Awaitable[Response]],
) -> Endpoint:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        user = await signed_in(request)
        if isinstance(user, Response):
            return user
        try:
            return await handler(await resolve(request, user))
        except DomainError as error:
            return render_error(request, error)

    return endpoint


def _api(
    resolve: Callable[[Request, CurrentUser], Awaitable[Context]],
    handler: Callable[[Context], Awaitable[Response]],
) -> Endpoint:
    @json_api
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        return await handler(await resolve(request, await api_user(request)))

    return endpoint


def user_page(handler: Callable[[UserRequest], Awaitable[Response]]) -> Endpoint:
    return _page(user_request, handler)


def dpia_page(handler: Callable[[DpiaRequest], Awaitable[Response]]) -> Endpoint:
    return _page(dpia_request, handler)


def user_api(handler: Callable[[UserRequest], Awaitable[Response]]) -> Endpoint:
    return _api(user_request, handler)


def dpia_api(handler: Callable[[DpiaRequest], Awaitable[Response]]) -> Endpoint:
    return _api(dpia_request, handler)
