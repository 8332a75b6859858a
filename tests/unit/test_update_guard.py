"""The guard a room checks client updates with (server.realtime.guard), on real pycrdt
documents: what a client may write, and that a refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from server.domain.documents import root_names
from server.domain.shape import Limits, shape_of
from server.domain.templates import load_template, seed_update
from server.realtime.guard import UpdateGuard, UpdateRefused

LIMITS = Limits(field_bytes=4096, document_bytes=64 * 1024)


def _server() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(seed_update(load_template()))
    return doc


def _client_update(server: Doc[Any], change: Callable[[Doc[Any]], None]) -> bytes:
    client: Doc[Any] = Doc()
    client.apply_update(server.get_update())
    before = client.get_state()
    with client.transaction():
        change(client)
    return client.get_update(before)


def _guard(server: Doc[Any], limits: Limits = LIMITS) -> UpdateGuard:
    return UpdateGuard(shape_of(load_template()), limits, server.get_update)


def _paragraph(text: str) -> XmlElement:
    return XmlElement("paragraph", {}, [XmlText(text)])


def test_an_answer_in_a_template_field_is_taken() -> None:
    server = _server()
    guard = _guard(server)
    guard.check(
        _client_update(
            server, lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "required")
        )
    )
    guard.check(
        _client_update(
            server,
            lambda d: d.get("field:processing.nature", type=XmlFragment).children.append(
                _paragraph("We collect names.")
            ),
        )
    )


def test_a_table_row_with_the_template_columns_is_taken() -> None:
    server = _server()
    guard = _guard(server)
    row = Map({"id": "r1", "ref": "R1", "likelihood": 2, "severity": 3})
    guard.check(
        _client_update(server, lambda d: d.get("table:risks.register", type=Array).append(row))
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda d: d.get("comments", type=Map).__setitem__(
                "c-1", Map({"author_name": "Priya Shah (DPO)", "channel": "email"})
            ),
            "Comments are written by the server",
        ),
        (lambda d: d.get("meta", type=Map).__setitem__("template", "other"), "'meta'"),
        (
            lambda d: d.get("values", type=Map).__setitem__("hidden.key", "x"),
            "has no field 'hidden.key'",
        ),
        (lambda d: d.get("stash", type=Text).insert(0, "x"), "has no field 'stash'"),
        (
            lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "y" * 5000),
            "over the limit",
        ),
        (
            lambda d: d.get("table:risks.register", type=Array).append(Map({"secret": "x"})),
            "has no column 'secret'",
        ),
        (
            lambda d: d.get("values", type=Map).__setitem__("screening.outcome", Map({"a": 1})),
            "plain data",
        ),
    ],
)
def test_what_a_client_may_not_write_is_refused(change: Any, said: str) -> None:
    server = _server()
    guard = _guard(server)
    with pytest.raises(UpdateRefused, match=said):
        guard.check(_client_update(server, change))


def test_an_oversized_rich_text_field_is_refused() -> None:
    server = _server()
    guard = _guard(server)
    update = _client_update(
        server,
        lambda d: d.get("field:processing.nature", type=XmlFragment).children.append(
            _paragraph("z" * 5000)
        ),
    )
    with pytest.raises(UpdateRefused, match="over the limit"):
        guard.check(update)


def test_the_document_cap_counts_every_field() -> None:
    server = _server()
    guard = _guard(server, Limits(field_bytes=4096, document_bytes=8192))
    for n, field in enumerate(["nature", "scope", "context"]):
        update = _client_update(
            server,
            lambda d, field=field: d.get(
                f"field:processing.{field}", type=XmlFragment
            ).children.append(_paragraph("w" * 3500)),
        )
        if n < 2:
            guard.check(update)
            server.apply_update(update)
        else:
            with pytest.raises(UpdateRefused, match="The document"):
                guard.check(update)


def test_a_refused_update_leaves_no_trace_and_later_updates_are_judged_alone() -> None:
    server = _server()
    guard = _guard(server)
    forged = _client_update(
        server, lambda d: d.get("comments", type=Map).__setitem__("c-9", Map({"text": "forged"}))
    )
    with pytest.raises(UpdateRefused):
        guard.check(forged)
    honest = _client_update(
        server, lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "required")
    )
    guard.check(honest)  # the shadow was rebuilt without the forged comment


def test_a_server_side_change_is_followed_unchecked() -> None:
    server = _server()
    guard = _guard(server)
    before = server.get_state()
    server.get("comments", type=Map)["c-1"] = Map({"text": "by the server"})
    guard.follow(server.get_update(before))
    reply = _client_update(
        server, lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "required")
    )
    guard.check(reply)


def test_a_document_without_a_template_takes_any_root_but_the_server_owned_ones() -> None:
    server: Doc[Any] = Doc()
    guard = UpdateGuard(shape_of(None), LIMITS, server.get_update)
    guard.check(_client_update(server, lambda d: d.get("t", type=Text).insert(0, "hello")))
    with pytest.raises(UpdateRefused, match="comments"):
        guard.check(
            _client_update(server, lambda d: d.get("comments", type=Map).__setitem__("c", 1))
        )


def test_the_shadow_is_built_only_when_first_needed_and_misses_nothing() -> None:
    server = _server()
    reads: list[int] = []

    def source() -> bytes:
        reads.append(1)
        return server.get_update()

    guard = UpdateGuard(shape_of(load_template()), LIMITS, source)
    assert reads == []  # a room can answer its first client before paying for the shadow
    before = server.get_state()
    server.get("comments", type=Map)["c1"] = "written server-side"
    guard.follow(server.get_update(before))  # not built yet: nothing to mirror into
    guard.check(
        _client_update(
            server, lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "required")
        )
    )
    assert reads == [1]
    guard.prepare()
    assert reads == [1]
    # The shadow has the server-side comment: a client update building on it is judged on
    # what it changes (a value), not refused for the comment it did not write.
    guard.check(
        _client_update(
            server, lambda d: d.get("values", type=Map).__setitem__("screening.outcome", "not")
        )
    )


def test_root_names_are_the_names_of_every_root_the_document_holds() -> None:
    server = _server()
    assert root_names(server) == frozenset(server.keys())
    update = _client_update(
        server,
        lambda doc: (
            doc.get("field:outcome.outcome", type=XmlFragment).children.append(_paragraph("x")),
            doc.get("made:up", type=Array).append(1),
        ),
    )
    server.apply_update(update)
    assert {"field:outcome.outcome", "made:up"} <= root_names(server)
    assert root_names(server) == frozenset(server.keys())
    assert root_names(Doc()) == frozenset()
