"""The y-websocket codec: strict, total, and in agreement with pycrdt's encoder."""

from __future__ import annotations

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.realtime import protocol
from server.realtime.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_protocol_error_only(frame: bytes) -> None:
    try:
        messages = protocol.parse_frame(frame)
    except ProtocolError as error:
        assert error.code in (1002, 1003, 1007)
        assert error.reason
    else:
        assert messages


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_messages_built_by_pycrdt_parse_back_in_order(updates: list[bytes]) -> None:
    frame = b"".join(pycrdt.create_update_message(u) for u in updates)
    messages = protocol.parse_frame(frame)
    assert messages == [SyncMessage(SyncStep.UPDATE, u) for u in updates]


@given(st.integers(0, 2**53))
def test_varuint_round_trips_and_matches_pycrdt(value: int) -> None:
    encoded = protocol.varuint(value)
    assert encoded == pycrdt.write_var_uint(value)
    frame = b"\x00\x02" + protocol.varbytes(b"x" * (value % 50))
    assert protocol.parse_frame(frame) == [SyncMessage(SyncStep.UPDATE, b"x" * (value % 50))]


def test_query_awareness_and_awareness_messages_parse() -> None:
    entries = [AwarenessEntry(7, 2, '{"user":{"name":"Ann"}}'), AwarenessEntry(9, 1, "null")]
    frame = protocol.awareness(protocol.encode_awareness(entries)) + b"\x03"
    assert protocol.parse_frame(frame) == [AwarenessMessage(entries), QueryAwarenessMessage()]


@pytest.mark.parametrize(
    "frame,code",
    [
        (b"\x00", 1002),  # sync without a step
        (b"\x00\x01", 1002),  # step 2 without its length
        (b"\x00\x01\x05ab", 1002),  # shorter than announced
        (b"\x80", 1002),  # a number cut off
        (b"\xff" * 9, 1002),  # a number too long
        (b"\x02\x00\x00", 1003),  # auth is server to client only
        (b"\x64\x01", 1003),  # saved is server to client only
        (b"\x01\x04\x01\x01\x01\xff", 1002),  # awareness with a cut string
        (b"\x01\x05\x01\x01\x01\x01\xff", 1002),  # awareness state not UTF-8
        (b"\x01\x07\x01\x01\x01\x02{}\x00", 1002),  # awareness: trailing bytes
    ],
)
def test_malformed_frames_name_what_is_wrong(frame: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as raised:
        protocol.parse_frame(frame)
    assert raised.value.code == code


def test_saved_message_round_trips() -> None:
    assert protocol.parse_saved(protocol.saved(300)) == 300


def test_permission_denied_is_the_y_websocket_auth_message() -> None:
    assert protocol.permission_denied("no") == b"\x02\x00\x02no"
