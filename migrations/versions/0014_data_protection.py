"""Data protection duties (issue 15): audit links over content hashes (so a person's details
can be redacted while the chain holds), retention per organisation for closed DPIAs, when a
DPIA closed, and tombstones for deleted DPIAs and erased people.

Existing chains are re-linked: each DPIA's chain is verified by the rule it was written
under and, if it holds, every link is written again over the hash of its content. A chain
that does not verify is left as it was (no ``content_hash``), so the break it had is still
reported rather than laundered by the migration. The old rule is copied here, frozen, as a
revision never changes with the code.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
GENESIS = "0" * 64
EVENT_COLUMNS = [
    *("id", "dpia_id", "position", "kind", "actor", "channel", "section", "seq", "at"),
    *("data", "prev_hash", "hash", "content_hash"),
]


def _digest(body: dict[str, Any]) -> str:
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _at(moment: datetime) -> str:
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _frame(row: Any) -> dict[str, Any]:
    return {
        "dpia": row.dpia_id,
        "position": row.position,
        "kind": row.kind,
        "channel": row.channel,
        "section": row.section,
        "seq": row.seq,
        "at": _at(row.at),
    }


def _holds(rows: Sequence[Any], count: int, head: str) -> bool:
    previous = GENESIS
    for expected, row in enumerate(rows, start=1):
        old = {**_frame(row), "actor": row.actor, "data": row.data, "prev": row.prev_hash}
        if row.position != expected or row.prev_hash != previous or _digest(old) != row.hash:
            return False
        previous = row.hash
    return len(rows) == count and (not count or previous == head)


def _relink(connection: sa.Connection) -> None:
    # Typed where the value is read back: SQLite returns an untyped column as text.
    types: dict[str, Any] = {"at": TZ, "position": sa.Integer(), "seq": sa.BigInteger()}
    events = sa.table("audit_events", *(sa.column(name, types.get(name)) for name in EVENT_COLUMNS))
    dpias = sa.table(
        "dpias", sa.column("id"), sa.column("audit_count", sa.Integer()), sa.column("audit_head")
    )
    for dpia in connection.execute(sa.select(dpias)).all():
        rows = connection.execute(
            sa.select(events)
            .where(events.c.dpia_id == dpia.id)
            .order_by(events.c.position, events.c.id)
        ).all()
        if not rows or not _holds(rows, dpia.audit_count, dpia.audit_head):
            continue
        previous = GENESIS
        for row in rows:
            content = _digest({"actor": row.actor, "data": row.data})
            link = _digest({**_frame(row), "v": 2, "content": content, "prev": previous})
            connection.execute(
                sa.update(events)
                .where(events.c.id == row.id)
                .values(content_hash=content, prev_hash=previous, hash=link)
            )
            previous = link
        connection.execute(
            sa.update(dpias).where(dpias.c.id == dpia.id).values(audit_head=previous)
        )


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("content_hash", sa.String(64), nullable=True))
    op.add_column("organisations", sa.Column("retention_months", sa.Integer(), nullable=True))
    op.add_column("dpias", sa.Column("closed_at", TZ, nullable=True))
    op.create_table(
        "deleted_dpias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("organisation", sa.String(12), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("deleted_by", sa.String(200), nullable=False),
        sa.Column("deleted_at", TZ, nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_dpias")),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("erased_by", sa.String(200), nullable=False),
        sa.Column("erased_at", TZ, nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    # Retention of a DPIA closed before this revision counts from the upgrade: the day it
    # closed was never recorded, and counting from its creation could delete it at once.
    dpias = sa.table("dpias", sa.column("status"), sa.column("closed_at", TZ))
    op.execute(
        sa.update(dpias)
        .where(dpias.c.status.in_(["rejected", "abandoned", "archived", "superseded"]))
        .values(closed_at=datetime.now(UTC))
    )
    _relink(op.get_bind())


def downgrade() -> None:
    op.drop_table("erasures")
    op.drop_table("deleted_dpias")
    with op.batch_alter_table("dpias") as table:
        table.drop_column("closed_at")
    with op.batch_alter_table("organisations") as table:
        table.drop_column("retention_months")
    with op.batch_alter_table("audit_events") as table:
        table.drop_column("content_hash")
