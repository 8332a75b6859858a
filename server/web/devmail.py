"""Mail pages: ``/dev/mail`` (what the development sink caught) and ``/admin/mail``
(undelivered mail), for organisation administrators.

The development mailbox holds sign-in links, password reset links and personal reply
addresses, so its routes exist only in development (``app.py`` leaves them out otherwise)
and answer only signed-in administrators; anyone else signed in gets 404.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.errors import InvalidInput
from server.domain.inputs import whole_number
from server.services.outbox import failures_for
from server.storage.models import DevMail
from server.web.auth import runtime_of
from server.web.context import UserRequest, signed_in, user_page
from server.web.rendering import page

LISTED = 200


def _available(request: Request) -> bool:
    return runtime_of(request).settings.env == "development"


def _no_such_page(request: Request) -> Response:
    return page(request, "error.html", 404, status=404, message="There is no such page.")


async def _administrator(request: Request) -> Response | None:
    """None for a signed-in administrator in development; else the answer to give."""
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    if not _available(request) or not await runtime_of(request).accounts.administered(user):
        return _no_such_page(request)
    return None


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return runtime_of(request).sessions


async def mailbox(request: Request) -> Response:
    if (refused := await _administrator(request)) is not None:
        return refused
    async with _sessions(request)() as session:
        rows = (
            await session.scalars(select(DevMail).order_by(DevMail.id.desc()).limit(LISTED))
        ).all()
    mails = [(row, _parse(row.message)) for row in rows]
    return page(request, "devmail.html", mails=mails)


async def one_mail(request: Request) -> Response:
    if (refused := await _administrator(request)) is not None:
        return refused
    try:
        mail_id = whole_number(request.path_params["mail_id"], "The message number")
    except InvalidInput:
        return _no_such_page(request)
    async with _sessions(request)() as session:
        row = await session.get(DevMail, mail_id)
    if row is None:
        return page(
            request,
            "error.html",
            404,
            status=404,
            message="There is no such message in the development mailbox.",
        )
    message = _parse(row.message)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return page(
        request,
        "devmail_one.html",
        mail=row,
        message=message,
        headers=list(message.items()),
        text=text.get_content() if text else "",
        html=html.get_content() if html else None,
    )


def _parse(raw: bytes) -> EmailMessage:
    message: EmailMessage = message_from_bytes(raw, policy=policy.default)
    return message


@user_page
async def failed_mail(context: UserRequest) -> Response:
    """Undelivered mail about DPIAs led by an organisation the user administers."""
    request, runtime = context.request, context.runtime
    organisations = await runtime.accounts.administered(context.user)
    if not organisations:
        return _no_such_page(request)
    failures = await failures_for(runtime.sessions, organisations)
    return page(request, "admin_mail.html", failures=failures)


routes = [Route("/admin/mail", failed_mail)]
development_routes = [
    Route("/dev/mail", mailbox),
    Route("/dev/mail/{mail_id}", one_mail),
]
