"""Past versions: a version rebuilt at a sequence number equals the document as it was then.

Two clients edit at random, exchanging their updates now and then as a relay would; the
server's copy takes every update in arrival order and its state is snapshotted after each
one. Rebuilding each version from the log must give back exactly that snapshot."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Array, Doc, Map, XmlElement, XmlFragment, XmlText

from server.domain.content import canonical, document_content
from server.domain.documents import UpdateRecord
from server.domain.templates import load_template
from tests.support.review import World, review_world

pytestmark = pytest.mark.asyncio
TEXT_FIELDS = ("need.aims", "processing.nature", "necessity.minimisation")


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        yield built


def random_edit(doc: Doc[Any], rng: random.Random) -> None:
    choice = rng.randrange(6)
    with doc.transaction():
        if choice == 0:
            fragment = doc.get(f"field:{rng.choice(TEXT_FIELDS)}", type=XmlFragment)
            paragraph = XmlElement("paragraph")
            fragment.children.append(paragraph)
            node = XmlText()
            paragraph.children.append(node)
            node.insert(
                0, rng.choice(["alpha ", "beta ", "gamma ", "dé ", "名前 "]) * rng.randint(1, 3)
            )
        elif choice == 1:
            fragment = doc.get(f"field:{rng.choice(TEXT_FIELDS)}", type=XmlFragment)
            if len(fragment.children):
                paragraph = fragment.children[rng.randrange(len(fragment.children))]
                node = paragraph.children[0]
                length = len(str(node))
                if length:
                    node.insert(
                        rng.randrange(length + 1), "x", {"bold": {}} if rng.random() < 0.5 else None
                    )
        elif choice == 2:
            values = doc.get("values", type=Map)
            values[rng.choice(["screening.outcome", "review.frequency"])] = rng.choice(
                ["required", "advisable", "3-months", "6-months"]
            )
        elif choice == 3:
            table = doc.get("table:risks.register", type=Array)
            n = len(table) + 1
            table.append(
                Map(
                    {
                        "id": f"{rng.random():.8f}",
                        "ref": f"R{n}",
                        "title": f"Risk {n}",
                        "likelihood": str(rng.randint(1, 3)),
                        "severity": str(rng.randint(1, 3)),
                    }
                )
            )
        elif choice == 4:
            table = doc.get("table:risks.register", type=Array)
            if len(table):
                row = table[rng.randrange(len(table))]
                row["title"] = f"Renamed {rng.randint(1, 99)}"
        else:
            table = doc.get("table:risks.register", type=Array)
            if len(table) > 1:
                del table[rng.randrange(len(table))]


async def test_a_rebuilt_version_equals_the_document_as_it_was_then(world: World) -> None:
    w = world
    template = load_template()
    rng = random.Random(20261124)
    stored = await w.store.load(w.dpia_id)
    assert stored is not None
    server = stored.to_doc()
    clients = [stored.to_doc(), stored.to_doc()]
    sent = [c.get_state() for c in clients]
    seq = stored.last_seq
    snapshots: dict[int, tuple[bytes, str]] = {}
    for _ in range(120):
        who = rng.randrange(2)
        random_edit(clients[who], rng)
        if rng.random() < 0.6:  # the client's pending changes reach the server
            update = clients[who].get_update(sent[who])
            sent[who] = clients[who].get_state()
            before = server.get_state()
            server.apply_update(update)
            change = server.get_update(before)
            if change == b"\x00\x00":
                continue
            seq += 1
            await w.store.append(
                [
                    UpdateRecord(
                        w.dpia_id,
                        seq,
                        change,
                        f"user:{who + 1}",
                        "browser",
                        "test",
                        datetime.now(UTC),
                    )
                ]
            )
            snapshots[seq] = (
                canonical(document_content(server, template)),
                str(server.get("field:need.aims", type=XmlFragment)),
            )
            if seq % 17 == 0:  # stored snapshots must not change what a version is
                await w.store.compact(w.dpia_id)
            other = 1 - who
            clients[other].apply_update(server.get_update(clients[other].get_state()))
    assert len(snapshots) > 40
    for at, (content, aims) in snapshots.items():
        version = await w.history.version(w.dpia_id, at)
        assert canonical(version.content) == content, at
        assert str(version.doc.get("field:need.aims", type=XmlFragment)) == aims, at
    # Versions differ where the run changed something (the check can fail).
    assert len({content for content, _ in snapshots.values()}) > 20


async def test_comparing_two_versions_lists_the_fields_that_differ(world: World) -> None:
    from tests.support.review import edit, text, value

    w = world
    first = await edit(w, text("need.aims", "Outcome sought"))
    await edit(w, value("screening.outcome", "required"))
    last = await edit(w, text("need.aims", "Which datasets hold it"))
    changes = await w.history.compare(w.dpia_id, first, last)
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("screening.outcome", "", "DPIA required"),
        ("need.aims", "Outcome sought", "Outcome sought\nWhich datasets hold it"),
    ]
    items = await w.history.timeline(w.dpia_id, "need")
    assert [i.kind for i in items if i.kind == "edit"]
