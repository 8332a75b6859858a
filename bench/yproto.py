"""Raw y-websocket protocol bytes, written by hand so the load generator stays cheap.

Writers never run a CRDT: each update appends one string to the root array ``"a"`` of the
document, encoded directly in the Yjs update v1 format (one item of ``ContentAny``). The string
is a marker ``#<writer>:<counter>:<send time ns>#`` that receivers find with one regular
expression, whatever way the server batched, merged or squashed the updates.
"""

from __future__ import annotations

import re

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_SAVED = 100  # OpenDPIA: "the first N write messages you sent are committed"
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

MARKER = re.compile(rb"#(\d+):(\d+):(\d+)#")
# The tail of a bench presence state: whose (writer number), its clock, its send time (ns).
PRESENCE = re.compile(rb'"p":(\d+),"c":(\d+),"t":(\d+)}')
_CONTENT_ANY = 8
_HAS_ORIGIN = 0x80
_ANY_STRING = 119


def varuint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varuint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varuint at ``pos``; returns (value, next position)."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def varbytes(data: bytes) -> bytes:
    return varuint(len(data)) + data


EMPTY_UPDATE = b"\x00\x00"  # no structs, empty delete set
SYNC_STEP1_EMPTY = bytes([MSG_SYNC, SYNC_STEP1]) + varbytes(b"\x00")  # empty state vector
SYNC_STEP2_EMPTY = bytes([MSG_SYNC, SYNC_STEP2]) + varbytes(EMPTY_UPDATE)


def update_message(update: bytes) -> bytes:
    return bytes([MSG_SYNC, SYNC_UPDATE]) + varbytes(update)


def awareness_message(client_id: int, clock: int, state_json: bytes) -> bytes:
    """An awareness message with one entry (what a y-websocket provider sends per change)."""
    update = b"\x01" + varuint(client_id) + varuint(clock) + varbytes(state_json)
    return bytes([MSG_AWARENESS]) + varbytes(update)


class CaretMover:
    """Successive awareness states of one client moving its caret in a rich-text field.

    The state has the shape y-prosemirror gives it (a user, and a cursor of two relative
    positions), about 260 bytes, and ends with the writer number, the clock and the send time
    (``PRESENCE``), so that receivers find them with one regular expression.
    """

    def __init__(self, client_id: int, writer_no: int) -> None:
        self.client_id = client_id
        self.writer_no = writer_no
        self.clock = 0
        self._head = b'{"user":{"name":"Bench user %d","color":"#30bced"},"cursor":{' % writer_no

    def next_message(self, now_ns: int) -> bytes:
        self.clock += 1
        position = b'{"type":null,"tname":"field:need.aims","item":{"client":%d,"clock":%d},' % (
            self.client_id,
            self.clock % 500,
        )
        state = b'%s"anchor":%s"assoc":0},"head":%s"assoc":-1}},"p":%d,"c":%d,"t":%d}' % (
            self._head,
            position,
            position,
            self.writer_no,
            self.clock,
            now_ns,
        )
        return awareness_message(self.client_id, self.clock, state)


class ArrayWriter:
    """Produces successive updates of one Yjs client appending strings to root array ``a``."""

    def __init__(self, client_id: int, writer_no: int) -> None:
        self.client_id = client_id
        self.writer_no = writer_no
        self.clock = 0
        self._client = varuint(client_id)
        self._head = b"\x01\x01" + self._client  # one client, one struct, client id

    def next_update(self, counter: int, now_ns: int) -> bytes:
        text = b"#%d:%d:%d#" % (self.writer_no, counter, now_ns)
        content = b"\x01" + bytes([_ANY_STRING]) + varbytes(text)
        clock = self.clock
        if clock == 0:  # first item: parent is the root type "a"
            item = bytes([_CONTENT_ANY]) + b"\x01" + varbytes(b"a")
        else:  # left origin is this client's previous item
            item = bytes([_CONTENT_ANY | _HAS_ORIGIN]) + self._client + varuint(clock - 1)
        self.clock = clock + 1
        return self._head + varuint(clock) + item + content + b"\x00"

    def next_message(self, counter: int, now_ns: int) -> bytes:
        return update_message(self.next_update(counter, now_ns))


def self_check() -> None:
    """Apply hand-encoded updates of two writers to a pycrdt Doc and compare the content."""
    from pycrdt import Array, Doc

    doc: Doc[Array[str]] = Doc()
    array = doc.get("a", type=Array)
    first, second = ArrayWriter(123_456_789, 1), ArrayWriter(42, 2)
    for i in range(300):  # past one varuint byte of clock
        doc.apply_update(first.next_update(i, 1000 + i))
        doc.apply_update(second.next_update(i, 7))
    items = list(array)
    assert len(items) == 600, len(items)
    assert items.count("#1:299:1299#") == 1 and items.count("#2:0:7#") == 1
    assert len(MARKER.findall(doc.get_update())) == 600
    print("yproto: hand-encoded updates apply correctly")
    _check_awareness()


def _check_awareness() -> None:
    """Decode hand-encoded awareness messages with pycrdt's own decoder and ``json``."""
    import json

    from pycrdt import Decoder

    mover = CaretMover(2**31 - 5, 17)
    for _ in range(130):  # past one varuint byte of clock
        message = mover.next_message(123_456_789)
    decoder = Decoder(message)
    assert decoder.read_var_uint() == MSG_AWARENESS
    payload = decoder.read_message()
    assert payload is not None
    inner = Decoder(payload)
    assert inner.read_var_uint() == 1
    assert (inner.read_var_uint(), inner.read_var_uint()) == (2**31 - 5, 130)
    state = json.loads(inner.read_var_string())
    assert (state["p"], state["c"], state["t"]) == (17, 130, 123_456_789)
    assert state["cursor"]["head"]["item"]["clock"] == 130
    match = PRESENCE.search(message)
    assert match is not None and match.groups() == (b"17", b"130", b"123456789")
    print(f"yproto: hand-encoded awareness decodes correctly ({len(message)} bytes a message)")


if __name__ == "__main__":
    self_check()


class FieldWriter:
    """Produces successive updates of one client typing into a DPIA's rich-text field.

    A DPIA's document takes only the roots its template defines (``server.domain.shape``),
    so editors of a DPIA write paragraphs of text, as the editor does, rather than into
    ``ArrayWriter``'s root ``a``. Each update carries the same ``#writer:n:time#`` marker.
    """

    def __init__(self, writer_no: int, root: str) -> None:
        from pycrdt import Doc, XmlElement, XmlFragment, XmlText

        self.writer_no = writer_no
        self._doc: Doc[XmlFragment] = Doc()
        self._text = XmlText()
        fragment = self._doc.get(root, type=XmlFragment)
        self._start = self._doc.get_state()
        fragment.children.append(XmlElement("paragraph", contents=[self._text]))

    def next_message(self, counter: int, now_ns: int) -> bytes:
        before = self._start
        marker = f"#{self.writer_no}:{counter}:{now_ns}#"
        self._text.insert(len(self._text), marker)
        self._start = self._doc.get_state()
        return update_message(self._doc.get_update(before))
