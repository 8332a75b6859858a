"""Mail pages: ``/dev/mail`` (what the development sink caught, development only) and
``/admin/mail`` (undelivered mail, for organisation administrators)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.services.outbox import failures_for
from server.storage.models import DevMail
from server.web.auth import runtime_of
from server.web.context import UserRequest, user_page
from server.web.rendering import page

LISTED = 200


def _available(request: Request) -> bool:
    return runtime_of(request).settings.env == "development"


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return runtime_of(request).sessions


async def mailbox(request: Request) -> Response:
    if not _available(request):
        return page(request, "error.html", 404, status=404, message="There is no such page.")
    async with _sessions(request)() as session:
        rows = (
            await session.scalars(select(DevMail).order_by(DevMail.id.desc()).limit(LISTED))
        ).all()
    mails = [(row, _parse(row.message)) for row in rows]
    return page(request, "devmail.html", mails=mails)


async def one_mail(request: Request) -> Response:
    if not _available(request) or not request.path_params["mail_id"].isdigit():
        return page(request, "error.html", 404, status=404, message="There is no such page.")
    async with _sessions(request)() as session:
        row = await session.get(DevMail, int(request.path_params["mail_id"]))
    if row is None:
        return page(request, "error.html", 404, status=404, message="No such message.")
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
        return page(request, "error.html", 404, status=404, message="There is no such page.")
    failures = await failures_for(runtime.sessions, organisations)
    return page(request, "admin_mail.html", failures=failures)


routes = [
    Route("/dev/mail", mailbox),
    Route("/dev/mail/{mail_id}", one_mail),
    Route("/admin/mail", failed_mail),
]
