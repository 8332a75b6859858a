"""Sign-in throttling is per client and account: a guesser is stopped, the person is not.

Clients are told apart by address: each test client connects from its own loopback
address (127.0.0.2, 127.0.0.3, ...), as people on different networks would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio

from server.services.accounts import MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_CLIENT
from tests.support.live import LiveServer
from tests.support.site import PASSWORD, Site, csrf_field, seeded_server

pytestmark = pytest.mark.asyncio

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


@pytest_asyncio.fixture
async def client_from(server: tuple[LiveServer, Site]) -> AsyncIterator[Client]:
    """An HTTP client whose connections come from the given loopback address."""
    live, _ = server
    opened: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{live.port}",
            transport=httpx.AsyncHTTPTransport(local_address=address),
        )
        opened.append(client)
        return client

    try:
        yield make
    finally:
        for client in opened:
            await client.aclose()


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = csrf_field((await client.get("/login")).text)
    return await client.post(
        "/login", data={"csrftoken": token, "email": email, "password": password}
    )


async def test_a_guesser_is_throttled_and_the_person_still_signs_in_from_elsewhere(
    server: tuple[LiveServer, Site], client_from: Client
) -> None:
    victim_email = server[1].emails["viewer"]
    attacker = client_from("127.0.0.2")
    statuses = [
        (await _sign_in(attacker, victim_email, f"guess {n}")).status_code
        for n in range(MAX_FAILURES_PER_CLIENT)
    ]
    assert statuses == [403] * MAX_FAILURES_PER_CLIENT
    throttled = await _sign_in(attacker, victim_email, PASSWORD)  # even the right password
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in throttled.text

    victim = client_from("127.0.0.3")
    signed_in = await _sign_in(victim, victim_email, PASSWORD)
    assert signed_in.status_code == 303
    assert (await victim.get("/dpias")).status_code == 200
    # The person's success does not reset the guesser's count.
    assert (await _sign_in(attacker, victim_email, "one more guess")).status_code == 429


async def test_one_client_guessing_many_accounts_is_throttled(
    server: tuple[LiveServer, Site], client_from: Client
) -> None:
    attacker = client_from("127.0.0.4")
    for n in range(MAX_FAILURES_PER_ADDRESS):
        # Fewer than the per-account limit on each account: only the client's total counts.
        response = await _sign_in(attacker, f"person{n}@camden.example", "guess")
        assert response.status_code == 403, n
    throttled = await _sign_in(attacker, server[1].emails["owner"], PASSWORD)
    assert throttled.status_code == 429 and "retry-after" in throttled.headers
    # Another client signs in to that account as usual.
    other = client_from("127.0.0.5")
    assert (await _sign_in(other, server[1].emails["owner"], PASSWORD)).status_code == 303


async def test_behind_the_proxy_clients_are_told_apart_by_x_forwarded_for_and_only_there(
    server: tuple[LiveServer, Site], client_from: Client
) -> None:
    email = server[1].emails["editor"]
    proxy = client_from("127.0.0.1")  # OPENDPIA_FORWARDED_ALLOW_IPS is 127.0.0.1 by default
    proxy.headers["x-forwarded-for"] = "203.0.113.7"
    for n in range(MAX_FAILURES_PER_CLIENT):
        assert (await _sign_in(proxy, email, f"guess {n}")).status_code == 403
    assert (await _sign_in(proxy, email, PASSWORD)).status_code == 429
    proxy.headers["x-forwarded-for"] = "198.51.100.9"
    assert (await _sign_in(proxy, email, PASSWORD)).status_code == 303

    # A client that is not the proxy cannot pick its address by sending the header.
    spoofer = client_from("127.0.0.6")
    for n in range(MAX_FAILURES_PER_CLIENT):
        spoofer.headers["x-forwarded-for"] = f"192.0.2.{n}"
        assert (await _sign_in(spoofer, email, f"guess {n}")).status_code == 403
    spoofer.headers["x-forwarded-for"] = "192.0.2.200"
    assert (await _sign_in(spoofer, email, PASSWORD)).status_code == 429
