"""Rewrite the strings stored as values in a Yjs (v1) update, keeping everything else.

Erasing a person (decision 93) must take their name out of the update log, where every
comment and reply they wrote (``author_name``, ``resolved_by``, texts that name them) is a
map value. Those values are *any* content (``ContentAny``), whose items are one clock unit
long whatever the string's length, so a string can be replaced by another of any length
without moving any item's id: the rewritten log applies to the same document, with the
same history, only with other words in those values. Text typed into the document
(``ContentString``, one clock unit per UTF-16 unit) is left as written: changing its length
would change every id after it, and it is the owners' content to edit.

The reader follows lib0's v1 encoding as Yjs and yrs write it: the structs of each client
(GC, skip and items with their origins, parent and content), then the delete set, which is
copied as it is. An update this reader does not understand raises ``ValueError`` rather
than being half-rewritten.
"""

from __future__ import annotations

from collections.abc import Callable

Rewrite = Callable[[str], str]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("the update ends early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value
            if shift > 70:
                raise ValueError("a number in the update is too long")

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise ValueError("the update ends early")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def string(self) -> str:
        return self.take(self.uint()).decode("utf-8")

    def int_(self) -> None:
        b = self.byte()
        while b & 0x80:
            b = self.byte()


def _uint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return _uint(len(encoded)) + encoded


class _Rewriter:
    def __init__(self, data: bytes, rewrite: Rewrite) -> None:
        self.r = _Reader(data)
        self.out = bytearray()
        self.rewrite = rewrite
        self.mark = 0

    def copy(self) -> None:
        """Copy what was read since the last mark unchanged."""
        self.out += self.r.data[self.mark : self.r.pos]
        self.mark = self.r.pos

    def replace_string(self) -> None:
        self.copy()
        value = self.r.string()
        self.out += _string(self.rewrite(value))
        self.mark = self.r.pos

    def any_(self) -> None:
        tag = self.r.byte()
        if tag in (127, 126, 121, 120):
            return
        if tag == 125:
            self.r.int_()
        elif tag == 124:
            self.r.take(4)
        elif tag in (123, 122):
            self.r.take(8)
        elif tag == 119:
            self.replace_string()
        elif tag == 118:
            for _ in range(self.r.uint()):
                self.r.string()  # keys are the program's, not a person's
                self.any_()
        elif tag == 117:
            for _ in range(self.r.uint()):
                self.any_()
        elif tag == 116:
            self.r.take(self.r.uint())
        else:
            raise ValueError(f"unknown value type {tag} in the update")

    def content(self, ref: int) -> None:
        r = self.r
        if ref == 1:  # deleted
            r.uint()
        elif ref == 2:  # JSON (strings of JSON)
            for _ in range(r.uint()):
                self.replace_string()
        elif ref == 3:  # binary
            r.take(r.uint())
        elif ref in (4, 5):  # string (ids depend on its length), embed
            r.string()
        elif ref == 6:  # format
            r.string()
            r.string()
        elif ref == 7:  # type
            if r.uint() in (3, 5):  # XML element and hook carry a name
                r.string()
        elif ref == 8:  # any
            for _ in range(r.uint()):
                self.any_()
        elif ref == 9:  # subdocument
            r.string()
            self.any_()
        else:
            raise ValueError(f"unknown content type {ref} in the update")

    def run(self) -> bytes:
        r = self.r
        for _ in range(r.uint()):  # clients
            structs = r.uint()
            r.uint()  # client
            r.uint()  # clock
            for _ in range(structs):
                info = r.byte()
                ref = info & 0x1F
                if ref in (0, 10):  # GC, skip
                    r.uint()
                    continue
                if info & 0x80:
                    r.uint(), r.uint()
                if info & 0x40:
                    r.uint(), r.uint()
                if not info & 0xC0:
                    if r.uint() == 1:
                        r.string()
                    else:
                        r.uint(), r.uint()
                    if info & 0x20:
                        r.string()
                self.content(ref)
        self.r.pos = len(r.data)  # the delete set is copied as it is
        self.copy()
        return bytes(self.out)


def rewrite_strings(update: bytes, rewrite: Rewrite) -> bytes:
    """``update`` with every string value passed through ``rewrite``."""
    return _Rewriter(update, rewrite).run()


__all__ = ["rewrite_strings"]
