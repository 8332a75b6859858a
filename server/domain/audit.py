"""The audit chain: each event's hash covers its content and the previous event's hash.

A link's hash is SHA-256 over the canonical JSON of (DPIA, position, kind, actor, channel,
section, document seq, time, data, previous hash). Verification walks the chain in position
order and names the first link that does not hold: an altered record no longer matches its
hash, a deleted one leaves a gap (and the next link's ``prev_hash`` points at nothing), a
reordering breaks positions or ``prev_hash``. The DPIA row keeps the count and head hash, so
deleting the last events is caught too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


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

    def computed_hash(self) -> str:
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
        body = {
            "dpia": self.dpia_id,
            "position": self.position,
            "kind": self.kind,
            "actor": self.actor,
            "channel": self.channel,
            "section": self.section,
            "seq": self.seq,
            # Microseconds are kept by both databases; the zone is normalised to UTC.
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "data": self.data,
            "prev": self.prev_hash,
        }
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


def encode_data(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
        previous = record.hash
        expected += 1
    if expected - 1 != head_count:
        return BrokenLink(
            expected, None, f"the chain has {expected - 1} events but {head_count} were written"
        )
    if head_count and previous != head_hash:
        return BrokenLink(expected - 1, None, "the last event is not the one written last")
    return None
