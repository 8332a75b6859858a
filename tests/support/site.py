"""A live server with two organisations, people in every role, and one DPIA."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import websockets
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.live import CLIENT_TLS, WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.yclient import YClient

PASSWORD = "correct horse battery"
ROLES = ("editor", "commenter", "viewer", "dpo")


@dataclass
class Site:
    dpia_id: str
    emails: dict[str, str] = field(default_factory=dict)  # role -> email; "owner", "outsider"


async def seed_site(database_url: str) -> Site:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    cam = await accounts.create_organisation("CAM", "London Borough of Camden")
    await accounts.create_organisation("NLFT", "North London NHS Foundation Trust")
    emails = {"owner": "owner@camden.example", "outsider": "outsider@nlft.example"}
    owner_id = await accounts.create_user(emails["owner"], "Olive Owner", PASSWORD, "CAM")
    await accounts.create_user(emails["outsider"], "Oscar Outsider", PASSWORD, "NLFT")
    owner = CurrentUser(owner_id, emails["owner"], "Olive Owner", (cam,))
    dpia_id = await dpias.create(owner, "Shared DPIA", cam)
    for role in ROLES:
        emails[role] = f"{role}@nlft.example"
        await accounts.create_user(emails[role], f"{role.title()} Person", PASSWORD, "NLFT")
        await dpias.invite(owner, dpia_id, emails[role], role)
    await engine.dispose()
    return Site(dpia_id, emails)


@contextlib.contextmanager
def seeded_server(database_url: str, **settings: object) -> Iterator[tuple[LiveServer, Site]]:
    """The app under uvicorn on a migrated, seeded database (``seed_site``)."""
    prepare(database_url)
    site = asyncio.run(seed_site(database_url))
    with serving(make_settings(database_url, **settings)) as live:
        yield live, site


def prepare(database_url: str) -> None:
    migrate(database_url)


async def signed_in(base_url: str, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
    """An HTTP client with a session for ``email`` (and its CSRF cookie)."""
    client = httpx.AsyncClient(
        base_url=base_url, follow_redirects=False, timeout=WAIT_SECONDS, verify=CLIENT_TLS
    )
    page = await client.get("/login")
    token = csrf_field(page.text)
    response = await client.post(
        "/login", data={"csrftoken": token, "email": email, "password": password}
    )
    assert response.status_code == 303, response.text
    return client


def csrf_field(html: str) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def session_socket(
    port: int, dpia_id: str, client: httpx.AsyncClient, *, sync: bool = True, **headers: str
) -> YClient:
    """A y-websocket client on the collaboration endpoint with ``client``'s session cookie."""
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    websocket = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/dpia/{dpia_id}?saved=1",
        additional_headers={"cookie": cookie, **headers},
        max_size=None,
    )
    return await YClient.attach(websocket, sync=sync)


async def manage_participant(
    owner: httpx.AsyncClient, dpia_id: str, email: str, **data: str
) -> None:
    """Act on one participant (``email``) through the owner's participants page (a removal
    confirmed, as its confirmation page does)."""
    path = f"/dpias/{dpia_id}/participants"
    page = (await owner.get(path)).text
    person = page.split(email, 1)[1].split('name="participant" value="', 1)[1].split('"', 1)[0]
    confirm = {"confirm": "yes"} if data.get("action") == "remove" else {}
    response = await owner.post(
        path, data={"csrftoken": csrf_field(page), "participant": person, **confirm, **data}
    )
    assert response.status_code == 303, response.text
