"""A large DPIA written the way the editor writes it, as a list of Yjs updates.

Rich text is what y-prosemirror stores for TipTap's schema (``richtext-schema.json``): an
``XmlFragment`` per field (``field:<section>.<field>``) holding ``heading``, ``paragraph``
and ``bulletList``/``listItem`` elements, text in ``XmlText`` with the marks ``bold``,
``italic`` and ``link`` as formatting attributes (the mark's attributes as the value).
Tables are the template's ``table:<section>.<field>`` arrays of row maps (``id``, ``ref`` and
one key per column). Three authors (three client ids) each write a third of the fields, in
updates of about ``UPDATE_BYTES``: a heading and a few paragraphs or a list at a time, or a
few table rows, as an autosaving editor sends them. Every field stays under the server's
default field cap (``OPENDPIA_MAX_FIELD_BYTES``, 1 MiB measured as the field's XML).

``python -m bench.bigdoc [MB]`` builds one and prints its sizes.
"""

from __future__ import annotations

import json
import random
import re
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UPDATE_BYTES = 10_000
FIELD_BUDGET = 800_000  # XML characters per field, under the 1 MiB cap with room to spare
AUTHORS = 3
CACHE_VERSION = 1

_WORDS = (
    "personal data processing controller processor lawful basis consent legitimate interest "
    "retention schedule council resident housing benefit social care record safeguarding "
    "assessment necessity proportionality risk likelihood severity measure encryption access "
    "control audit trail pseudonymisation minimisation transparency notice subject rights "
    "erasure rectification portability objection automated decision profiling vendor contract "
    "sharing agreement transfer adequacy safeguard breach notification officer review board "
    "the a of to and in for with by on is are be will may should must from at as"
)
_WORDS_LIST = _WORDS.split()


def _rich_text_roots() -> list[str]:
    from server.domain.shape import shape_of
    from server.domain.templates import DEFAULT_TEMPLATE, load_template

    return sorted(shape_of(load_template(DEFAULT_TEMPLATE, None)).rich_text)


def _tables() -> dict[str, list[str]]:
    from server.domain.shape import shape_of
    from server.domain.templates import DEFAULT_TEMPLATE, load_template

    tables = shape_of(load_template(DEFAULT_TEMPLATE, None)).tables
    return {name: sorted(set(columns) - {"id", "ref"}) for name, columns in sorted(tables.items())}


class _Author:
    """One person's editor: a Doc whose every transaction becomes one update."""

    def __init__(self, number: int, rng: random.Random) -> None:
        from pycrdt import Doc

        self.rng = rng
        self.doc: Doc[Any] = Doc(client_id=1000 + number)
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))

    def sentence(self, words: int) -> str:
        rng = self.rng
        text = " ".join(rng.choice(_WORDS_LIST) for _ in range(words))
        return text[:1].upper() + text[1:] + "."

    def inline(self, text: Any, sentences: int) -> int:
        """Sentences into an XmlText, some words bold, italic or linked; XML chars written."""
        written = 0
        rng = self.rng
        for _ in range(sentences):
            roll = rng.random()
            chunk = self.sentence(rng.randint(8, 24)) + " "
            if roll < 0.15:
                text.insert(len(text), chunk, {"bold": {}})
                written += len(chunk) + 13
            elif roll < 0.25:
                text.insert(len(text), chunk, {"italic": {}})
                written += len(chunk) + 17
            elif roll < 0.30:
                href = f"https://www.example.gov.uk/guidance/{rng.randint(1, 9999)}"
                mark = {
                    "link": {
                        "href": href,
                        "target": "_blank",
                        "rel": "noopener noreferrer nofollow",
                        "class": None,
                        "title": None,
                    }
                }
                text.insert(len(text), chunk, mark)
                written += len(chunk) + 120
            else:
                text.insert(len(text), chunk)
                written += len(chunk)
        return written

    def blocks(self, fragment: Any, budget: int) -> int:
        """About ``budget`` bytes of blocks appended to a rich-text field; XML chars written."""
        from pycrdt import XmlElement, XmlText

        written = 0
        rng = self.rng
        with self.doc.transaction():
            heading = XmlText()
            fragment.children.append(XmlElement("heading", {"level": "2"}, [heading]))
            written += self.inline(heading, 1) + 40
            while written < budget:
                if rng.random() < 0.2:
                    items = []
                    for _ in range(rng.randint(2, 5)):
                        text = XmlText()
                        items.append((text, XmlElement("paragraph", None, [text])))
                    bullets = XmlElement(
                        "bulletList", None, [XmlElement("listItem", None, [p]) for _, p in items]
                    )
                    fragment.children.append(bullets)
                    for text, _ in items:
                        written += self.inline(text, rng.randint(1, 3)) + 50
                    written += 30
                else:
                    text = XmlText()
                    fragment.children.append(XmlElement("paragraph", None, [text]))
                    written += self.inline(text, rng.randint(2, 8)) + 25
        return written

    def rows(self, table: Any, columns: list[str], first_ref: int, count: int) -> int:
        from pycrdt import Map

        written = 0
        rng = self.rng
        with self.doc.transaction():
            for number in range(first_ref, first_ref + count):
                row: dict[str, Any] = {"id": f"{rng.getrandbits(64):016x}", "ref": f"R{number}"}
                for column in columns:
                    row[column] = self.sentence(rng.randint(4, 30))
                table.append(Map(row))
                written += sum(len(str(v)) + len(k) + 6 for k, v in row.items())
        return written


def build(target_bytes: int, seed: int = 18) -> list[bytes]:
    """Updates whose sum is about ``target_bytes``: the document, in the order written."""
    from pycrdt import Array, XmlFragment

    rng = random.Random(seed)
    authors = [_Author(n, random.Random(rng.getrandbits(32))) for n in range(AUTHORS)]
    fields = _rich_text_roots()
    tables = _tables()
    targets: list[tuple[str, str]] = [("field", f) for f in fields]
    targets += [("table", t) for t in tables]
    written = dict.fromkeys([name for _, name in targets], 0)
    next_ref = dict.fromkeys(tables, 1)
    order: list[bytes] = []
    total = 0
    turn = 0
    while total < target_bytes:
        open_targets = [t for t in targets if written[t[1]] < FIELD_BUDGET]
        if not open_targets:
            raise ValueError(f"a DPIA of this template holds less than {target_bytes} bytes")
        kind, name = open_targets[turn % len(open_targets)]
        turn += 1
        author = authors[targets.index((kind, name)) % AUTHORS]
        before = len(author.updates)
        if kind == "field":
            fragment = author.doc.get(name, type=XmlFragment)
            written[name] += author.blocks(fragment, UPDATE_BYTES)
        else:
            table = author.doc.get(name, type=Array)
            count = 6
            written[name] += author.rows(table, tables[name], next_ref[name], count)
            next_ref[name] += count
        for update in author.updates[before:]:
            order.append(update)
            total += len(update)
    return order


def cache_path(target_mb: float) -> Path:
    return Path(tempfile.gettempdir()) / f"opendpia-bigdoc-{target_mb:g}mb-v{CACHE_VERSION}.bin"


def load(target_mb: float, path: Path | None = None) -> list[bytes]:
    """The document's updates, built once and kept in ``path`` (a temp file by default)."""
    path = path or cache_path(target_mb)
    if path.exists():
        raw = path.read_bytes()
        updates, pos = [], 0
        while pos < len(raw):
            (size,) = struct.unpack_from("!I", raw, pos)
            updates.append(raw[pos + 4 : pos + 4 + size])
            pos += 4 + size
        return updates
    updates = build(int(target_mb * 1_000_000))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(struct.pack("!I", len(u)) + u for u in updates))
    tmp.replace(path)
    return updates


def assemble(updates: list[bytes]) -> Any:
    """The whole document as one pycrdt Doc."""
    from pycrdt import Doc

    doc: Doc[Any] = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return doc


_TAG = re.compile(r'<(\w+)((?: \w+="[^"]*")+)>')
_ATTR = re.compile(r' \w+="[^"]*"')


def _canonical_xml(xml: str) -> str:
    """Attributes in a fixed order (pycrdt writes them in hash order)."""
    return _TAG.sub(lambda m: f"<{m[1]}{''.join(sorted(_ATTR.findall(m[2])))}>", xml)


def content_of(doc: Any) -> dict[str, str]:
    """What a reader sees, root by root: rich text as XML, tables as their rows."""
    from pycrdt import Array, XmlFragment

    out: dict[str, str] = {}
    for name in _rich_text_roots():
        out[name] = _canonical_xml(str(doc.get(name, type=XmlFragment)))
    for name in _tables():
        out[name] = json.dumps(doc.get(name, type=Array).to_py(), sort_keys=True)
    return out


if __name__ == "__main__":
    mb = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    t0 = time.perf_counter()
    built = build(int(mb * 1_000_000))
    t1 = time.perf_counter()
    whole = assemble(built)
    state = whole.get_update()
    sizes = {k: len(v.encode()) for k, v in content_of(whole).items()}
    print(
        f"{len(built)} updates, {sum(map(len, built)) / 1e6:.1f} MB sent, state "
        f"{len(state) / 1e6:.1f} MB, built in {t1 - t0:.1f} s, assembled in "
        f"{time.perf_counter() - t1:.1f} s; largest field {max(sizes.values())} B"
    )
