"""The y-websocket wire protocol, parsed strictly.

A frame holds one or more lib0-encoded messages::

    message      = varuint type, body
    sync   (0)   = varuint step (0 step 1 | 1 step 2 | 2 update), varbytes payload
    awareness(1) = varbytes awareness-update
    auth   (2)   = varuint 0 (permission denied), varstring reason   [server → client]
    query  (3)   = (empty)                                           [client → server]
    saved(100)   = varuint count of the peer's write messages now committed [ours]

Every message of a frame is parsed before any is acted on, so a frame with a bad message
anywhere changes nothing. pycrdt's ``Decoder`` trusts its input; this one checks bounds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from server.domain.errors import InvalidInput
from server.domain.inputs import parse_json

# WebSocket close codes used for bad input (RFC 6455 section 7.4.1).
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

MAX_VARUINT_BYTES = 8  # lib0 numbers are at most 53 bits


class MessageType(enum.IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SAVED = 100


class SyncStep(enum.IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ProtocolError(Exception):
    """A peer sent something that is not a valid message; close that connection."""

    def __init__(self, reason: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class UpdateRejected(ProtocolError):
    """A well-framed update that the CRDT library refuses."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, CLOSE_INVALID_PAYLOAD)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state_json: str  # "null" when the client is gone

    @property
    def is_removal(self) -> bool:
        return self.state_json == "null"


@dataclass(frozen=True, slots=True)
class SyncMessage:
    step: SyncStep
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    entries: list[AwarenessEntry]


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    pass


Message = SyncMessage | AwarenessMessage | QueryAwarenessMessage


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def varuint(self) -> int:
        value = 0
        shift = 0
        data = self.data
        for _ in range(MAX_VARUINT_BYTES):
            if self.pos >= len(data):
                raise ProtocolError("truncated message: a number is cut off")
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise ProtocolError("malformed message: a number is longer than 8 bytes")

    def varbytes(self) -> bytes:
        length = self.varuint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError(
                f"truncated message: {length} bytes announced, {len(self.data) - self.pos} sent"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def varstring(self) -> str:
        try:
            return self.varbytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("malformed message: a string is not UTF-8") from None


def parse_frame(frame: bytes) -> list[Message]:
    """All messages of one binary frame, or ProtocolError if any is malformed."""
    if not frame:
        raise ProtocolError("empty frame")
    reader = _Reader(frame)
    messages: list[Message] = []
    while not reader.at_end():
        kind = reader.varuint()
        if kind == MessageType.SYNC:
            step = reader.varuint()
            if step > SyncStep.UPDATE:
                raise ProtocolError(f"unknown sync step {step}", CLOSE_UNSUPPORTED_DATA)
            messages.append(SyncMessage(SyncStep(step), reader.varbytes()))
        elif kind == MessageType.AWARENESS:
            messages.append(AwarenessMessage(parse_awareness(reader.varbytes())))
        elif kind == MessageType.QUERY_AWARENESS:
            messages.append(QueryAwarenessMessage())
        else:
            raise ProtocolError(f"unknown message type {kind}", CLOSE_UNSUPPORTED_DATA)
    return messages


def varuint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def varbytes(data: bytes) -> bytes:
    return varuint(len(data)) + data


def sync_step1(state_vector: bytes) -> bytes:
    return b"\x00\x00" + varbytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + varbytes(update)


def sync_step2_header_length(message: bytes) -> int:
    """Where the update starts in a sync step 2 message (after its type, step and length)."""
    pos = 2
    while message[pos] & 0x80:
        pos += 1
    return pos + 1


def is_sync_step2(frame: bytes) -> bool:
    """Whether an outgoing frame is a sync step 2 (a document's state for one peer)."""
    return frame[:2] == b"\x00\x01"


def sync_update(update: bytes) -> bytes:
    return b"\x00\x02" + varbytes(update)


def awareness(payload: bytes) -> bytes:
    return b"\x01" + varbytes(payload)


def permission_denied(reason: str) -> bytes:
    return b"\x02\x00" + varbytes(reason.encode("utf-8"))


def saved(count: int) -> bytes:
    return varuint(MessageType.SAVED) + varuint(count)


def parse_saved(frame: bytes) -> int:
    """The count in a "saved" message (for clients written in Python)."""
    reader = _Reader(frame)
    if reader.varuint() != MessageType.SAVED:
        raise ProtocolError("not a saved message")
    return reader.varuint()


def parse_awareness(payload: bytes) -> list[AwarenessEntry]:
    """The entries of an awareness update; each state must be JSON."""
    reader = _Reader(payload)
    count = reader.varuint()
    entries = []
    for _ in range(count):
        client_id = reader.varuint()
        clock = reader.varuint()
        state_json = reader.varstring()
        try:
            parse_json(state_json)
        except ValueError:
            raise ProtocolError(
                "malformed awareness update: a state is not JSON", CLOSE_INVALID_PAYLOAD
            ) from None
        except InvalidInput as too_deep:
            raise ProtocolError(
                f"malformed awareness update: {too_deep}", CLOSE_INVALID_PAYLOAD
            ) from None
        entries.append(AwarenessEntry(client_id, clock, state_json))
    if not reader.at_end():
        raise ProtocolError("malformed awareness update: trailing bytes")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    parts = [varuint(len(entries))]
    for entry in entries:
        parts.append(varuint(entry.client_id))
        parts.append(varuint(entry.clock))
        parts.append(varbytes(entry.state_json.encode("utf-8")))
    return b"".join(parts)
