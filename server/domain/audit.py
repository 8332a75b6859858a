"""The audit chain: each link's hash covers the hash of its content and the previous link.

An event has a *content* (who did it, ``actor``, and what it says, ``data``) and a *frame*
(chain, position, kind, channel, section, document seq, time). ``content_hash`` is SHA-256
over the canonical JSON of the content; a link's ``hash`` is SHA-256 over the canonical
JSON of the frame, ``content_hash`` and the previous link's hash (decision 94). So the
content can be redacted (a person erased, decision 93) while every link still holds: the
redacted event keeps its ``content_hash``, and an *erasure* event later in the same chain names the
redacted positions with the hash of what they hold now. Verification accepts content that
no longer matches its own hash only when an erasure after it names that exact new content;
anything else (altered data or actor, time, kind, order, a deleted event) still breaks it.

Verification walks the chain in position order and names the first link that does not
hold: an altered frame no longer matches its hash, a deleted event leaves a gap (and the
next link's ``prev_hash`` points at nothing), a reordering breaks positions or
``prev_hash``. The chain's owner keeps the count and head hash, so deleting the last events
is caught too.

Links written before migration 0014 whose chain did not verify then keep their old hash
(over the content itself) and have no ``content_hash``: they are checked by the old rule
and cannot be redacted without the chain reporting it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
ERASURE = "erasure"  # the kind of the event that names redacted positions
LINK_VERSION = 2


def _digest(body: Mapping[str, Any]) -> str:
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def content_digest(actor: str, data: str) -> str:
    """The hash of an event's redactable content: who did it and what it says."""
    return _digest({"actor": actor, "data": data})


@dataclass(frozen=True, slots=True)
class AuditRecord:
    dpia_id: str
    position: int
    kind: str
    actor: str
    channel: str
    section: str | None
    seq: int
    at: datetime
    data: str  # canonical JSON
    prev_hash: str
    hash: str = ""
    # None: a link written before 0014 whose hash covers the content itself.
    content_hash: str | None = None

    def _at(self) -> str:
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
        # Microseconds are kept by both databases; the zone is normalised to UTC.
        return at.astimezone(UTC).isoformat(timespec="microseconds")

    def computed_hash(self) -> str:
        """The link's hash: the frame, the content's hash and the previous link."""
        if self.content_hash is None:
            return self.legacy_hash()
        return _digest(
            {
                "v": LINK_VERSION,
                "dpia": self.dpia_id,
                "position": self.position,
                "kind": self.kind,
                "channel": self.channel,
                "section": self.section,
                "seq": self.seq,
                "at": self._at(),
                "content": self.content_hash,
                "prev": self.prev_hash,
            }
        )

    def legacy_hash(self) -> str:
        """The hash of a link written before 0014 (content inside the link)."""
        return _digest(
            {
                "dpia": self.dpia_id,
                "position": self.position,
                "kind": self.kind,
                "actor": self.actor,
                "channel": self.channel,
                "section": self.section,
                "seq": self.seq,
                "at": self._at(),
                "data": self.data,
                "prev": self.prev_hash,
            }
        )

    def content_holds(self) -> bool:
        return self.content_hash is None or self.content_hash == content_digest(
            self.actor, self.data
        )

    def chained(self) -> AuditRecord:
        """This record with its content hash and link hash filled in."""
        hashed = replace(self, content_hash=content_digest(self.actor, self.data))
        return replace(hashed, hash=hashed.computed_hash())


def encode_data(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def erasure_data(redacted: Mapping[int, str], **details: Any) -> dict[str, Any]:
    """The data of an erasure event: the redacted positions with the hash of what each
    holds now, and whatever else the erasure wants to say (rule, pseudonym, counts)."""
    return {**details, "redacted": {str(p): h for p, h in sorted(redacted.items())}}


def _redactions(records: Sequence[AuditRecord]) -> dict[int, tuple[int, str]]:
    """Position → (position of the erasure naming it, the content hash it names); a later
    erasure of the same position overrides an earlier one."""
    named: dict[int, tuple[int, str]] = {}
    for record in sorted(records, key=lambda r: r.position):
        if record.kind != ERASURE or record.content_hash is None or not record.content_holds():
            continue
        try:
            claims = json.loads(record.data).get("redacted", {})
        except (ValueError, AttributeError):
            continue
        if not isinstance(claims, dict):
            continue
        for position, digest in claims.items():
            if str(position).isdigit() and isinstance(digest, str):
                named[int(position)] = (record.position, digest)
    return named


@dataclass(frozen=True, slots=True)
class BrokenLink:
    position: int  # the position that should hold here
    record_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event #{self.position}" + (
            f" (record id {self.record_id})" if self.record_id is not None else ""
        )
        return f"{where}: {self.reason}"


def verify(
    records: Sequence[tuple[int, AuditRecord]], head_count: int, head_hash: str
) -> BrokenLink | None:
    """The first broken link of a chain given as (record id, record) in stored order."""
    previous = GENESIS
    expected = 1
    redactions = _redactions([record for _, record in records])
    for record_id, record in sorted(records, key=lambda r: (r[1].position, r[0])):
        if record.position != expected:
            return BrokenLink(
                expected,
                record_id,
                f"expected event #{expected} here but found #{record.position}: "
                "an event was deleted or moved",
            )
        if record.prev_hash != previous:
            return BrokenLink(
                expected,
                record_id,
                "it does not follow the event before it (deleted, reordered or altered)",
            )
        if record.computed_hash() != record.hash:
            return BrokenLink(expected, record_id, "its content was altered after it was written")
        if not record.content_holds():
            erasure = redactions.get(record.position)
            redacted = (
                erasure is not None
                and erasure[0] > record.position
                and erasure[1] == content_digest(record.actor, record.data)
            )
            if not redacted:
                return BrokenLink(
                    expected,
                    record_id,
                    "its content was altered after it was written (and no erasure names it)",
                )
        previous = record.hash
        expected += 1
    if expected - 1 != head_count:
        return BrokenLink(
            expected, None, f"the chain has {expected - 1} events but {head_count} were written"
        )
    if head_count and previous != head_hash:
        return BrokenLink(expected - 1, None, "the last event is not the one written last")
    return None
