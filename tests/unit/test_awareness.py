"""The server's awareness table applies the Yjs rules and tells changes from renewals."""

from __future__ import annotations

from server.realtime.awareness import AwarenessBatch, AwarenessTable
from server.realtime.protocol import AwarenessEntry, AwarenessMessage, parse_frame

ANN = '{"user":{"name":"Ann"}}'
ANN_MOVED = '{"user":{"name":"Ann"},"cursor":3}'


def test_first_state_is_a_change() -> None:
    table = AwarenessTable()
    changes = table.apply([AwarenessEntry(1, 1, ANN)])
    assert changes.changed == [AwarenessEntry(1, 1, ANN)] and changes.renewed == []


def test_same_state_with_newer_clock_is_a_renewal_not_a_change() -> None:
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 1, ANN)])
    changes = table.apply([AwarenessEntry(1, 2, ANN)])
    assert changes.changed == [] and changes.renewed == [AwarenessEntry(1, 2, ANN)]


def test_new_state_is_a_change_and_an_older_clock_is_ignored() -> None:
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 5, ANN)])
    assert table.apply([AwarenessEntry(1, 6, ANN_MOVED)]).changed == [
        AwarenessEntry(1, 6, ANN_MOVED)
    ]
    stale = table.apply([AwarenessEntry(1, 4, ANN)])
    assert stale.changed == [] and stale.renewed == []
    assert table.present() == [AwarenessEntry(1, 6, ANN_MOVED)]


def test_removal_with_same_clock_is_accepted_once() -> None:
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 3, ANN)])
    assert table.apply([AwarenessEntry(1, 3, "null")]).changed == [AwarenessEntry(1, 3, "null")]
    assert table.apply([AwarenessEntry(1, 3, "null")]).changed == []
    assert table.present() == []


def test_removal_of_unknown_client_is_ignored() -> None:
    assert AwarenessTable().apply([AwarenessEntry(8, 1, "null")]).changed == []


def test_remove_announces_a_newer_clock_for_present_clients_only() -> None:
    table = AwarenessTable()
    table.apply([AwarenessEntry(1, 3, ANN), AwarenessEntry(2, 1, ANN)])
    table.apply([AwarenessEntry(2, 2, "null")])
    assert table.remove({1, 2, 3}) == [AwarenessEntry(1, 4, "null")]


def test_batch_keeps_each_client_latest_entry_only() -> None:
    batch = AwarenessBatch()
    batch.add([AwarenessEntry(1, 1, ANN), AwarenessEntry(2, 1, ANN)])
    batch.add([AwarenessEntry(1, 2, ANN_MOVED)])
    assert batch.take() == [AwarenessEntry(1, 2, ANN_MOVED), AwarenessEntry(2, 1, ANN)]
    assert not batch and batch.take() == []


def test_batch_removal_replaces_a_waiting_state_and_an_older_state_does_not_replace_it() -> None:
    batch = AwarenessBatch()
    batch.add([AwarenessEntry(1, 4, ANN_MOVED), AwarenessEntry(1, 4, "null")])
    batch.add([AwarenessEntry(1, 3, ANN)])
    assert batch.take() == [AwarenessEntry(1, 4, "null")]


def _entries(frame: bytes) -> list[AwarenessEntry]:
    [message] = parse_frame(frame)
    assert isinstance(message, AwarenessMessage)
    return message.entries


def test_newcomers_get_one_encoding_of_who_is_present_until_the_table_changes() -> None:
    table = AwarenessTable()
    assert table.present_frame() == b"", "nobody present: nothing to send"
    table.apply([AwarenessEntry(1, 1, ANN), AwarenessEntry(2, 1, '{"b":2}')])
    first = table.present_frame()
    assert table.present_frame() is first, "encoded once"
    assert _entries(first) == table.present()
    table.apply([AwarenessEntry(2, 2, '{"b":2}')])  # a renewal: the newer clock goes out
    renewed = table.present_frame()
    assert renewed is not first and AwarenessEntry(2, 2, '{"b":2}') in _entries(renewed)
    table.remove({1})
    assert _entries(table.present_frame()) == [AwarenessEntry(2, 2, '{"b":2}')]
    table.apply([AwarenessEntry(1, 1, ANN)])  # older than its removal: ignored
    assert _entries(table.present_frame()) == [AwarenessEntry(2, 2, '{"b":2}')]
