"""Change events: who changed which field, through which channel, over which stretch of time.

A burst of one person's edits to one field (no pause longer than the quiet period) is one
event. Events feed notifications (issue 4) and the human history's edit sessions (issue 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    document_id: str
    actor: str
    channel: str
    field: str  # "<section>.<field>"
    row: str | None  # the row's ref, for a table row edited
    first_at: datetime
    last_at: datetime
    edits: int
    excerpt: str = ""

    @property
    def section(self) -> str:
        return self.field.split(".", 1)[0]


def field_of_root(name: str) -> str | None:
    """``field:need.aims`` and ``table:risks.register`` → ``need.aims``, ``risks.register``."""
    for prefix in ("field:", "table:"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return None
