"""Property: random concurrent edits with random disconnects converge, and storage agrees."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from tests.support.live import LiveServer, make_settings
from tests.support.yclient import YClient

CLIENTS = 3
# Each test runs many examples, each with its own deadlines: the whole may take far longer
# than one test's usual allowance on a loaded machine.
pytestmark = pytest.mark.timeout(600)
_documents = itertools.count(1)

operation = st.one_of(
    st.tuples(
        st.just("insert"),
        st.integers(0, CLIENTS - 1),
        st.floats(0, 1),
        # ASCII: pycrdt's Text indexes are UTF-8 byte offsets, which is the client's concern.
        st.text("abcxyz ", min_size=1, max_size=6),
    ),
    st.tuples(st.just("delete"), st.integers(0, CLIENTS - 1), st.floats(0, 1), st.integers(1, 4)),
    st.tuples(
        st.just("set"), st.integers(0, CLIENTS - 1), st.sampled_from("kpq"), st.integers(0, 99)
    ),
    st.tuples(st.just("disconnect"), st.integers(0, CLIENTS - 1), st.booleans(), st.none()),
    st.tuples(st.just("reconnect"), st.integers(0, CLIENTS - 1), st.none(), st.none()),
    st.tuples(st.just("pause"), st.none(), st.none(), st.none()),
)


@pytest.fixture(scope="module")
def property_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("property") / "opendpia.db"
    # Compact every few updates so that loads go through snapshots again and again.
    server = LiveServer(make_settings(f"sqlite+aiosqlite:///{path}", compact_every=7)).start()
    try:
        yield server
    finally:
        server.stop()


def _content(doc: Doc[Any]) -> tuple[str, dict[str, Any]]:
    return str(doc.get("t", type=Text)), doc.get("values", type=Map).to_py() or {}


async def _scenario(server: LiveServer, ops: list[tuple[Any, ...]], document_id: str) -> None:
    url = server.url(document_id, saved=True)
    docs: list[Doc[Any]] = [Doc() for _ in range(CLIENTS)]
    online: list[YClient | None] = [None] * CLIENTS
    try:
        for index, doc in enumerate(docs):  # inside the try: a failed connect closes the rest
            online[index] = await YClient.connect(url, doc)
        for kind, index, a, b in ops:
            if kind == "pause":
                await asyncio.sleep(0.01)
                continue
            client = online[index]
            doc = docs[index]
            text = doc.get("t", type=Text)
            if kind == "insert":
                text.insert(int(a * len(text)), b)
            elif kind == "delete" and len(text):
                start = int(a * (len(text) - 1))
                del text[start : min(len(text), start + b)]
            elif kind == "set":
                doc.get("values", type=Map)[a] = b
            elif kind == "disconnect" and client is not None:
                if a:  # abruptly: no close frame
                    client.ws.transport.abort()
                await client.close()
                online[index] = None
            elif kind == "reconnect" and client is None:
                online[index] = await YClient.connect(url, doc)
            await asyncio.sleep(0)
        for index, doc in enumerate(docs):
            if online[index] is None:
                online[index] = await YClient.connect(url, doc)
        clients = [c for c in online if c is not None]

        def converged() -> bool:
            first = _content(docs[0])
            return all(_content(doc) == first for doc in docs[1:])

        await clients[0].wait_until(converged)
        for client in clients:
            await client.wait_saved()
        live = _content(docs[0])

        stored = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(
                server.runtime.rooms._store.load(document_id), server.loop
            )
        )
        assert stored is not None
        assert _content(stored.to_doc()) == live
    finally:
        for client in online:
            if client is not None:
                await client.close()


@pytest.mark.slow
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operation, min_size=5, max_size=60))
def test_random_concurrent_edits_converge_and_storage_equals_live(
    property_server: LiveServer, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_scenario(property_server, ops, f"prop-{next(_documents)}"))


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(operation, min_size=10, max_size=40))
def test_state_after_restart_equals_live_state(
    property_server: LiveServer, ops: list[tuple[Any, ...]]
) -> None:
    document_id = f"restart-{next(_documents)}"
    asyncio.run(_scenario(property_server, ops, document_id))

    async def live_then_reloaded() -> tuple[Any, Any]:
        before = await YClient.connect(property_server.url(document_id))
        try:
            live = _content(before.doc)
        finally:
            await before.close()
        await asyncio.to_thread(property_server.restart)
        after = await YClient.connect(property_server.url(document_id))
        try:
            reloaded = _content(after.doc)
        finally:
            await after.close()
        return live, reloaded

    live, reloaded = asyncio.run(live_then_reloaded())
    assert reloaded == live
